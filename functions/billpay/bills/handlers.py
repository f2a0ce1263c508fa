"""The payables sync's Lambda: one step of a run per invocation (the state machine loops).

Input: a start request (`{"companyId", "runId", "modifiedFrom"?, "full"?}`) or the cursor the
previous step returned. Output: the next cursor, with `done` and `waitSeconds` for the state
machine's Choice. An exception fails the step; the state machine retries what is retryable, with
the same input, so the run resumes from the last page it stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from billpay.bills import sync, writes
from billpay.bills.ports import PayablesSource, PayablesStore
from billpay.bills.repository import DynamoPayablesRepository
from billpay.bills.writes import PayablesLedger
from billpay.companies.ports import CompanyRepository
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.events.models import WriteOutcome

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Stop reading when less than this is left of the invocation: one more page (Codat's read timeout)
# and its writes must fit.
RESERVE_MS = 20_000


@dataclass(frozen=True)
class SyncDependencies:
    companies: CompanyRepository
    source: PayablesSource
    store: PayablesStore


def default_dependencies() -> SyncDependencies:
    from billpay.codat.client import codat_client  # this function calls Codat

    config = settings()
    if not config.payables_table:
        raise RuntimeError("PAYABLES_TABLE is not set for the sync function")
    return SyncDependencies(
        companies=DynamoCompanyRepository(aws.dynamodb(), config.companies_table),
        source=codat_client(),
        store=DynamoPayablesRepository(aws.dynamodb(), config.payables_table),
    )


class LambdaBudget:
    """Time left in this invocation, and optionally a page count."""

    def __init__(self, context: LambdaContext, pages: int | None) -> None:
        self._context = context
        self._pages = pages
        self._asked = 0

    def exhausted(self) -> bool:
        self._asked += 1
        if self._pages is not None and self._asked > self._pages:
            return True
        return self._context.get_remaining_time_in_millis() < RESERVE_MS


@logger.inject_lambda_context(clear_state=True)
def sync_payables(
    event: dict[str, Any], context: LambdaContext, deps: SyncDependencies | None = None
) -> dict[str, Any]:
    deps = deps or default_dependencies()
    now = datetime.now(UTC)
    if "phase" in event:
        cursor = sync.SyncCursor.model_validate(event)
    else:
        request = sync.SyncRequest.model_validate(event)
        cursor = sync.plan_sync(request, deps.companies, deps.store, now)
    logger.append_keys(company_id=cursor.company_id, run_id=cursor.run_id)
    budget = LambdaBudget(context, cursor.pages_per_step)
    cursor = sync.sync_step(
        cursor, deps.companies, deps.source, deps.store, budget, lambda: datetime.now(UTC)
    )
    logger.info(
        "payables sync step",
        extra={
            "phase": cursor.phase,
            "done": cursor.done,
            "wait_seconds": cursor.wait_seconds,
            **cursor.stats.model_dump(by_alias=True),
        },
    )
    return cursor.to_state()


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
    from billpay.bills.workflow import StepFunctionsSyncStarter

    arn = settings().payables_sync_state_machine_arn
    if not arn:
        raise RuntimeError("PAYABLES_SYNC_STATE_MACHINE_ARN is not set for this function")
    return StepFunctionsSyncStarter(aws.stepfunctions(), arn)
