"""What `make dev` shows of onboardings as they happen, and the demo onboarding it can start.

The watcher reads the companies table (the deployed stack's, on the moto server) a few times a
second and prints one line per status change: the Link URL to open when a company is waiting for
its SMB user to authorize, and the end of its onboarding (READY, or the error it failed with).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError

from billpay.companies.models import CompanyRecord, CompanyStatus
from billpay.core.dynamo import from_dynamo
from billpay.onboarding.models import StartOnboarding

LOG = logging.getLogger(__name__)

OUTPUT_COMPANIES_TABLE_NAME = "CompaniesTableName"
DEFAULT_PLATFORM = "gbol"  # Xero, as in `make demo`
LINK_MARKER = "Link page: "


def describe(record: CompanyRecord) -> str:
    """The line printed when a company reaches `record.status`."""
    head = f"onboarding {record.company_id} ({record.name}): {record.status.value}"
    if record.status is CompanyStatus.PENDING_LINK and record.link_url:
        return f"{head}, open its {LINK_MARKER}{record.link_url}  and press Authorize"
    if record.last_error is not None and record.status not in (
        CompanyStatus.READY,
        CompanyStatus.LINKED,
        CompanyStatus.INITIAL_READ,
    ):
        return f"{head}: {record.last_error.code}: {record.last_error.message}"
    return head


def link_url_in(line: str, company_id: str) -> str | None:
    """The Link URL in a line `describe` printed for `company_id`, if it is one."""
    if not line.startswith(f"onboarding {company_id} (") or LINK_MARKER not in line:
        return None
    return line.split(LINK_MARKER, 1)[1].split()[0]


class OnboardingWatcher:
    """Prints each company's status changes until stopped (a daemon thread)."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        emit: Callable[[str], None],
        interval: float = 0.25,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._emit = emit
        self._interval = interval
        self._seen: dict[str, tuple[CompanyStatus, str | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="onboarding-watcher", daemon=True)
        self._failing = False

    def poll(self) -> None:
        """Emit a line for every company whose status (or Link URL) changed since the last poll."""
        pages = self._dynamodb.get_paginator("scan").paginate(
            TableName=self._table, ConsistentRead=True
        )
        for page in pages:
            for item in page.get("Items", []):
                record = CompanyRecord.model_validate(from_dynamo(item))
                state = (record.status, record.link_url)
                if self._seen.get(record.company_id) != state:
                    self._seen[record.company_id] = state
                    self._emit(describe(record))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
                self._failing = False
            except Exception:  # keep watching: the table may be briefly unreachable
                if not self._failing:
                    LOG.exception("cannot read the companies table %s", self._table)
                self._failing = True

    def start(self) -> OnboardingWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class OnboardingNotStarted(RuntimeError):
    pass


def onboarding_request(name: str, platform_key: str = DEFAULT_PLATFORM) -> StartOnboarding:
    """The body of POST /companies for `name` (its company id derived from the name), checked as
    the API checks it; OnboardingNotStarted says what is wrong with it."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "company"
    body = {
        "companyId": f"{slug}-{secrets.token_hex(3)}",
        "name": name,
        "platformKey": platform_key,
    }
    try:
        return StartOnboarding.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(error["msg"] for error in exc.errors())
        raise OnboardingNotStarted(problems) from None


def start_onboarding(api_url: str, request: StartOnboarding) -> str:
    """Start onboarding through the product API, as the product backend would; returns the
    company id. OnboardingNotStarted says what the API refused."""
    body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        answer = httpx.post(f"{api_url}/companies", json=body, timeout=60)
    except httpx.HTTPError as exc:
        raise OnboardingNotStarted(f"POST {api_url}/companies: {exc}") from exc
    if answer.status_code != 202:
        raise OnboardingNotStarted(
            f"POST {api_url}/companies answered {answer.status_code}: {answer.text[:500]}"
        )
    return request.company_id
