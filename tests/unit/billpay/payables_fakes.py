"""In-memory stand-ins for the payables ports, with the same contracts as the adapters."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billpay.bills.models import (
    BillRecord,
    BillStatus,
    PaymentAccount,
    SupplierRecord,
    SupplierStatus,
    SyncedRecord,
)
from billpay.bills.ports import DataType, Page, SaveResult
from billpay.codat.errors import CodatRateLimitedError, CodatRejectedError, CodatStillSyncingError
from billpay.companies.models import CompanyRecord, CompanyStatus

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CODAT_DEFAULT_BILL_STATUSES = {BillStatus.OPEN, BillStatus.PARTIALLY_PAID}


def ready_company(company_id: str = "smb-1", **changes) -> CompanyRecord:
    record = CompanyRecord(
        company_id=company_id,
        name="Acme Ltd",
        status=CompanyStatus.READY,
        onboarding_execution_arn=f"arn:aws:states:eu-west-1:123456789012:execution:o:{company_id}",
        created_at=T0,
        updated_at=T0,
        platform_key="gbol",
        codat_company_id=f"codat-{company_id}",
        connection_id=f"conn-{company_id}",
        connection_status="Linked",
    )
    return record.model_copy(update=changes)


def supplier(n: int, modified: datetime = T0, **changes) -> SupplierRecord:
    record = SupplierRecord(
        supplier_id=f"sup-{n}",
        name=f"Supplier {n}",
        status=SupplierStatus.ACTIVE,
        default_currency="GBP",
        source_modified_date=modified,
    )
    return record.model_copy(update=changes)


def bill(n: int, modified: datetime = T0, status: BillStatus = BillStatus.OPEN, **changes):
    record = BillRecord(
        bill_id=f"bill-{n}",
        supplier_id=f"sup-{n % 3}",
        supplier_name=f"Supplier {n % 3}",
        reference=f"INV-{n:06d}",
        issue_date=date(2026, 10, 1),
        due_date=date(2026, 11, 1) + timedelta(days=n % 40),
        currency="GBP",
        total_amount=Decimal("120.00"),
        amount_due=Decimal("0.00")
        if status in (BillStatus.PAID, BillStatus.VOID)
        else Decimal("120.00"),
        status=status,
        source_modified_date=modified,
    )
    return record.model_copy(update=changes)


def account(n: int, currency: str = "GBP") -> PaymentAccount:
    return PaymentAccount(account_id=f"acc-{n}", name=f"Current {n}", currency=currency)


@dataclass
class FakeCodat:
    """Codat's lists for one connection: paged, ordered by last change (a changed record moves to
    the end, as in Codat and the emulator), `query` understood as far as the sync uses it."""

    page_size: int = 100
    bills: dict[str, tuple[int, BillRecord]] = field(default_factory=dict)
    suppliers: dict[str, tuple[int, SupplierRecord]] = field(default_factory=dict)
    accounts: list[PaymentAccount] = field(default_factory=list)
    calls: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    # Errors to raise on the next calls, in order.
    faults: list[Exception] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def put_bill(self, record: BillRecord) -> None:
        self.bills[record.bill_id] = (next(self._seq), record)

    def put_supplier(self, record: SupplierRecord) -> None:
        self.suppliers[record.supplier_id] = (next(self._seq), record)

    def bill_list(self, query: str, continuation: str | None):
        self._called("bills", query, continuation)
        statuses = set(BillStatus) if "status=" in query else CODAT_DEFAULT_BILL_STATUSES
        rows = [row for row in self.bills.values() if row[1].status in statuses]
        return self._page(rows, query, continuation)

    def supplier_list(self, query: str | None, continuation: str | None):
        self._called("suppliers", query, continuation)
        return self._page(list(self.suppliers.values()), query, continuation)

    def payment_account_list(self, continuation: str | None):
        self._called("paymentAccounts", None, continuation)
        start = int(continuation or 0)
        chunk = self.accounts[start : start + self.page_size]
        after = start + self.page_size
        return Page(tuple(chunk), str(after) if after < len(self.accounts) else None)

    def _called(self, what: str, query: str | None, continuation: str | None) -> None:
        self.calls.append((what, query, continuation))
        if self.faults:
            raise self.faults.pop(0)

    def _page(self, rows, query, continuation):
        since = _since(query)
        after = 0
        if continuation is not None:
            seq, _, token_query = continuation.partition("|")
            if token_query != (query or ""):
                raise CodatRejectedError("The continuation token is not valid.", status=400)
            after = int(seq)
        rows = sorted(
            (seq, r)
            for seq, r in rows
            if seq > after
            and (since is None or (r.source_modified_date and r.source_modified_date >= since))
        )
        chunk = rows[: self.page_size]
        more = len(rows) > self.page_size
        token = f"{chunk[-1][0]}|{query or ''}" if more else None
        return Page(tuple(r for _, r in chunk), token)


class FakeSource:
    """FakeCodat as a PayablesSource (the CodatClient's listing methods)."""

    def __init__(self, codat: FakeCodat) -> None:
        self.codat = codat

    def list_bills(self, company_id, connection_id, query, continuation):
        return self.codat.bill_list(query, continuation)

    def list_suppliers(self, company_id, connection_id, query, continuation):
        return self.codat.supplier_list(query, continuation)

    def list_payment_accounts(self, company_id, connection_id, continuation):
        return self.codat.payment_account_list(continuation)


def _since(query: str | None) -> datetime | None:
    match = re.search(r"sourceModifiedDate>=([0-9T:.\-]+Z)", query or "")
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))


def busy(reason: str = "409", seconds: int | None = None):
    if reason == "429":
        return CodatRateLimitedError("rate limited", status=429, retry_after_seconds=seconds)
    return CodatStillSyncingError("The data set is still syncing.", status=409)


@dataclass
class InMemoryPayables:
    records: dict[tuple[str, str], SyncedRecord] = field(default_factory=dict)
    accounts: dict[str, tuple[datetime, list[PaymentAccount]]] = field(default_factory=dict)
    watermarks: dict[tuple[str, DataType], datetime] = field(default_factory=dict)
    cursors: dict[tuple[str, str], dict] = field(default_factory=dict)

    def save_cursor(self, company_id, run_id, cursor):
        self.cursors[(company_id, run_id)] = cursor

    def saved_cursor(self, company_id, run_id):
        return self.cursors.get((company_id, run_id))

    def save_newer(self, company_id: str, records: Sequence[SyncedRecord]) -> SaveResult:
        written = 0
        for record in records:
            key = (company_id, f"{type(record).__name__}#{record.record_id}")
            held = self.records.get(key)
            stored = (None, None) if held is None else (held.source_modified_date, held.digest())
            if record.is_newer_than(*stored):
                self.records[key] = record
                written += 1
        return SaveResult(written=written, unchanged=len(records) - written)

    def replace_payment_accounts(self, company_id, accounts, listed_at) -> bool:
        held = self.accounts.get(company_id)
        if held is not None and held[0] >= listed_at:
            return False
        self.accounts[company_id] = (listed_at, list(accounts))
        return True

    def watermark(self, company_id, data_type):
        return self.watermarks.get((company_id, data_type))

    def advance_watermark(self, company_id, data_type, to):
        held = self.watermarks.get((company_id, data_type))
        if held is None or held < to:
            self.watermarks[(company_id, data_type)] = to

    def bills_of(self, company_id: str) -> dict[str, BillRecord]:
        return {
            r.record_id: r
            for (c, _), r in self.records.items()
            if c == company_id and isinstance(r, BillRecord)
        }

    def suppliers_of(self, company_id: str) -> dict[str, SupplierRecord]:
        return {
            r.record_id: r
            for (c, _), r in self.records.items()
            if c == company_id and isinstance(r, SupplierRecord)
        }


class Pages:
    """A Budget that allows `n` pages per step (None: unlimited)."""

    def __init__(self, n: int | None = None) -> None:
        self.n = n
        self.used = 0

    def exhausted(self) -> bool:
        if self.n is None:
            return False
        self.used += 1
        return self.used > self.n
