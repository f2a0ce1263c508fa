"""Keeping a company's payables current from Codat: the initial load, then one run per read.

A run is a chain of steps (the sync state machine invokes one Lambda per step):

    cursor = plan_sync(request, ...)        # what to read, from when
    cursor = sync_step(cursor, ...)         # until cursor.done; or wait cursor.wait_seconds first

A step reads pages one after the other, stores each page before asking for the next, and stops when
the run is done or its time is nearly up; the cursor it returns says where the next step resumes.
The state machine keeps the cursor between steps, so a Lambda that dies mid-run is retried from the
last page it stored, not from the start. One run makes one Codat request at a time.

What a run reads, in this order (a bill's supplier is stored before the bill):
- suppliers and bills modified since the data type's watermark (the latest sourceModifiedDate a
  completed run stored) minus OVERLAP, or since the read's `modifiedFromDate` when that is earlier;
  everything on the first run or when `full` is asked. Bills in every status: Codat's default list
  shows only Open and PartiallyPaid, which would hide bills paid or voided outside the product.
- the payment accounts (a short list, read whole and replaced).

Two runs of one company at once converge: each record is written only over an older version (the
store's conditional write), and a watermark only ever rises.

Codat cannot match an empty sourceModifiedDate in a query, and some platforms clear it on records
they void or delete: only a `full` run sees those. Operators schedule one now and then (see
docs/architecture.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from billpay.bills.models import (
    SYNCABLE_STATUSES,
    BillStatus,
    Connection,
    PaymentAccount,
    SyncedRecord,
)
from billpay.bills.ports import DataType, Page, PayablesSource, PayablesStore
from billpay.codat.errors import (
    CodatRateLimitedError,
    CodatRejectedError,
    CodatStillSyncingError,
)
from billpay.companies.models import CompanyId
from billpay.companies.ports import CompanyRepository
from billpay.core.errors import BillPayError, NotFoundError

# Re-read this much before the watermark: records stamped within the same instant, and clocks that
# round differently, are read again rather than missed (re-reading an unchanged record writes
# nothing).
OVERLAP = timedelta(minutes=5)
# Codat still syncing (409) or rate limited (429) this many times in a row: something is wrong.
MAX_BUSY_WAITS = 40
# How long to wait when Codat is busy and says nothing about when to come back.
DEFAULT_BUSY_WAIT_SECONDS = 30
PHASES = (DataType.SUPPLIERS, DataType.BILLS, DataType.PAYMENT_ACCOUNTS)
_ALL_BILL_STATUSES = "||".join(f"status={status}" for status in BillStatus)


class SyncStalledError(BillPayError):
    code = "SyncStalled"


class SyncRequest(BaseModel):
    """What starts a run: the product's company id, and what caused the run."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    company_id: CompanyId = Field(alias="companyId")
    run_id: str = Field(alias="runId", min_length=1, max_length=80)
    # From the read.completed webhook: the read fetched records modified since then.
    modified_from: datetime | None = Field(default=None, alias="modifiedFrom")
    # Read everything, whatever the watermarks say.
    full: bool = False
    # Hand over to the next step after this many pages (None: when the step's time runs out).
    pages_per_step: int | None = Field(default=None, alias="pagesPerStep", ge=1)


class SyncStats(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    pages: int = 0
    records: int = 0
    written: int = 0
    unchanged: int = 0
    dynamo_reads: int = Field(default=0, alias="dynamoReads")
    dynamo_writes: int = Field(default=0, alias="dynamoWrites")

    def plus(
        self, records: int, written: int, unchanged: int, reads: int, writes: int
    ) -> SyncStats:
        return SyncStats(
            pages=self.pages + 1,
            records=self.records + records,
            written=self.written + written,
            unchanged=self.unchanged + unchanged,
            dynamo_reads=self.dynamo_reads + reads,
            dynamo_writes=self.dynamo_writes + writes,
        )


class SyncCursor(BaseModel):
    """Where a run is: what the state machine carries from one step to the next."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    company_id: str = Field(alias="companyId")
    run_id: str = Field(alias="runId")
    started_at: datetime = Field(alias="startedAt")
    pages_per_step: int | None = Field(default=None, alias="pagesPerStep")
    # Read records modified since then, per data type (None: read everything).
    since: dict[DataType, datetime | None]
    # The data type being read; None once the run is done.
    phase: DataType | None
    phase_started_at: datetime = Field(alias="phaseStartedAt")
    continuation: str | None = None
    # The latest sourceModifiedDate read in this phase: the watermark once the phase completes.
    high_water: datetime | None = Field(default=None, alias="highWater")
    # Payment accounts listed so far in this run (stored whole when the listing ends).
    accounts: tuple[PaymentAccount, ...] = ()
    stats: SyncStats = SyncStats()
    # > 0: wait this long before the next step (Codat busy); busy_waits counts them in a row.
    wait_seconds: int = Field(default=0, alias="waitSeconds")
    busy_waits: int = Field(default=0, alias="busyWaits")
    # This phase was listed again from its start after Codat refused a continuation token.
    restarted: bool = False

    @property
    def done(self) -> bool:
        return self.phase is None

    def to_state(self) -> dict[str, Any]:
        """The cursor as the state machine carries it (`done` and `waitSeconds` drive its loop)."""
        return {**self.model_dump(mode="json", by_alias=True), "done": self.done}


class Budget(Protocol):
    def exhausted(self) -> bool:
        """True when there is no time left for another page in this step."""
        ...


def plan_sync(
    request: SyncRequest, companies: CompanyRepository, store: PayablesStore, now: datetime
) -> SyncCursor:
    """The cursor of a new run: where each data type starts reading from. A run that was
    started before (its first step died) resumes from the cursor it saved instead."""
    _connection(companies, request.company_id)  # refuse a run for a company that cannot sync
    saved = store.saved_cursor(request.company_id, request.run_id)
    if saved is not None:
        return SyncCursor.model_validate(saved)

    def since(data_type: DataType) -> datetime | None:
        watermark = None if request.full else store.watermark(request.company_id, data_type)
        if watermark is None:
            return None
        start = watermark - OVERLAP
        if request.modified_from is not None and request.modified_from < start:
            return request.modified_from
        return start

    return SyncCursor(
        company_id=request.company_id,
        run_id=request.run_id,
        started_at=now,
        since={
            DataType.SUPPLIERS: since(DataType.SUPPLIERS),
            DataType.BILLS: since(DataType.BILLS),
        },
        phase=PHASES[0],
        phase_started_at=now,
        pages_per_step=request.pages_per_step,
    )


def sync_step(
    cursor: SyncCursor,
    companies: CompanyRepository,
    source: PayablesSource,
    store: PayablesStore,
    budget: Budget,
    now: Callable[[], datetime],
) -> SyncCursor:
    """Read and store pages until the run is done or the budget is spent; the next cursor.

    After each page the cursor is saved: a step that dies is run again with the cursor it was
    given, and goes on from the saved one, further along (the page it read last, not the step's
    first).
    """
    connection = _connection(companies, cursor.company_id)
    saved = store.saved_cursor(cursor.company_id, cursor.run_id)
    if saved is not None and saved["stats"]["pages"] > cursor.stats.pages:
        cursor = SyncCursor.model_validate(saved)
    cursor = cursor.model_copy(update={"wait_seconds": 0})
    while not cursor.done and not budget.exhausted():
        try:
            cursor = _read_page(cursor, connection, source, store, now)
            store.save_cursor(cursor.company_id, cursor.run_id, cursor.to_state())
        except (CodatRateLimitedError, CodatStillSyncingError) as busy:
            # Rate limited (the throttle holds) or the data set is still syncing: wait, then
            # ask for the same page again.
            if cursor.busy_waits >= MAX_BUSY_WAITS:
                raise SyncStalledError(
                    f"Codat stayed busy for {cursor.busy_waits} waits in a row: {busy.message}"
                ) from busy
            wait = busy.retry_after_seconds or DEFAULT_BUSY_WAIT_SECONDS
            return cursor.model_copy(
                update={"wait_seconds": wait, "busy_waits": cursor.busy_waits + 1}
            )
        except CodatRejectedError:
            if cursor.continuation is None or cursor.restarted:
                raise
            # Codat refused the continuation token (it does not keep them forever): list the
            # phase again from its start, once. What was stored stays; re-reading writes nothing.
            cursor = cursor.model_copy(
                update={"continuation": None, "accounts": (), "restarted": True}
            )
    return cursor


def bills_query(since: datetime | None) -> str:
    """Every status (Codat's default is Open and PartiallyPaid only), modified since `since`."""
    if since is None:
        return _ALL_BILL_STATUSES
    return f"{{{_ALL_BILL_STATUSES}}}&&{modified_since(since)}"


def suppliers_query(since: datetime | None) -> str | None:
    """Suppliers are listed in every status by default."""
    return None if since is None else modified_since(since)


def modified_since(since: datetime) -> str:
    # Codat's date format, to the millisecond, rounded down: a bound that reads slightly more.
    return f"sourceModifiedDate>={since.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"


def _connection(companies: CompanyRepository, company_id: str) -> Connection:
    company = companies.get(company_id)
    if company is None:
        raise NotFoundError(f"company {company_id!r} is not known")
    return Connection.of(company, SYNCABLE_STATUSES)


def _read_page(
    cursor: SyncCursor,
    connection: Connection,
    source: PayablesSource,
    store: PayablesStore,
    now: Callable[[], datetime],
) -> SyncCursor:
    phase = cursor.phase
    page: Page[Any]
    ids = connection.codat_company_id, connection.connection_id
    if phase is DataType.SUPPLIERS:
        query = suppliers_query(cursor.since[DataType.SUPPLIERS])
        page = source.list_suppliers(*ids, query, cursor.continuation)
    elif phase is DataType.BILLS:
        page = source.list_bills(
            *ids, bills_query(cursor.since[DataType.BILLS]), cursor.continuation
        )
    elif phase is DataType.PAYMENT_ACCOUNTS:
        page = source.list_payment_accounts(*ids, cursor.continuation)
    else:  # pragma: no cover - the loop stops at None
        raise AssertionError(phase)
    records: tuple[SyncedRecord, ...] = page.records
    if phase is DataType.PAYMENT_ACCOUNTS:
        # Stored whole when the listing ends: an account missing from it is gone.
        cursor = cursor.model_copy(
            update={
                "accounts": cursor.accounts + page.records,
                "stats": cursor.stats.plus(len(records), 0, 0, 0, 0),
            }
        )
    else:
        saved = store.save_newer(cursor.company_id, records)
        cursor = cursor.model_copy(
            update={
                "high_water": _latest(cursor.high_water, records),
                "stats": cursor.stats.plus(
                    len(records),
                    saved.written,
                    saved.unchanged,
                    saved.read_requests,
                    saved.write_requests,
                ),
            }
        )
    cursor = cursor.model_copy(update={"continuation": page.next_token, "busy_waits": 0})
    if page.next_token is None:
        cursor = _finish_phase(cursor, store, now())
    return cursor


def _finish_phase(cursor: SyncCursor, store: PayablesStore, now: datetime) -> SyncCursor:
    phase = cursor.phase
    assert phase is not None
    if phase is DataType.PAYMENT_ACCOUNTS:
        replaced = store.replace_payment_accounts(
            cursor.company_id, cursor.accounts, cursor.phase_started_at
        )
        writes = 1 if replaced else 0
        stats = cursor.stats.model_copy(
            update={
                "written": cursor.stats.written + (len(cursor.accounts) if replaced else 0),
                "dynamo_writes": cursor.stats.dynamo_writes + writes,
            }
        )
        cursor = cursor.model_copy(update={"accounts": (), "stats": stats})
    elif cursor.high_water is not None:
        store.advance_watermark(cursor.company_id, phase, cursor.high_water)
    following = PHASES.index(phase) + 1
    return cursor.model_copy(
        update={
            "phase": PHASES[following] if following < len(PHASES) else None,
            "phase_started_at": now,
            "continuation": None,
            "high_water": None,
            "restarted": False,
        }
    )


def _latest(current: datetime | None, records: tuple[SyncedRecord, ...]) -> datetime | None:
    dates = [r.source_modified_date for r in records if r.source_modified_date is not None]
    if current is not None:
        dates.append(current)
    return max(dates, default=None)


# -- starting a run ----------------------------------------------------------------------------------


class SyncStarter(Protocol):
    def start(self, request: SyncRequest) -> bool:
        """Start the run; False when a run with its id was started before (nothing started)."""
        ...


def sync_run_id(company_id: str, cause: str) -> str:
    """One run per company and cause (a read.completed webhook's id, "initial", ...): the run id
    is the sync state machine's execution name, so starting it twice starts it once.

    At most 80 characters, as Step Functions wants: "sync-" + company id (64 at most) + "-" + 10.
    """
    digest = hashlib.sha256(f"{company_id}\n{cause}".encode()).hexdigest()[:10]
    return f"sync-{company_id}-{digest}"


def request_sync(
    company_id: str,
    cause: str,
    starter: SyncStarter,
    *,
    modified_from: datetime | None = None,
    full: bool = False,
) -> SyncRequest:
    """Start a run for `company_id` because of `cause`; a repeated cause starts nothing new.

    The webhook processor calls this on `read.completed` (cause: the webhook id, modified_from:
    its `modifiedFromDate`).
    """
    request = SyncRequest(
        company_id=company_id,
        run_id=sync_run_id(company_id, cause),
        modified_from=modified_from,
        full=full,
    )
    starter.start(request)
    return request
