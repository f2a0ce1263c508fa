"""A connection's ledger: what the accounting platform holds for one SMB (suppliers, bills and
their attachments, bank accounts, payments, the chart of accounts and tax rates), with the
indexes listing and paying rely on. The operations on it are in ``payables``."""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from codat_emulator.store.core import JsonDict, Page, iso, money, money_json

BILL_STATUSES: tuple[str, ...] = ("Unknown", "Open", "PartiallyPaid", "Paid", "Void", "Draft")
PAYABLE_BILL_STATUSES = frozenset({"Open", "PartiallyPaid"})
SUPPLIER_STATUSES: tuple[str, ...] = ("Unknown", "Active", "Archived")
ACCOUNT_STATUSES: tuple[str, ...] = ("Active", "Archived")


# ---------------------------------------------------------------------------------------------
# Records. Each renders its Codat JSON shape with to_json().


@dataclass
class Address:
    type: str = "Unknown"
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    postal_code: str | None = None

    def to_json(self) -> JsonDict:
        return {
            "type": self.type,
            "line1": self.line1,
            "line2": self.line2,
            "city": self.city,
            "region": self.region,
            "country": self.country,
            "postalCode": self.postal_code,
        }


@dataclass
class Supplier:
    id: str
    supplier_name: str
    status: str = "Active"
    contact_name: str | None = None
    email_address: str | None = None
    phone: str | None = None
    addresses: list[Address] = field(default_factory=list)
    balance: Decimal | None = None
    default_currency: str | None = None
    source_modified_date: datetime | None = None
    seq: int = 0

    def to_json(self) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "supplierName": self.supplier_name,
            "contactName": self.contact_name,
            "emailAddress": self.email_address,
            "phone": self.phone,
            "addresses": [a.to_json() for a in self.addresses],
            "status": self.status,
            "balance": money_json(self.balance),
            "defaultCurrency": self.default_currency,
        }
        if self.source_modified_date is not None:
            body["sourceModifiedDate"] = iso(self.source_modified_date)
        return body


@dataclass
class BillLine:
    description: str | None = None
    unit_amount: Decimal = Decimal("0.00")
    quantity: Decimal = Decimal("1")
    tax_amount: Decimal = Decimal("0.00")
    total_amount: Decimal | None = None
    account_id: str | None = None
    tax_rate_id: str | None = None

    @property
    def total(self) -> Decimal:
        if self.total_amount is not None:
            return money(self.total_amount)
        return money(self.unit_amount * self.quantity + self.tax_amount)

    def to_json(self) -> JsonDict:
        body: JsonDict = {
            "description": self.description,
            "unitAmount": money_json(self.unit_amount),
            "quantity": float(self.quantity),
            "taxAmount": money_json(self.tax_amount),
            "totalAmount": money_json(self.total),
        }
        if self.account_id is not None:
            body["accountRef"] = {"id": self.account_id}
        if self.tax_rate_id is not None:
            body["taxRateRef"] = {"id": self.tax_rate_id}
        return body


@dataclass
class Bill:
    id: str
    supplier_id: str
    issue_date: str
    due_date: str
    currency: str
    status: str
    total_amount: Decimal
    amount_due: Decimal
    reference: str | None = None
    supplier_name: str | None = None
    currency_rate: Decimal | None = None
    line_items: list[BillLine] = field(default_factory=list)
    source_modified_date: datetime | None = None
    seq: int = 0

    def to_json(self) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "reference": self.reference,
            "supplierRef": {"id": self.supplier_id, "supplierName": self.supplier_name},
            "issueDate": self.issue_date,
            "dueDate": self.due_date,
            "currency": self.currency,
            "currencyRate": None if self.currency_rate is None else float(self.currency_rate),
            "lineItems": [line.to_json() for line in self.line_items],
            "status": self.status,
            "totalAmount": money_json(self.total_amount),
            "amountDue": money_json(self.amount_due),
        }
        if self.source_modified_date is not None:
            body["sourceModifiedDate"] = iso(self.source_modified_date)
        return body


@dataclass
class BankAccount:
    id: str
    name: str
    account_type: str
    account_number: str
    currency: str
    status: str = "Active"
    nominal_code: str | None = None
    sort_code: str | None = None
    source_modified_date: datetime | None = None

    def to_json(self) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "name": self.name,
            "nominalCode": self.nominal_code,
            "accountType": self.account_type,
            "accountNumber": self.account_number,
            "sortCode": self.sort_code,
            "currency": self.currency,
            "status": self.status,
        }
        if self.source_modified_date is not None:
            body["sourceModifiedDate"] = iso(self.source_modified_date)
        return body


@dataclass
class Account:
    """A chart-of-accounts entry offered as a bill line mapping option."""

    id: str
    name: str
    nominal_code: str | None = None
    type: str = "Expense"
    currency: str = "GBP"
    status: str = "Active"

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "nominalCode": self.nominal_code,
            "type": self.type,
            "currency": self.currency,
            "status": self.status,
        }


@dataclass
class TaxRate:
    id: str
    name: str
    code: str | None = None
    effective_tax_rate: Decimal = Decimal("0")
    total_tax_rate: Decimal = Decimal("0")
    status: str = "Active"

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "code": self.code,
            "effectiveTaxRate": float(self.effective_tax_rate),
            "totalTaxRate": float(self.total_tax_rate),
            "status": self.status,
        }


@dataclass
class Payment:
    id: str
    bill_id: str
    amount: Decimal
    date: str
    account_id: str
    reference: str | None = None
    currency_rate: Decimal | None = None
    external: bool = False

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "amount": money_json(self.amount),
            "date": self.date,
            "reference": self.reference,
            "accountRef": {"id": self.account_id},
            "currencyRate": None if self.currency_rate is None else float(self.currency_rate),
        }


@dataclass
class Attachment:
    id: str
    name: str
    content_type: str
    content: bytes
    created: datetime

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "contentType": self.content_type,
            "dateCreated": iso(self.created),
            "fileSize": len(self.content),
            "includeWhenSent": False,
        }


@dataclass
class CompanyInfo:
    company_name: str | None
    base_currency: str | None

    def to_json(self) -> JsonDict:
        return {"companyName": self.company_name, "baseCurrency": self.base_currency}


@dataclass
class DataSet:
    """What an accounting platform holds for one SMB; loaded by Link or by a control route."""

    suppliers: list[Supplier] = field(default_factory=list)
    bills: list[Bill] = field(default_factory=list)
    bank_accounts: list[BankAccount] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    tax_rates: list[TaxRate] = field(default_factory=list)
    company_info: CompanyInfo | None = None


# ---------------------------------------------------------------------------------------------
# The ledger and its indexes


class SeqIndex:
    """Record ids ordered by an ever-increasing sequence number; bisect for 'after seq' paging."""

    __slots__ = ("ids", "seqs")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.ids: list[str] = []

    def add(self, seq: int, record_id: str) -> None:
        pos = bisect.bisect_left(self.seqs, seq)
        self.seqs.insert(pos, seq)
        self.ids.insert(pos, record_id)

    def remove(self, seq: int) -> None:
        pos = bisect.bisect_left(self.seqs, seq)
        if pos < len(self.seqs) and self.seqs[pos] == seq:
            del self.seqs[pos]
            del self.ids[pos]

    def after(self, seq: int) -> Iterator[tuple[int, str]]:
        pos = bisect.bisect_right(self.seqs, seq)
        return zip(
            itertools.islice(self.seqs, pos, None),
            itertools.islice(self.ids, pos, None),
            strict=True,
        )

    def __len__(self) -> int:
        return len(self.seqs)


@dataclass
class Ledger:
    """One connection's records; owned by the store, changed only under its lock."""

    suppliers: dict[str, Supplier] = field(default_factory=dict)
    supplier_order: SeqIndex = field(default_factory=SeqIndex)
    bills: dict[str, Bill] = field(default_factory=dict)
    # Each bill's JSON rendered once per change: listing pages is then a join, not a re-render.
    bill_views: dict[str, tuple[JsonDict, bytes]] = field(default_factory=dict)
    bill_order: SeqIndex = field(default_factory=SeqIndex)
    bills_by_status: dict[str, SeqIndex] = field(
        default_factory=lambda: {s: SeqIndex() for s in BILL_STATUSES}
    )
    bank_accounts: dict[str, BankAccount] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    tax_rates: dict[str, TaxRate] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    attachments: dict[str, dict[str, Attachment]] = field(default_factory=dict)
    company_info: CompanyInfo | None = None
    # Codat answers 409 to listings until a first read has fetched the data set.
    read_once: bool = False


def render_bill(ledger: Ledger, bill: Bill) -> None:
    """Cache the bill's JSON (and its bytes) for listings; call after every change to it."""
    body = bill.to_json()
    ledger.bill_views[bill.id] = (body, json.dumps(body, separators=(",", ":")).encode())


ItemT = TypeVar("ItemT")


def take_page(
    rows: Iterable[tuple[int, JsonDict, ItemT]],
    limit: int,
    predicate: Callable[[JsonDict], bool] | None,
) -> Page[ItemT]:
    """Up to ``limit`` items whose JSON passes ``predicate``; the page says where to continue."""
    items: list[ItemT] = []
    last_seq = 0
    for seq, body, item in rows:
        if predicate is not None and not predicate(body):
            continue
        if len(items) == limit:
            return Page(items, last_seq)
        items.append(item)
        last_seq = seq
    return Page(items, None)
