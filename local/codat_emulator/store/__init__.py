"""The emulator's state: every company, connection and accounting record, in memory, thread-safe.

One ``Store`` holds it all, composed of one class per aggregate, each in its module with the
records it owns:

- ``core``: time and money helpers, the errors, ``DomainEvent``, ``Page`` and ``StoreCore`` (the
  one lock and the events every change goes through);
- ``companies``: ``Company``, ``Connection`` (``CompaniesStore``);
- ``ledger`` + ``payables``: each connection's ledger of suppliers, bills, attachments, bank
  accounts, payments and mapping options, and the operations on it (``PayablesStore``);
- ``quota``: the daily request quota (``QuotaStore``);
- ``platform``: webhook consumers and data type sync settings (``PlatformStore``).

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
  as ``[{"itemId", "message"}]``), published by the HTTP layer when the accounting platform
  refuses an API write with a 400 (``report_failed_write``).
- Companies: create_company, get_company, list_companies, replace_company, update_company,
  delete_company.
- Connections: create_connection, get_connection, list_connections, delete_connection and
  ``set_connection_status(company_id, connection_id, status)`` for link / unlink;
  ``deauthorize_connection`` (``Deauthorized`` with Codat's 401 data connection error);
  ``fail_connection(company_id, connection_id, message, status_code, status_text)`` records a
  failed (400) or cancelled (403) authorization.
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

from codat_emulator.store.companies import (
    CONNECTION_STATUSES,
    PLATFORMS,
    Company,
    Connection,
    ConnectionError_,
)
from codat_emulator.store.core import (
    CENT,
    Clock,
    Conflict,
    DomainEvent,
    EventCallback,
    JsonDict,
    NotFound,
    NotLinked,
    NotYetRead,
    Page,
    StoreCore,
    StoreError,
    ValidationFailed,
    ValidationItem,
    iso,
    money,
    money_json,
    new_id,
    utc_now,
)
from codat_emulator.store.ledger import (
    ACCOUNT_STATUSES,
    BILL_STATUSES,
    PAYABLE_BILL_STATUSES,
    SUPPLIER_STATUSES,
    Account,
    Address,
    Attachment,
    BankAccount,
    Bill,
    BillLine,
    CompanyInfo,
    DataSet,
    Payment,
    Supplier,
    TaxRate,
)
from codat_emulator.store.payables import PayablesStore
from codat_emulator.store.platform import (
    DEFAULT_SYNC_DATA_TYPES,
    MAX_WEBHOOK_CONSUMERS,
    PlatformStore,
    WebhookConsumer,
)
from codat_emulator.store.quota import QuotaState, QuotaStore


class Store(PayablesStore, QuotaStore, PlatformStore):
    """Every aggregate behind one lock (see the module docstring for the interface)."""

    def __init__(self, clock: Clock = utc_now, daily_quota_base: int = 1000) -> None:
        StoreCore.__init__(self, clock)
        self._init_companies()
        self._init_payables()
        self._init_quota(daily_quota_base)
        self._init_platform()


__all__ = [
    "ACCOUNT_STATUSES",
    "BILL_STATUSES",
    "CENT",
    "CONNECTION_STATUSES",
    "DEFAULT_SYNC_DATA_TYPES",
    "MAX_WEBHOOK_CONSUMERS",
    "PAYABLE_BILL_STATUSES",
    "PLATFORMS",
    "SUPPLIER_STATUSES",
    "Account",
    "Address",
    "Attachment",
    "BankAccount",
    "Bill",
    "BillLine",
    "Clock",
    "Company",
    "CompanyInfo",
    "Conflict",
    "Connection",
    "ConnectionError_",
    "DataSet",
    "DomainEvent",
    "EventCallback",
    "JsonDict",
    "NotFound",
    "NotLinked",
    "NotYetRead",
    "Page",
    "Payment",
    "QuotaState",
    "Store",
    "StoreError",
    "Supplier",
    "TaxRate",
    "ValidationFailed",
    "ValidationItem",
    "WebhookConsumer",
    "iso",
    "money",
    "money_json",
    "new_id",
    "utc_now",
]
