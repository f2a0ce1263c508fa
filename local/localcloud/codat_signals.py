"""Codat's webhooks handed to the onboarding waits, standing in for the webhook processor.

The product's webhook processor (issue #7: a signed-webhook endpoint, its own table and queue)
turns each verified Codat webhook into a `Signal` and calls `billpay.companies.logic.record_signal`,
which resumes a parked wait through Step Functions' SendTaskSuccess. Until it is on main, this
module does the same from the webhooks the Codat emulator generated, with the same mapping (the
contract in docs/onboarding.md), so the deployed state machine is resumed through the real
companies table and the real SendTaskSuccess path; only the HTTP hop and the signature check are
skipped. `make demo` and the local-cloud tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billpay.companies.logic import WaitOutcome, record_signal
from billpay.companies.models import PRODUCT_COMPANY_ID_TAG, Signal, WaitKind
from billpay.companies.repository import DynamoCompanyRepository
from billpay.onboarding.workflow import StepFunctionsTasks
from localcloud.testing import LocalCloud

OUTPUT_COMPANIES_TABLE = "CompaniesTableName"

_AUTHORIZATION_OUTCOMES = {
    "connection.connected": "linked",
    "connection.reconnected": "linked",
    "connection.failed": "failed",
}


def signal_of(envelope: dict[str, Any]) -> tuple[str, Signal] | None:
    """(the product's company id, the signal) for a webhook a wait listens to; None otherwise."""
    event_type = str(envelope["eventType"])
    payload = envelope["payload"]
    company_id = (payload.get("referenceCompany", {}).get("tags") or {}).get(PRODUCT_COMPANY_ID_TAG)
    if not company_id:
        return None
    occurred_at = datetime.fromisoformat(str(envelope["generatedDate"]).replace("Z", "+00:00"))
    if event_type in _AUTHORIZATION_OUTCOMES:
        connection = payload["connection"]
        errors = connection.get("dataConnectionErrors") or []
        outcome = _AUTHORIZATION_OUTCOMES[event_type]
        detail: dict[str, Any] = {
            "connectionId": connection["id"],
            "connectionStatus": connection["status"],
            "outcome": outcome,
            "reason": errors[-1].get("errorMessage") if outcome == "failed" and errors else None,
        }
        kind = WaitKind.AUTHORIZATION
    elif event_type == "read.completed.initial":
        data_types = payload.get("dataTypes") or []
        detail = {
            "connectionId": data_types[0]["connectionId"] if data_types else None,
            "dataTypes": {d["dataType"]: d["status"] for d in data_types},
        }
        kind = WaitKind.INITIAL_READ
    else:
        return None
    signal = Signal(
        kind=kind,
        event_type=event_type,
        occurred_at=occurred_at,
        webhook_id=str(envelope["id"]),
        detail=detail,
    )
    return str(company_id), signal


def deliver(cloud: LocalCloud, company_id: str, signal: Signal) -> WaitOutcome:
    """What the webhook processor does with a signal: record it, resume the wait if parked."""
    companies = DynamoCompanyRepository(
        cloud.client("dynamodb"), cloud.output(OUTPUT_COMPANIES_TABLE)
    )
    return record_signal(
        companies, StepFunctionsTasks(cloud.client("stepfunctions")), company_id, signal
    )


@dataclass
class EmulatorWebhooks:
    """The webhooks an emulator generated, delivered once each, in the order asked for."""

    cloud: LocalCloud
    emulator: Any  # codat_emulator.testing.RunningEmulator
    delivered: set[str] = field(default_factory=set)

    def generated(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.emulator.http() as http:
            events: list[dict[str, Any]] = http.get("/_emulator/webhooks/events").json()["events"]
        return [e for e in events if event_type is None or e["eventType"] == event_type]

    def deliver(self, envelope: dict[str, Any]) -> WaitOutcome | None:
        """Deliver one webhook (again, if asked: a redelivery, as Codat may send)."""
        mapped = signal_of(envelope)
        self.delivered.add(str(envelope["id"]))
        if mapped is None:
            return None
        return deliver(self.cloud, *mapped)

    def deliver_new(self) -> int:
        """Deliver every webhook not delivered yet, in the order they were generated."""
        fresh = [e for e in self.generated() if str(e["id"]) not in self.delivered]
        for envelope in fresh:
            self.deliver(envelope)
        return len(fresh)
