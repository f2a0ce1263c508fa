"""The emulator's state: every company, connection and accounting record, in memory, thread-safe.

Public interface (the HTTP layer and the Link, control and webhook modules use only this):

- ``Store(clock=utc_now, daily_quota_base=1000)``; every method is safe from any thread.
- Events: ``subscribe(callback)`` registers ``callback(DomainEvent)``; ``unsubscribe(callback)``.
  Events are delivered after the store's lock is released, in the order the changes happened,
  on the thread that made the change; a callback that raises is logged and skipped, never
  breaks the caller.
  Kinds: company.created, company.deleted, connection.created, connection.status_changed
  (data: ``connection``, ``previous_status``), connection.deleted, bill.created, bill.updated,
  supplier.created, supplier.updated, bank_account.created, payment.created, quota.exhausted,
  quota.reset. ``data`` always holds the record's Codat JSON shape under its kind's noun
  (``company``, ``connection``, ``bill``, ``supplier``, ``bank_account``, ``payment``) plus
  ``connection_id`` for records that live under a connection. Two more for write webhooks:
  ``attachment.created`` (data: ``attachment``, ``bill_id``, ``connection_id``) and
  ``write.failed`` (data: ``connection_id``, ``data_type`` bills|suppliers|bankAccounts|
  billPayments, ``write_type`` Create|Update|UploadAttachment, ``record_id`` or None, ``errors``
  as ``[{"itemId", "message"}]``), published by the HTTP layer when it refuses an API write
  with a 400 (``report_failed_write``).
- Companies: create_company, get_company, list_companies, replace_company, update_company,
  delete_company.
- Connections: create_connection, get_connection, list_connections, delete_connection and
  ``set_connection_status(company_id, connection_id, status)`` for link / unlink / deauthorize;
  ``fail_connection(company_id, connection_id, message)`` records a data connection error.
- Data outside the API (Link, seeded data sets, "paid outside the product"):
  ``load_dataset(company_id, connection_id, DataSet)`` bulk-loads suppliers, bills, bank accounts,
  accounts and tax rates (and company info) in one locked step; ``put_bill`` / ``put_supplier`` /
  ``put_bank_account`` insert or overwrite one record as the accounting platform would;
  ``record_external_payment(company_id, connection_id, bill_id, amount)`` pays a bill outside
  the product. Records handed to the store belong to it from then on: change them only through
  these methods (listings serve a rendering cached at the last change).
- Records through the API: create_supplier, replace_supplier, create_bill, update_bill,
  create_bank_account, create_payment, add_attachment, list/get attachments, list_bills (indexed by
  status, paged by sequence number), list_suppliers, mapping options, company_info.
- Quota: ``consume_quota(company_id)`` (the HTTP layer calls it once per request), ``quota_state``,
  ``set_quota(company_id, remaining=..., limit=...)`` (``remaining=0`` exhausts it),
  ``reset_quota(company_id)``. The limit is ``daily_quota_base * (1 + companies with a Linked
  connection)`` unless overridden; it resets at 00:00 UTC by the store's clock.
- Platform settings: webhook consumers (create/list/delete; each gets a ``whsec_`` signing secret
  that only the store exposes) and data type sync settings (client-wide and per company).

Errors are ``StoreError`` subclasses (``NotFound``, ``ValidationFailed``, ``NotLinked``,
``Conflict``/``NotYetRead``: bills, suppliers and attachments cannot be listed before a first
link or data set load); the HTTP layer maps them to Codat's error body. Money is ``Decimal``
with 2 places.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import itertools
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
JsonDict = dict[str, Any]

CENT = Decimal("0.01")

ConnectionStatus = Literal["PendingAuth", "Linked", "Unlinked", "Deauthorized"]
CONNECTION_STATUSES: tuple[str, ...] = ("PendingAuth", "Linked", "Unlinked", "Deauthorized")
BILL_STATUSES: tuple[str, ...] = ("Unknown", "Open", "PartiallyPaid", "Paid", "Void", "Draft")
PAYABLE_BILL_STATUSES = frozenset({"Open", "PartiallyPaid"})
SUPPLIER_STATUSES: tuple[str, ...] = ("Unknown", "Active", "Archived")
ACCOUNT_STATUSES: tuple[str, ...] = ("Active", "Archived")

# Codat's platform keys for the accounting platforms Bill Pay supports.
PLATFORMS: dict[str, str] = {
    "gbol": "Xero",
    "qhyg": "QuickBooks Online",
    "fbrh": "FreeAgent",
    "akxx": "Oracle NetSuite",
    "knfz": "Sage Intacct",
    "rwuv": "Zoho Books",
}
# Stable per platform, like Codat's integration ids (uuid5 so no id is hard-coded).
_INTEGRATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "codat-emulator/integrations")

DEFAULT_SYNC_DATA_TYPES: tuple[str, ...] = (
    "bankAccounts",
    "bills",
    "billPayments",
    "chartOfAccounts",
    "company",
    "paymentMethods",
    "suppliers",
)
MAX_WEBHOOK_CONSUMERS = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Codat's date-time shape: ISO 8601 in UTC with a Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def money_json(value: Decimal | None) -> float | None:
    # JSON numbers, as Codat sends them; 2-place decimals round-trip exactly through float repr.
    return None if value is None else float(value)


def new_id() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# Errors


class StoreError(Exception):
    """A request the store refuses; the message is safe to show to the API client."""


class NotFound(StoreError):
    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"{kind} with id '{record_id}' was not found.")
        self.kind = kind
        self.record_id = record_id


@dataclass(frozen=True)
class ValidationItem:
    message: str
    item_id: str | None = None
    validator_name: str | None = None


class ValidationFailed(StoreError):
    def __init__(self, errors: list[ValidationItem], message: str | None = None) -> None:
        super().__init__(message or "; ".join(e.message for e in errors))
        self.errors = errors


class NotLinked(StoreError):
    """A write on a connection that is not Linked."""


class Conflict(StoreError):
    pass


class NotYetRead(Conflict):
    """A listing before the connection's data set has ever been read (Codat's 409)."""

    def __init__(self) -> None:
        super().__init__("The data set has not been requested.")


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class DomainEvent:
    kind: str
    company_id: str
    data: dict[str, Any]
    occurred_at: datetime


EventCallback = Callable[[DomainEvent], None]


# ---------------------------------------------------------------------------------------------
# Records. Each renders its Codat JSON shape with to_json().


@dataclass
class Company:
    id: str
    name: str
    description: str | None
    redirect: str
    created: datetime
    tags: dict[str, str] = field(default_factory=dict)
    last_sync: datetime | None = None

    def to_json(self, connections: Iterable[Connection] = ()) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "name": self.name,
            "redirect": self.redirect,
            "created": iso(self.created),
            "products": ["payables"],
            "tags": dict(self.tags),
            "dataConnections": [c.to_json() for c in connections],
        }
        if self.description is not None:
            body["description"] = self.description
        if self.last_sync is not None:
            body["lastSync"] = iso(self.last_sync)
        return body


@dataclass
class ConnectionError_:
    status_code: str
    status_text: str
    error_message: str
    errored_on: datetime

    def to_json(self) -> JsonDict:
        return {
            "statusCode": self.status_code,
            "statusText": self.status_text,
            "errorMessage": self.error_message,
            "erroredOnUtc": iso(self.errored_on),
            "status": "Active",
        }


@dataclass
class Connection:
    id: str
    company_id: str
    platform_key: str
    link_url: str
    status: str
    created: datetime
    source_id: str
    last_sync: datetime | None = None
    errors: list[ConnectionError_] = field(default_factory=list)

    @property
    def platform_name(self) -> str:
        return PLATFORMS[self.platform_key]

    def to_json(self) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "integrationId": str(uuid.uuid5(_INTEGRATION_NAMESPACE, self.platform_key)),
            "integrationKey": self.platform_key,
            "sourceId": self.source_id,
            "sourceType": "Accounting",
            "platformName": self.platform_name,
            "linkUrl": self.link_url,
            "status": self.status,
            "created": iso(self.created),
            "dataConnectionErrors": [e.to_json() for e in self.errors],
        }
        if self.last_sync is not None:
            body["lastSync"] = iso(self.last_sync)
        return body


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
class WebhookConsumer:
    id: str
    url: str
    event_types: list[str]
    disabled: bool = False
    company_tags: list[str] | None = None
    # The Standard Webhooks signing secret; Codat shows it in its portal, never in the API.
    secret: str = field(
        default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "url": self.url,
            "disabled": self.disabled,
            "eventTypes": list(self.event_types),
            "companyTags": None if self.company_tags is None else list(self.company_tags),
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


@dataclass
class QuotaState:
    limit: int
    remaining: int
    resets_at: datetime


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_after: int | None  # the seq to continue after, None when this is the last page


# ---------------------------------------------------------------------------------------------
# Per-connection ledger, with the indexes listing and paying rely on


class _SeqIndex:
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
class _Ledger:
    suppliers: dict[str, Supplier] = field(default_factory=dict)
    supplier_order: _SeqIndex = field(default_factory=_SeqIndex)
    bills: dict[str, Bill] = field(default_factory=dict)
    # Each bill's JSON rendered once per change: listing pages is then a join, not a re-render.
    bill_views: dict[str, tuple[JsonDict, bytes]] = field(default_factory=dict)
    bill_order: _SeqIndex = field(default_factory=_SeqIndex)
    bills_by_status: dict[str, _SeqIndex] = field(
        default_factory=lambda: {s: _SeqIndex() for s in BILL_STATUSES}
    )
    bank_accounts: dict[str, BankAccount] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    tax_rates: dict[str, TaxRate] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    attachments: dict[str, dict[str, Attachment]] = field(default_factory=dict)
    company_info: CompanyInfo | None = None
    # Codat answers 409 to listings until a first read has fetched the data set.
    read_once: bool = False


@dataclass
class _Quota:
    day: str
    used: int = 0
    limit_override: int | None = None
    exhausted_reported: bool = False


# ---------------------------------------------------------------------------------------------
# The store


class Store:
    def __init__(self, clock: Clock = utc_now, daily_quota_base: int = 1000) -> None:
        self.clock = clock
        self.daily_quota_base = daily_quota_base
        self._lock = threading.RLock()
        self._local = threading.local()
        self._subscribers: list[EventCallback] = []
        self._seq = itertools.count(1)
        self._companies: dict[str, Company] = {}
        self._connections: dict[str, dict[str, Connection]] = {}
        self._ledgers: dict[tuple[str, str], _Ledger] = {}
        self._quotas: dict[str, _Quota] = {}
        self._linked_companies: set[str] = set()
        self._webhook_consumers: dict[str, WebhookConsumer] = {}
        self._client_sync_settings: JsonDict = {
            "clientId": new_id(),
            "overridesDefaults": True,
            "settings": [
                {
                    "dataType": data_type,
                    "fetchOnFirstLink": True,
                    "syncSchedule": 24,
                    "syncOrder": order,
                    "syncFromWindow": 24,
                    "monthsToSync": 24,
                    "isLocked": False,
                }
                for order, data_type in enumerate(DEFAULT_SYNC_DATA_TYPES)
            ],
        }
        self._company_sync_settings: dict[str, JsonDict] = {}

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, callback: EventCallback) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: EventCallback) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    @contextmanager
    def _change(self) -> Iterator[Callable[[str, str, JsonDict], None]]:
        """Hold the lock for one change; publish its events once the outermost change is done.

        Callbacks run outside the lock so they may call back into the store or block on I/O."""
        depth: int = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.pending = []
        self._local.depth = depth + 1
        try:
            with self._lock:
                yield self._emit
        finally:
            self._local.depth = depth
        if depth == 0:
            self._publish(self._local.pending)

    def _emit(self, kind: str, company_id: str, data: JsonDict) -> None:
        self._local.pending.append(DomainEvent(kind, company_id, data, self.clock()))

    def _publish(self, events: list[DomainEvent]) -> None:
        self._local.pending = []
        if not events:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for event in events:
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    log.exception("store subscriber failed on %s", event.kind)

    # -- companies ------------------------------------------------------------------------------

    def create_company(
        self,
        name: str,
        base_url: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> JsonDict:
        company_id = new_id()
        company = Company(
            id=company_id,
            name=name,
            description=description,
            redirect=f"{base_url.rstrip('/')}/link/{company_id}",
            created=self.clock(),
            tags=dict(tags or {}),
        )
        with self._change() as emit:
            self._companies[company_id] = company
            self._connections[company_id] = {}
            body = company.to_json()
            emit("company.created", company_id, {"company": body})
        return body

    def _company(self, company_id: str) -> Company:
        company = self._companies.get(company_id)
        if company is None:
            raise NotFound("Company", company_id)
        return company

    def has_company(self, company_id: str) -> bool:
        return company_id in self._companies

    def get_company(self, company_id: str) -> JsonDict:
        with self._lock:
            company = self._company(company_id)
            return company.to_json(self._connections[company_id].values())

    def list_companies(self) -> list[JsonDict]:
        with self._lock:
            return [c.to_json(self._connections[c.id].values()) for c in self._companies.values()]

    def replace_company(
        self, company_id: str, name: str, description: str | None, tags: dict[str, str] | None
    ) -> JsonDict:
        with self._change():
            company = self._company(company_id)
            company.name = name
            company.description = description
            company.tags = dict(tags or {})
            return company.to_json(self._connections[company_id].values())

    def update_company(
        self,
        company_id: str,
        name: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> JsonDict:
        with self._change():
            company = self._company(company_id)
            if name is not None:
                company.name = name
            if description is not None:
                company.description = description
            if tags is not None:
                company.tags = dict(tags)
            return company.to_json(self._connections[company_id].values())

    def delete_company(self, company_id: str) -> None:
        with self._change() as emit:
            company = self._company(company_id)
            body = company.to_json(self._connections[company_id].values())
            for connection_id in self._connections.pop(company_id):
                self._ledgers.pop((company_id, connection_id), None)
            del self._companies[company_id]
            self._linked_companies.discard(company_id)
            self._quotas.pop(company_id, None)
            self._company_sync_settings.pop(company_id, None)
            emit("company.deleted", company_id, {"company": body})

    # -- connections ----------------------------------------------------------------------------

    def create_connection(self, company_id: str, platform_key: str, base_url: str) -> JsonDict:
        if platform_key not in PLATFORMS:
            # Codat documents no 400 here: an unknown integration is a 404.
            known = ", ".join(f"{k} ({v})" for k, v in PLATFORMS.items())
            raise NotFound(f"Integration (supported: {known})", platform_key)
        with self._change() as emit:
            self._company(company_id)
            connection_id = new_id()
            connection = Connection(
                id=connection_id,
                company_id=company_id,
                platform_key=platform_key,
                link_url=f"{base_url.rstrip('/')}/link/{company_id}/connections/{connection_id}",
                status="PendingAuth",
                created=self.clock(),
                source_id=str(uuid.uuid5(_INTEGRATION_NAMESPACE, platform_key + "/source")),
            )
            self._connections[company_id][connection_id] = connection
            self._ledgers[(company_id, connection_id)] = _Ledger()
            body = connection.to_json()
            emit("connection.created", company_id, {"connection": body})
        return body

    def _connection(self, company_id: str, connection_id: str) -> Connection:
        self._company(company_id)
        connection = self._connections[company_id].get(connection_id)
        if connection is None:
            raise NotFound("Connection", connection_id)
        return connection

    def get_connection(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            return self._connection(company_id, connection_id).to_json()

    def list_connections(self, company_id: str) -> list[JsonDict]:
        with self._lock:
            self._company(company_id)
            return [c.to_json() for c in self._connections[company_id].values()]

    def set_connection_status(self, company_id: str, connection_id: str, status: str) -> JsonDict:
        """Link (``Linked``), unlink (``Unlinked``), deauthorize (``Deauthorized``) or reset."""
        if status not in CONNECTION_STATUSES:
            raise ValidationFailed(
                [ValidationItem(f"Unknown connection status '{status}'.", item_id="status")]
            )
        with self._change() as emit:
            connection = self._connection(company_id, connection_id)
            previous = connection.status
            connection.status = status
            if status == "Linked":
                self._ledgers[(company_id, connection_id)].read_once = True
                connection.last_sync = self.clock()
                self._companies[company_id].last_sync = connection.last_sync
            self._refresh_linked(company_id)
            body = connection.to_json()
            if previous != status:
                emit(
                    "connection.status_changed",
                    company_id,
                    {"connection": body, "previous_status": previous},
                )
        return body

    def fail_connection(self, company_id: str, connection_id: str, message: str) -> JsonDict:
        """Record a failed authorization or sync; the status stays as it is (Codat's behaviour)."""
        with self._change() as emit:
            connection = self._connection(company_id, connection_id)
            connection.errors.append(ConnectionError_("400", "Bad Request", message, self.clock()))
            body = connection.to_json()
            emit(
                "connection.status_changed",
                company_id,
                {"connection": body, "previous_status": connection.status, "error": message},
            )
        return body

    def delete_connection(self, company_id: str, connection_id: str) -> None:
        with self._change() as emit:
            connection = self._connection(company_id, connection_id)
            body = connection.to_json()
            del self._connections[company_id][connection_id]
            self._ledgers.pop((company_id, connection_id), None)
            self._refresh_linked(company_id)
            emit("connection.deleted", company_id, {"connection": body})

    def _refresh_linked(self, company_id: str) -> None:
        connections = self._connections.get(company_id, {})
        if any(c.status == "Linked" for c in connections.values()):
            self._linked_companies.add(company_id)
        else:
            self._linked_companies.discard(company_id)

    def _ledger(self, company_id: str, connection_id: str) -> _Ledger:
        self._connection(company_id, connection_id)
        return self._ledgers[(company_id, connection_id)]

    def _read_ledger(self, company_id: str, connection_id: str) -> _Ledger:
        ledger = self._ledger(company_id, connection_id)
        if not ledger.read_once:
            raise NotYetRead()
        return ledger

    def _writable_ledger(self, company_id: str, connection_id: str) -> _Ledger:
        connection = self._connection(company_id, connection_id)
        if connection.status != "Linked":
            raise NotLinked(
                f"Connection '{connection_id}' is {connection.status};"
                " writes need a Linked connection."
            )
        return self._ledgers[(company_id, connection_id)]

    # -- bulk data and changes outside the API --------------------------------------------------

    def load_dataset(self, company_id: str, connection_id: str, dataset: DataSet) -> None:
        """Load (or overwrite by id) a platform's records into one connection in one locked step.

        Emits no per-record events: a data set is what the platform already holds, and the read
        that surfaces it is announced by the caller (a ``read.completed`` webhook).
        """
        with self._change():
            ledger = self._ledger(company_id, connection_id)
            ledger.read_once = True
            for supplier in dataset.suppliers:
                self._put_supplier(ledger, supplier)
            for account in dataset.accounts:
                ledger.accounts[account.id] = account
            for tax_rate in dataset.tax_rates:
                ledger.tax_rates[tax_rate.id] = tax_rate
            for bank_account in dataset.bank_accounts:
                ledger.bank_accounts[bank_account.id] = bank_account
            for bill in dataset.bills:
                self._put_bill(ledger, bill)
            if dataset.company_info is not None:
                ledger.company_info = dataset.company_info

    def put_bill(self, company_id: str, connection_id: str, bill: Bill) -> JsonDict:
        """Insert or overwrite a bill as the accounting platform would (no Linked check)."""
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            existed = bill.id in ledger.bills
            self._put_bill(ledger, bill)
            body = bill.to_json()
            emit(
                "bill.updated" if existed else "bill.created",
                company_id,
                {"bill": body, "connection_id": connection_id},
            )
        return body

    def put_supplier(self, company_id: str, connection_id: str, supplier: Supplier) -> JsonDict:
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            existed = supplier.id in ledger.suppliers
            self._put_supplier(ledger, supplier)
            body = supplier.to_json()
            emit(
                "supplier.updated" if existed else "supplier.created",
                company_id,
                {"supplier": body, "connection_id": connection_id},
            )
        return body

    def put_bank_account(
        self, company_id: str, connection_id: str, bank_account: BankAccount
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            ledger.bank_accounts[bank_account.id] = bank_account
            body = bank_account.to_json()
            emit(
                "bank_account.created",
                company_id,
                {"bank_account": body, "connection_id": connection_id},
            )
        return body

    def record_external_payment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        amount: Decimal | None = None,
        date: str | None = None,
    ) -> JsonDict:
        """A payment made in the accounting platform, outside the product: no Linked check, no
        bank account; ``amount=None`` pays the whole amount due."""
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            bill = self._bill(ledger, bill_id)
            paid = money(amount) if amount is not None else bill.amount_due
            self._check_payable(bill, paid)
            payment = Payment(
                id=new_id(),
                bill_id=bill_id,
                amount=paid,
                date=date or self.clock().date().isoformat(),
                account_id="",
                external=True,
            )
            self._apply_payment(ledger, bill, payment, emit, company_id, connection_id)
        return bill.to_json()

    def _put_supplier(self, ledger: _Ledger, supplier: Supplier) -> None:
        old = ledger.suppliers.get(supplier.id)
        if old is not None:
            ledger.supplier_order.remove(old.seq)
        supplier.seq = next(self._seq)
        if supplier.source_modified_date is None:
            supplier.source_modified_date = self.clock()
        ledger.suppliers[supplier.id] = supplier
        ledger.supplier_order.add(supplier.seq, supplier.id)

    def _put_bill(self, ledger: _Ledger, bill: Bill) -> None:
        if bill.status not in BILL_STATUSES:
            raise ValidationFailed(
                [ValidationItem(f"Unknown bill status '{bill.status}'.", "status")]
            )
        old = ledger.bills.get(bill.id)
        if old is not None:
            ledger.bill_order.remove(old.seq)
            ledger.bills_by_status[old.status].remove(old.seq)
        # A change moves the bill to the end of the order, so a continuation token taken before
        # the change still sees it once (the way "modified since" listings behave).
        bill.seq = next(self._seq)
        if bill.source_modified_date is None:
            bill.source_modified_date = self.clock()
        if bill.supplier_name is None:
            supplier = ledger.suppliers.get(bill.supplier_id)
            bill.supplier_name = supplier.supplier_name if supplier else None
        ledger.bills[bill.id] = bill
        _render_bill(ledger, bill)
        ledger.bill_order.add(bill.seq, bill.id)
        ledger.bills_by_status[bill.status].add(bill.seq, bill.id)

    # -- suppliers ------------------------------------------------------------------------------

    def create_supplier(self, company_id: str, connection_id: str, supplier: Supplier) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            supplier.id = supplier.id or new_id()
            supplier.source_modified_date = self.clock()
            self._put_supplier(ledger, supplier)
            body = supplier.to_json()
            emit("supplier.created", company_id, {"supplier": body, "connection_id": connection_id})
        return body

    def replace_supplier(
        self, company_id: str, connection_id: str, supplier_id: str, supplier: Supplier
    ) -> JsonDict:
        """Supplier update is a full replace: fields left out of the body are cleared."""
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            if supplier_id not in ledger.suppliers:
                raise NotFound("Supplier", supplier_id)
            supplier.id = supplier_id
            supplier.source_modified_date = self.clock()
            self._put_supplier(ledger, supplier)
            body = supplier.to_json()
            emit("supplier.updated", company_id, {"supplier": body, "connection_id": connection_id})
        return body

    def get_supplier(self, company_id: str, connection_id: str, supplier_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            supplier = ledger.suppliers.get(supplier_id)
            if supplier is None:
                raise NotFound("Supplier", supplier_id)
            return supplier.to_json()

    def list_suppliers(
        self,
        company_id: str,
        connection_id: str,
        after: int,
        limit: int,
        predicate: Callable[[JsonDict], bool] | None = None,
    ) -> Page[JsonDict]:
        with self._lock:
            ledger = self._read_ledger(company_id, connection_id)
            bodies = (
                (seq, ledger.suppliers[sid].to_json())
                for seq, sid in ledger.supplier_order.after(after)
            )
            return _take_page(((seq, body, body) for seq, body in bodies), limit, predicate)

    # -- bills ----------------------------------------------------------------------------------

    def _bill(self, ledger: _Ledger, bill_id: str) -> Bill:
        bill = ledger.bills.get(bill_id)
        if bill is None:
            raise NotFound("Bill", bill_id)
        return bill

    def get_bill(self, company_id: str, connection_id: str, bill_id: str) -> JsonDict:
        with self._lock:
            return self._bill(self._ledger(company_id, connection_id), bill_id).to_json()

    def list_bills(
        self,
        company_id: str,
        connection_id: str,
        after: int,
        limit: int,
        statuses: frozenset[str] | None,
        predicate: Callable[[JsonDict], bool] | None = None,
    ) -> Page[JsonDict]:
        """Bills in sequence order after ``after``; ``statuses`` narrows the scan to those indexes
        (the caller still passes the full ``predicate``)."""
        with self._lock:
            rows = (
                (seq, view, view)
                for seq, view, _ in self._bill_rows(company_id, connection_id, after, statuses)
            )
            page = _take_page(rows, limit, predicate)
            return Page([_copy_json(item) for item in page.items], page.next_after)

    def list_bills_json(
        self,
        company_id: str,
        connection_id: str,
        after: int,
        limit: int,
        statuses: frozenset[str] | None,
        predicate: Callable[[JsonDict], bool] | None = None,
    ) -> Page[bytes]:
        """As ``list_bills``, each bill as its JSON bytes (what the HTTP layer sends)."""
        with self._lock:
            rows = self._bill_rows(company_id, connection_id, after, statuses)
            return _take_page(rows, limit, predicate)

    def _bill_rows(
        self, company_id: str, connection_id: str, after: int, statuses: frozenset[str] | None
    ) -> Iterator[tuple[int, JsonDict, bytes]]:
        ledger = self._read_ledger(company_id, connection_id)
        if statuses is None:
            candidates: Iterator[tuple[int, str]] = ledger.bill_order.after(after)
        else:
            candidates = heapq.merge(
                *(
                    ledger.bills_by_status[s].after(after)
                    for s in sorted(statuses)
                    if s in ledger.bills_by_status
                )
            )
        views = ledger.bill_views
        return ((seq, *views[bill_id]) for seq, bill_id in candidates)

    def count_bills(self, company_id: str, connection_id: str) -> dict[str, int]:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            return {status: len(index) for status, index in ledger.bills_by_status.items()}

    def _validate_bill_refs(self, ledger: _Ledger, bill: Bill) -> None:
        errors: list[ValidationItem] = []
        supplier = ledger.suppliers.get(bill.supplier_id)
        if supplier is None:
            errors.append(
                ValidationItem(f"Supplier '{bill.supplier_id}' does not exist.", "supplierRef.id")
            )
        elif supplier.status == "Archived":
            errors.append(
                ValidationItem(f"Supplier '{bill.supplier_id}' is archived.", "supplierRef.id")
            )
        for index, line in enumerate(bill.line_items):
            if line.account_id is not None and line.account_id not in ledger.accounts:
                errors.append(
                    ValidationItem(
                        f"Account '{line.account_id}' does not exist.",
                        f"lineItems[{index}].accountRef.id",
                    )
                )
            if line.tax_rate_id is not None and line.tax_rate_id not in ledger.tax_rates:
                errors.append(
                    ValidationItem(
                        f"Tax rate '{line.tax_rate_id}' does not exist.",
                        f"lineItems[{index}].taxRateRef.id",
                    )
                )
        if bill.status not in ("Open", "Draft", "Void"):
            errors.append(
                ValidationItem(
                    f"A bill cannot be written with status '{bill.status}':"
                    " use Open, Draft or Void;"
                    " payments set PartiallyPaid and Paid.",
                    "status",
                )
            )
        if errors:
            raise ValidationFailed(errors)
        if supplier is not None:
            bill.supplier_name = supplier.supplier_name

    def create_bill(self, company_id: str, connection_id: str, bill: Bill) -> JsonDict:
        """``bill.total_amount``/``amount_due`` are derived from its lines here."""
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            self._validate_bill_refs(ledger, bill)
            bill.id = new_id()
            bill.total_amount = money(sum((line.total for line in bill.line_items), Decimal(0)))
            bill.amount_due = bill.total_amount if bill.status != "Void" else Decimal("0.00")
            bill.source_modified_date = self.clock()
            self._put_bill(ledger, bill)
            body = bill.to_json()
            emit("bill.created", company_id, {"bill": body, "connection_id": connection_id})
        return body

    def update_bill(
        self, company_id: str, connection_id: str, bill_id: str, bill: Bill
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            current = self._bill(ledger, bill_id)
            if current.status != "Open":
                raise ValidationFailed(
                    [
                        ValidationItem(
                            f"Only Open bills can be updated; bill '{bill_id}' is"
                            f" {current.status}.",
                            "status",
                        )
                    ]
                )
            self._validate_bill_refs(ledger, bill)
            bill.id = bill_id
            bill.total_amount = money(sum((line.total for line in bill.line_items), Decimal(0)))
            bill.amount_due = bill.total_amount if bill.status != "Void" else Decimal("0.00")
            bill.source_modified_date = self.clock()
            self._put_bill(ledger, bill)
            body = bill.to_json()
            emit("bill.updated", company_id, {"bill": body, "connection_id": connection_id})
        return body

    # -- attachments ----------------------------------------------------------------------------

    def add_attachment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        name: str,
        content_type: str,
        content: bytes,
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            self._bill(ledger, bill_id)
            attachment = Attachment(new_id(), name, content_type, content, self.clock())
            ledger.attachments.setdefault(bill_id, {})[attachment.id] = attachment
            body = attachment.to_json()
            emit(
                "attachment.created",
                company_id,
                {"attachment": body, "bill_id": bill_id, "connection_id": connection_id},
            )
            return body

    def list_attachments(self, company_id: str, connection_id: str, bill_id: str) -> list[JsonDict]:
        with self._lock:
            ledger = self._read_ledger(company_id, connection_id)
            self._bill(ledger, bill_id)
            return [a.to_json() for a in ledger.attachments.get(bill_id, {}).values()]

    def get_attachment(
        self, company_id: str, connection_id: str, bill_id: str, attachment_id: str
    ) -> Attachment:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            self._bill(ledger, bill_id)
            attachment = ledger.attachments.get(bill_id, {}).get(attachment_id)
            if attachment is None:
                raise NotFound("Attachment", attachment_id)
            return replace(attachment)

    # -- mapping options, company info, bank accounts -------------------------------------------

    def bill_mapping_options(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            return {
                "accounts": [a.to_json() for a in ledger.accounts.values()],
                "taxRates": [t.to_json() for t in ledger.tax_rates.values()],
            }

    def payment_mapping_options(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            return {"bankAccounts": [b.to_json() for b in ledger.bank_accounts.values()]}

    def company_info(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            if ledger.company_info is not None:
                return ledger.company_info.to_json()
            return CompanyInfo(self._companies[company_id].name, "GBP").to_json()

    def create_bank_account(
        self, company_id: str, connection_id: str, bank_account: BankAccount
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            bank_account.id = new_id()
            bank_account.source_modified_date = self.clock()
            ledger.bank_accounts[bank_account.id] = bank_account
            body = bank_account.to_json()
            emit(
                "bank_account.created",
                company_id,
                {"bank_account": body, "connection_id": connection_id},
            )
        return body

    # -- payments -------------------------------------------------------------------------------

    @staticmethod
    def _check_payable(bill: Bill, amount: Decimal) -> None:
        errors: list[ValidationItem] = []
        if bill.status not in PAYABLE_BILL_STATUSES:
            errors.append(
                ValidationItem(
                    f"Bill '{bill.id}' is {bill.status};"
                    " only Open or PartiallyPaid bills can be paid.",
                    "billId",
                )
            )
        if amount <= 0:
            errors.append(ValidationItem("Payment amount must be greater than zero.", "amount"))
        elif bill.status in PAYABLE_BILL_STATUSES and amount > bill.amount_due:
            errors.append(
                ValidationItem(
                    f"Payment amount {amount} exceeds the amount due {bill.amount_due}.", "amount"
                )
            )
        if errors:
            raise ValidationFailed(errors)

    def create_payment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        amount: Decimal,
        date: str,
        account_id: str,
        reference: str | None = None,
        currency_rate: Decimal | None = None,
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            bill = self._bill(ledger, bill_id)
            amount = money(amount)
            errors: list[ValidationItem] = []
            try:
                self._check_payable(bill, amount)
            except ValidationFailed as failed:
                errors.extend(failed.errors)
            account = ledger.bank_accounts.get(account_id)
            if account is None:
                errors.append(
                    ValidationItem(f"Bank account '{account_id}' does not exist.", "accountRef.id")
                )
            elif account.status != "Active":
                errors.append(
                    ValidationItem(f"Bank account '{account_id}' is archived.", "accountRef.id")
                )
            else:
                base = ledger.company_info.base_currency if ledger.company_info else None
                if account.currency not in (bill.currency, base or bill.currency):
                    errors.append(
                        ValidationItem(
                            f"Bank account currency {account.currency} is neither the bill's"
                            f" currency {bill.currency} nor the base currency {base}.",
                            "accountRef.id",
                        )
                    )
            if errors:
                raise ValidationFailed(errors)
            payment = Payment(
                id=new_id(),
                bill_id=bill_id,
                amount=amount,
                date=date,
                account_id=account_id,
                reference=reference,
                currency_rate=currency_rate,
            )
            self._apply_payment(ledger, bill, payment, emit, company_id, connection_id)
            return payment.to_json()

    def _apply_payment(
        self,
        ledger: _Ledger,
        bill: Bill,
        payment: Payment,
        emit: Callable[[str, str, JsonDict], None],
        company_id: str,
        connection_id: str,
    ) -> None:
        ledger.payments[payment.id] = payment
        ledger.bills_by_status[bill.status].remove(bill.seq)
        ledger.bill_order.remove(bill.seq)
        bill.amount_due = money(bill.amount_due - payment.amount)
        bill.status = "Paid" if bill.amount_due == 0 else "PartiallyPaid"
        bill.source_modified_date = self.clock()
        bill.seq = next(self._seq)
        ledger.bill_order.add(bill.seq, bill.id)
        ledger.bills_by_status[bill.status].add(bill.seq, bill.id)
        _render_bill(ledger, bill)
        payment_body = payment.to_json()
        payment_body["billId"] = bill.id
        payment_body["external"] = payment.external
        emit(
            "payment.created",
            company_id,
            {"payment": payment_body, "connection_id": connection_id},
        )
        emit("bill.updated", company_id, {"bill": bill.to_json(), "connection_id": connection_id})

    def list_payments(
        self, company_id: str, connection_id: str, bill_id: str | None = None
    ) -> list[JsonDict]:
        """Not a Codat endpoint (the sync API lists no payments): for tests and control routes."""
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            out = []
            for p in ledger.payments.values():
                if bill_id is None or p.bill_id == bill_id:
                    body = p.to_json()
                    body["billId"] = p.bill_id
                    body["external"] = p.external
                    out.append(body)
            return out

    def report_failed_write(
        self,
        company_id: str,
        connection_id: str,
        data_type: str,
        write_type: str,
        record_id: str | None,
        errors: list[ValidationItem],
    ) -> None:
        """Publish ``write.failed`` for an API write the emulator refused (nothing changed)."""
        with self._change() as emit:
            if company_id not in self._companies:
                return
            emit(
                "write.failed",
                company_id,
                {
                    "connection_id": connection_id,
                    "data_type": data_type,
                    "write_type": write_type,
                    "record_id": record_id,
                    "errors": [{"itemId": e.item_id, "message": e.message} for e in errors],
                },
            )

    # -- quota ----------------------------------------------------------------------------------

    def _today(self) -> str:
        return self.clock().astimezone(UTC).date().isoformat()

    def _next_reset(self) -> datetime:
        now = self.clock().astimezone(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)

    def _quota(self, key: str, emit: Callable[[str, str, JsonDict], None]) -> _Quota:
        today = self._today()
        quota = self._quotas.get(key)
        if quota is None:
            quota = self._quotas[key] = _Quota(day=today)
        elif quota.day != today:
            was_exhausted = quota.exhausted_reported
            quota.day, quota.used, quota.exhausted_reported = today, 0, False
            quota.limit_override = None
            if was_exhausted:
                emit("quota.reset", key, self._quota_body(quota))
        return quota

    def _limit(self, quota: _Quota) -> int:
        if quota.limit_override is not None:
            return quota.limit_override
        return self.daily_quota_base * (1 + len(self._linked_companies))

    def _quota_body(self, quota: _Quota) -> JsonDict:
        limit = self._limit(quota)
        return {
            "dailyQuota": limit,
            "quotaRemaining": max(0, limit - quota.used),
            "expiryDate": iso(self._next_reset()),
        }

    def consume_quota(self, company_id: str) -> tuple[bool, QuotaState]:
        """Count one request against ``company_id``'s daily quota (``""`` for client-level calls).

        Returns (allowed, state after the call). A refused call is not counted."""
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            limit = self._limit(quota)
            allowed = quota.used < limit
            if allowed:
                quota.used += 1
            if quota.used >= limit and not quota.exhausted_reported:
                quota.exhausted_reported = True
                emit("quota.exhausted", company_id, self._quota_body(quota))
            return allowed, QuotaState(limit, max(0, limit - quota.used), self._next_reset())

    def quota_state(self, company_id: str) -> QuotaState:
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            limit = self._limit(quota)
            return QuotaState(limit, max(0, limit - quota.used), self._next_reset())

    def set_quota(
        self, company_id: str, remaining: int | None = None, limit: int | None = None
    ) -> QuotaState:
        """Override the day's limit and/or what is left of it (``remaining=0`` exhausts it)."""
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            if limit is not None:
                quota.limit_override = limit
            effective = self._limit(quota)
            if remaining is not None:
                quota.used = max(0, effective - remaining)
            if quota.used >= effective and not quota.exhausted_reported:
                quota.exhausted_reported = True
                emit("quota.exhausted", company_id, self._quota_body(quota))
            elif quota.used < effective and quota.exhausted_reported:
                quota.exhausted_reported = False
                emit("quota.reset", company_id, self._quota_body(quota))
            return QuotaState(effective, max(0, effective - quota.used), self._next_reset())

    def reset_quota(self, company_id: str) -> QuotaState:
        """Back to a fresh day: no override, nothing used."""
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            quota.limit_override = None
            quota.used = 0
            if quota.exhausted_reported:
                quota.exhausted_reported = False
                emit("quota.reset", company_id, self._quota_body(quota))
            limit = self._limit(quota)
            return QuotaState(limit, limit, self._next_reset())

    # -- platform: webhook consumers and sync settings ------------------------------------------

    def create_webhook_consumer(
        self,
        url: str,
        event_types: list[str],
        disabled: bool = False,
        company_tags: list[str] | None = None,
    ) -> JsonDict:
        with self._lock:
            if len(self._webhook_consumers) >= MAX_WEBHOOK_CONSUMERS:
                raise ValidationFailed(
                    [ValidationItem(f"At most {MAX_WEBHOOK_CONSUMERS} webhook consumers.", "url")]
                )
            consumer = WebhookConsumer(new_id(), url, list(event_types), disabled, company_tags)
            self._webhook_consumers[consumer.id] = consumer
            return consumer.to_json()

    def list_webhook_consumers(self) -> list[JsonDict]:
        with self._lock:
            return [c.to_json() for c in self._webhook_consumers.values()]

    def webhook_consumers(self) -> list[WebhookConsumer]:
        """The records, signing secrets included (for delivery; never sent over the API)."""
        with self._lock:
            return [replace(c) for c in self._webhook_consumers.values()]

    def delete_webhook_consumer(self, consumer_id: str) -> None:
        with self._lock:
            if self._webhook_consumers.pop(consumer_id, None) is None:
                raise NotFound("Webhook consumer", consumer_id)

    def client_sync_settings(self) -> JsonDict:
        with self._lock:
            return _copy_json(self._client_sync_settings)

    def set_client_sync_settings(self, settings: list[JsonDict], overrides_defaults: bool) -> None:
        with self._lock:
            self._client_sync_settings["settings"] = [_copy_json(x) for x in settings]
            self._client_sync_settings["overridesDefaults"] = overrides_defaults

    def company_sync_settings(self, company_id: str) -> JsonDict:
        with self._lock:
            self._company(company_id)
            stored = self._company_sync_settings.get(company_id)
            if stored is not None:
                return _copy_json(stored)
            return {
                "companyId": company_id,
                "settings": [_copy_json(x) for x in self._client_sync_settings["settings"]],
                "overridesDefaults": False,
            }

    def set_company_sync_settings(
        self, company_id: str, settings: list[JsonDict], overrides_defaults: bool
    ) -> None:
        with self._lock:
            self._company(company_id)
            self._company_sync_settings[company_id] = {
                "companyId": company_id,
                "settings": [_copy_json(x) for x in settings],
                "overridesDefaults": overrides_defaults,
            }


def _copy_json(value: JsonDict) -> JsonDict:
    return dict(_copy_value(value))


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_value(v) for v in value]
    return value


def _render_bill(ledger: _Ledger, bill: Bill) -> None:
    body = bill.to_json()
    ledger.bill_views[bill.id] = (body, json.dumps(body, separators=(",", ":")).encode())


ItemT = TypeVar("ItemT")


def _take_page(
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
