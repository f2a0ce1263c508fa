"""The onboarding journey to READY (`make demo`), on the local cloud with the Codat emulator.

What a product and its SMB user do, end to end: the product starts onboarding through its API,
reads the Link URL, the user authorizes in Link (the emulator's page, submitted as a browser
submits its form), Codat's webhooks resume the workflow, and the company is READY.

Each step prints what it did; any unexpected answer stops the journey with a non-zero exit.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from localcloud.codat_signals import EmulatorWebhooks
from localcloud.product import ProductCloud, running_product

_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class JourneyFailed(RuntimeError):
    pass


class _Forms(HTMLParser):
    """The forms of a page: (method, action, fields from its inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("method", "get").upper(), values.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1][2][values["name"]] = values.get("value", "")


def press(http: httpx.Client, page_url: str, action: str) -> httpx.Response:
    """Open `page_url` and submit the form whose `action` field is `action`, as a browser does."""
    page = http.get(page_url)
    if page.status_code != 200:
        raise JourneyFailed(f"Link page {page_url}: HTTP {page.status_code}")
    parser = _Forms()
    parser.feed(page.text)
    for method, target, fields in parser.forms:
        if fields.get("action") == action:
            return http.request(
                method,
                urljoin(page_url, target),
                data=fields,  # application/x-www-form-urlencoded, as a browser posts it
                follow_redirects=True,
            )
    raise JourneyFailed(f"Link page {page_url} has no {action!r} button")


def _expect(response: httpx.Response, status: int, step: str) -> Any:
    if response.status_code != status:
        raise JourneyFailed(
            f"{step}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}"
        )
    return response.json()


def _until(
    read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        current = read()
        if done(current):
            return current
        if time.monotonic() > deadline:
            raise JourneyFailed(f"{what} did not happen within 60 s: {current}")
        time.sleep(0.1)


def run_journey(product: ProductCloud) -> int:
    cloud, company_id = product.cloud, f"demo-{secrets.token_hex(4)}"
    webhooks = EmulatorWebhooks(cloud, product.emulator)
    sfn = cloud.client("stepfunctions")
    with httpx.Client(base_url=cloud.api_url, timeout=35) as api, httpx.Client(timeout=30) as web:

        def company() -> dict[str, Any]:
            answer = api.get(f"/companies/{company_id}")
            if answer.status_code == 404:  # not registered yet: the workflow has just started
                return {"status": None, "waitingFor": None}
            return dict(_expect(answer, 200, "read company"))

        try:
            body = {"companyId": company_id, "name": "Demo Ltd", "platformKey": "gbol"}
            print(f"1. POST {cloud.api_url}/companies  {json.dumps(body)}", flush=True)
            started = _expect(api.post("/companies", json=body), 202, "start onboarding")
            print(f"   202 accepted, execution {started['executionArn']}", flush=True)

            print("2. onboarding creates the Codat company and the Xero connection", flush=True)
            pending = _until(company, lambda c: c["waitingFor"] == "authorization", "the Link URL")
            print(
                f"   {pending['status']}: codatCompanyId {pending['codatCompanyId']}, "
                f"link {pending['linkUrl']}",
                flush=True,
            )

            print("3. the SMB user opens the Link page and presses Authorize", flush=True)
            page = press(web, pending["linkUrl"], "authorize")
            print(f"   HTTP {page.status_code}: the connection is authorized", flush=True)

            print("4. Codat's webhooks resume the waiting workflow", flush=True)
            webhooks.deliver_new()
            for envelope in webhooks.generated():
                if (
                    envelope["payload"].get("referenceCompany", {}).get("id")
                    == pending["codatCompanyId"]
                ):
                    print(f"   {envelope['eventType']}", flush=True)
            ready = _until(company, lambda c: c["status"] in ("READY", "FAILED"), "READY")
            execution = _until(
                lambda: dict(sfn.describe_execution(executionArn=started["executionArn"])),
                lambda e: e["status"] in _TERMINAL,
                "the end of the execution",
            )
            print(f"   execution {execution['status']}", flush=True)
            if ready["status"] != "READY" or execution["status"] != "SUCCEEDED":
                raise JourneyFailed(f"onboarding ended {ready['status']}: {ready['lastError']}")

            print(f"5. GET {cloud.api_url}/companies/{company_id}", flush=True)
            summary = {k: ready[k] for k in ("status", "connectionStatus", "dataTypes")}
            print(f"   200 {json.dumps(summary)}", flush=True)
        except JourneyFailed as exc:
            print(f"journey failed: {exc}", flush=True)
            return 1
    print(f"journey complete: {company_id} is READY", flush=True)
    return 0


def run_demo(cdk_out: Path) -> int:
    # In-process handlers write to this terminal: keep their logs and metrics to warnings, so the
    # journey's steps stay readable (`make dev` shows everything).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    with running_product(cdk_out) as product:
        return run_journey(product)
