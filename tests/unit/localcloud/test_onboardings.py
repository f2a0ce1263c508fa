"""What `make dev` prints of onboardings: one line per status change, the Link page while pending."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billpay.companies.models import CompanyRecord, CompanyStatus
from billpay.core.dynamo import to_dynamo
from localcloud.onboardings import OnboardingWatcher, describe, link_url_in

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LINK = "http://127.0.0.1:4010/link/c-1/connections/k-1"


def _record(status: CompanyStatus, **extra: Any) -> CompanyRecord:
    return CompanyRecord.model_validate(
        {
            "companyId": "acme-1",
            "name": "Acme (UK) Ltd",
            "status": status,
            "onboardingExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:x:acme-1",
            "createdAt": NOW,
            "updatedAt": NOW,
            **extra,
        }
    )


def test_a_pending_company_line_carries_its_link_page_and_only_its_own():
    line = describe(_record(CompanyStatus.PENDING_LINK, linkUrl=LINK))
    assert line.startswith("onboarding acme-1 (Acme (UK) Ltd): PENDING_LINK")
    assert link_url_in(line, "acme-1") == LINK
    assert link_url_in(line, "acme") is None
    assert link_url_in(describe(_record(CompanyStatus.READY)), "acme-1") is None


def test_a_failed_company_line_says_why():
    error = {"code": "CodatUnavailable", "message": "Codat answered 503 five times", "at": NOW}
    line = describe(_record(CompanyStatus.FAILED, lastError=error))
    assert line == (
        "onboarding acme-1 (Acme (UK) Ltd): FAILED: CodatUnavailable: Codat answered 503 five times"
    )


class _Table:
    """A DynamoDB client's scan paginator over items we set."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.scans: list[dict[str, Any]] = []

    def get_paginator(self, operation: str) -> _Table:
        assert operation == "scan"
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.scans.append(kwargs)
        return [{"Items": self.items[:1]}, {"Items": self.items[1:]}]


def test_the_watcher_prints_a_line_per_change_not_per_poll():
    table, printed = _Table(), []
    watcher = OnboardingWatcher(table, "Companies", printed.append)
    table.items = [to_dynamo(_record(CompanyStatus.REGISTERED).to_item())]
    watcher.poll()
    watcher.poll()
    table.items = [to_dynamo(_record(CompanyStatus.PENDING_LINK, linkUrl=LINK).to_item())]
    watcher.poll()
    # A new Link cycle (relink) on the same status is a new line too.
    table.items = [to_dynamo(_record(CompanyStatus.PENDING_LINK, linkUrl=LINK + "2").to_item())]
    watcher.poll()
    watcher.poll()
    assert [line.split(": ", 1)[1][:12] for line in printed] == [
        "REGISTERED",
        "PENDING_LINK",
        "PENDING_LINK",
    ]
    assert link_url_in(printed[-1], "acme-1") == LINK + "2"
    assert table.scans[0] == {"TableName": "Companies", "ConsistentRead": True}
