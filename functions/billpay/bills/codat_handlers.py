"""The payables sync's step (infra/constructs/bills.py): one step of a run per invocation, the
state machine loops. It calls Codat, so this module imports Codat's SDK, at the top: its cost is
paid by the cold start, never by a request. What starts a run is billpay.bills.handlers.

Input: a start request (`{"companyId", "runId", "modifiedFrom"?, "full"?}`) or the cursor the
previous step returned. Output: the next cursor, with `done` and `waitSeconds` for the state
machine's Choice. An exception fails the step; the state machine retries what is retryable, with
the same input, so the run resumes from the last page it stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from billpay.bills import sync
from billpay.bills.ports import PayablesSource, PayablesStore
from billpay.bills.repository import DynamoPayablesRepository
from billpay.codat.client import codat_client
from billpay.companies.ports import CompanyRepository
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.observability import logger
from billpay.core.settings import settings

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
