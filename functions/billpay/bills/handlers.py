"""The payables sync's requester: the EventBridge target that starts a sync run when the books may
have changed (`request_sync`). The sync's step, which calls Codat, is billpay.bills.codat_handlers.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from billpay.bills import sync, writes
from billpay.bills.repository import DynamoPayablesRepository
from billpay.bills.workflow import StepFunctionsSyncStarter
from billpay.bills.writes import PayablesLedger
from billpay.core import aws
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.events.models import WriteOutcome

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Domain events on the integration bus that mean the product's copy of the books must be (re)read:
# onboarding reached READY (the initial load: Codat's first read is done), a read completed, or a
# bill or supplier write reached the platform (or failed there) after its synchronous answer
# (billpay.webhooks.logic and billpay.onboarding publish them).
REFUSED_WRITES = {"BillWriteFailed": "bills", "SupplierWriteFailed": "suppliers"}
SYNC_CAUSES = frozenset(
    {
        "CompanyReady",
        "CompanyDataRead",
        "BillWriteSucceeded",
        "SupplierWriteSucceeded",
        *REFUSED_WRITES,
    }
)
# The data types a read must include for the payables to have changed.
PAYABLE_DATA_TYPES = frozenset({"bills", "suppliers", "bankAccounts"})


@logger.inject_lambda_context(clear_state=True)
def request_sync(
    event: dict[str, Any],
    context: LambdaContext,
    starter: sync.SyncStarter | None = None,
    ledger: PayablesLedger | None = None,
) -> dict[str, Any]:
    """EventBridge target: start a run for the event's company, once per event (its `eventId`
    names the run, so a redelivered event starts nothing new). A write Codat reports refused
    first fails the product's pending request for it (`writes.apply_refused_write`)."""
    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    if detail_type not in SYNC_CAUSES:
        return {"started": False, "reason": f"not a sync cause: {detail_type}"}
    failed: list[str] = []
    if detail_type in REFUSED_WRITES:
        outcome = WriteOutcome.model_validate(detail)
        failed = writes.apply_refused_write(
            ledger or _ledger(),
            outcome.company_id,
            writes.LateWriteOutcome(
                data_type=REFUSED_WRITES[detail_type],
                write_type=outcome.write_type,
                record_id=outcome.record_id,
                status=outcome.status,
                push_id=outcome.push_id,
                reported_at=outcome.occurred_at,
            ),
        )
        if failed:
            logger.info("refused write applied", extra={"requests_failed": failed})
    if detail_type == "CompanyDataRead":
        read = {d.get("dataType") for d in detail.get("dataTypes", [])}
        if not read & PAYABLE_DATA_TYPES:
            return {"started": False, "reason": "the read touched no payables"}
    modified_from = detail.get("modifiedFrom")
    request = sync.request_sync(
        detail["companyId"],
        f"{detail_type}:{detail['eventId']}",
        starter or _starter(),
        modified_from=datetime.fromisoformat(modified_from) if modified_from else None,
    )
    logger.info("payables sync requested", extra={"run_id": request.run_id, "cause": detail_type})
    answer: dict[str, Any] = {"started": True, "runId": request.run_id}
    if failed:
        answer["requestsFailed"] = failed
    return answer


def _ledger() -> PayablesLedger:
    table = settings().payables_table
    if not table:
        raise RuntimeError("PAYABLES_TABLE is not set for this function")
    return DynamoPayablesRepository(aws.dynamodb(), table)


def _starter() -> sync.SyncStarter:
    arn = settings().payables_sync_state_machine_arn
    if not arn:
        raise RuntimeError("PAYABLES_SYNC_STATE_MACHINE_ARN is not set for this function")
    return StepFunctionsSyncStarter(aws.stepfunctions(), arn)
