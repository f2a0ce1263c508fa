"""What the payables logic needs from the outside world. Adapters implement these; tests pass fakes.

- `PayablesSource`: reading a company's payables from Codat (the Codat adapter).
- `PayablesStore`: the payables table (the DynamoDB repository).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from billpay.bills.models import (
    BillRecord,
    BillStatus,
    PaymentAccount,
    SupplierRecord,
    SyncedRecord,
)

R = TypeVar("R", bound=SyncedRecord)


class DataType(StrEnum):
    """What the sync keeps, named as Codat names them (also the watermarks' names)."""

    SUPPLIERS = "suppliers"
    BILLS = "bills"
    PAYMENT_ACCOUNTS = "paymentAccounts"


@dataclass(frozen=True)
class Page(Generic[R]):
    records: tuple[R, ...]
    # Codat's continuationToken for the next page; None on the last page.
    next_token: str | None


class PayablesSource(Protocol):
    """Codat's lists, one page per call (`billpay.codat.client.CodatClient` implements it).

    Failures are billpay.codat.errors: rate limited and still syncing are waited out; a
    continuation token Codat refuses (CodatRejectedError) restarts the listing.
    """

    def list_bills(
        self, company_id: str, connection_id: str, query: str, continuation: str | None
    ) -> Page[BillRecord]: ...

    def list_suppliers(
        self, company_id: str, connection_id: str, query: str | None, continuation: str | None
    ) -> Page[SupplierRecord]: ...

    def list_payment_accounts(
        self, company_id: str, connection_id: str, continuation: str | None
    ) -> Page[PaymentAccount]: ...


# Where a page of a table listing resumes: DynamoDB's LastEvaluatedKey, every value a string.
StartKey = dict[str, str]


@dataclass(frozen=True)
class BillFilter:
    """Which of a company's bills to list. Due dates bound strictly (`due_after` excluded)."""

    status: BillStatus | None = None
    due_after: date | None = None
    due_before: date | None = None

    def due_range(self) -> tuple[str, str]:
        """The inclusive range of due dates (ISO) the filter keeps."""
        lowest = _shifted(self.due_after, 1) if self.due_after else date.min
        highest = _shifted(self.due_before, -1) if self.due_before else date.max
        return lowest.isoformat(), highest.isoformat()

    def is_empty(self) -> bool:
        lowest, highest = self.due_range()
        return lowest > highest


def _shifted(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:  # date.min or date.max: already the end of time
        return day


@dataclass(frozen=True)
class SaveResult:
    written: int
    # Already stored at the same or a newer source modified date.
    unchanged: int
    # DynamoDB requests it took (reads that compared, writes that stored).
    read_requests: int = 0
    write_requests: int = 0


class PayablesStore(Protocol):
    def save_newer(self, company_id: str, records: Sequence[SyncedRecord]) -> SaveResult:
        """Store each record unless the stored one is the same or newer (`is_newer_than`).

        Safe against concurrent writers: each write is conditional on what it replaces.
        """
        ...

    def replace_payment_accounts(
        self, company_id: str, accounts: Sequence[PaymentAccount], listed_at: datetime
    ) -> bool:
        """Replace the company's accounts with a full listing taken at `listed_at`, unless a
        listing taken later is already stored. True when this listing was stored."""
        ...

    def watermark(self, company_id: str, data_type: DataType) -> datetime | None:
        """The latest source modified date a completed sync stored for this data type."""
        ...

    def advance_watermark(self, company_id: str, data_type: DataType, to: datetime) -> None:
        """Raise the watermark to `to`; a lower value never replaces a higher one."""
        ...

    def save_cursor(self, company_id: str, run_id: str, cursor: dict[str, Any]) -> None:
        """Keep where a run is (after each page), for a step that dies to resume from."""
        ...

    def saved_cursor(self, company_id: str, run_id: str) -> dict[str, Any] | None: ...


class PayablesReader(Protocol):
    """The product's reads: by key, or one page of a listing in the order of an index."""

    def bill(self, company_id: str, bill_id: str) -> BillRecord | None: ...

    def supplier(self, company_id: str, supplier_id: str) -> SupplierRecord | None: ...

    def query_bills(
        self, company_id: str, where: BillFilter, limit: int, start: StartKey | None
    ) -> tuple[list[BillRecord], StartKey | None]: ...

    def list_suppliers(
        self, company_id: str, limit: int, start: StartKey | None
    ) -> tuple[list[SupplierRecord], StartKey | None]: ...

    def payment_accounts(self, company_id: str) -> list[PaymentAccount]: ...
