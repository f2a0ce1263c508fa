"""The SMB's payables as Codat last reported them: bills, suppliers, and the accounts bills are paid
from. Amounts are Decimal with the currency's places (`billpay.core.money`); a float never gets here.

Every record carries Codat's `sourceModifiedDate`: the sync keeps, for each record, the version
with the latest one, so an older read never overwrites newer state. Codat leaves the date empty on
records voided or deleted in some platforms; such a record is final, so an undated version
replaces whatever is stored (see `is_newer_than`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from billpay.companies.models import CompanyRecord, CompanyStatus
from billpay.core.errors import BillPayError
from billpay.core.money import to_money

# Ids Codat gives records are opaque strings (GUIDs, numbers, "12-3"...). This bounds what the API
# accepts in a path before any lookup: printable, no separators that could mean something to us.
RECORD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+=-]{0,127}$"
RecordId = Annotated[str, StringConstraints(pattern=RECORD_ID_PATTERN)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class BillStatus(StrEnum):
    UNKNOWN = "Unknown"
    OPEN = "Open"
    PARTIALLY_PAID = "PartiallyPaid"
    PAID = "Paid"
    VOID = "Void"
    DRAFT = "Draft"


class SupplierStatus(StrEnum):
    UNKNOWN = "Unknown"
    ACTIVE = "Active"
    ARCHIVED = "Archived"


class AccountStatus(StrEnum):
    ACTIVE = "Active"
    ARCHIVED = "Archived"


class CompanyNotReadyError(BillPayError):
    code = "CompanyNotReady"
    http_status = HTTPStatus.CONFLICT


# Bills are shown while the SMB relinks (as last synced); they change only once it is READY.
READABLE_STATUSES = frozenset({CompanyStatus.READY, CompanyStatus.NEEDS_RELINK})
# The product's copy of them stays readable after offboarding too (as last synced, never synced
# or written again): offboarding keeps a company's data readable. Reads of Codat itself (a
# payment's reconcile) keep READABLE_STATUSES: an unlinked connection has nothing to read.
COPY_READABLE_STATUSES = READABLE_STATUSES | {CompanyStatus.OFFBOARDED}
WRITABLE_STATUSES = frozenset({CompanyStatus.READY})
# The sync runs from the first read on: onboarding's initial load happens before READY.
SYNCABLE_STATUSES = frozenset(
    {CompanyStatus.INITIAL_READ, CompanyStatus.READY, CompanyStatus.NEEDS_RELINK}
)


@dataclass(frozen=True)
class Connection:
    """Where a company's books are in Codat, and which accounting platform holds them."""

    company_id: str
    codat_company_id: str
    connection_id: str
    platform_key: str

    @classmethod
    def of(cls, company: CompanyRecord, allowed: frozenset[CompanyStatus]) -> Connection:
        """The company's connection, if its status allows; CompanyNotReadyError if not."""
        if company.status not in allowed:
            wanted = " or ".join(sorted(allowed))
            raise CompanyNotReadyError(
                f"company {company.company_id!r} is {company.status}, not {wanted}"
            )
        if not (company.codat_company_id and company.connection_id and company.platform_key):
            raise CompanyNotReadyError(
                f"company {company.company_id!r} has no Codat connection recorded"
            )
        return cls(
            company_id=company.company_id,
            codat_company_id=company.codat_company_id,
            connection_id=company.connection_id,
            platform_key=company.platform_key,
        )


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class Address(_Model):
    type: str = "Unknown"
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    postal_code: str | None = Field(default=None, alias="postalCode")


class SyncedRecord(_Model):
    """What every record kept from Codat has: an id and Codat's source modified date."""

    source_modified_date: datetime | None = Field(default=None, alias="sourceModifiedDate")

    @property
    def record_id(self) -> str:
        raise NotImplementedError

    def synced_fields(self) -> dict[str, Any]:
        """The fields the sync owns (Python values, by alias): what it compares and writes."""
        return self.model_dump(by_alias=True, exclude=self._not_synced())

    def digest(self) -> str:
        """A fingerprint of the synced fields: equal digests mean nothing to write."""
        fields = self.model_dump(mode="json", by_alias=True, exclude=self._not_synced())
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def is_newer_than(self, stored_modified: datetime | None, stored_digest: str | None) -> bool:
        """Whether this version should replace the stored one (None, None: nothing stored)."""
        if stored_digest is None:
            return True
        if stored_digest == self.digest():
            return False
        if self.source_modified_date is None:  # voided/deleted: final
            return True
        return stored_modified is not None and self.source_modified_date > stored_modified

    @classmethod
    def _not_synced(cls) -> set[str]:
        return set()


class SupplierRecord(SyncedRecord):
    supplier_id: str = Field(alias="id")
    name: str = Field(alias="supplierName")
    contact_name: str | None = Field(default=None, alias="contactName")
    email_address: str | None = Field(default=None, alias="emailAddress")
    phone: str | None = None
    addresses: tuple[Address, ...] = ()
    status: SupplierStatus = SupplierStatus.UNKNOWN
    default_currency: str | None = Field(default=None, alias="defaultCurrency")

    @property
    def record_id(self) -> str:
        return self.supplier_id


class ProductPayment(_Model):
    """A payment the product made on a bill, as the payments capability records it. The sync never
    writes this list: Codat has no list of a bill's payments to sync it from."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="allow")

    payment_id: str = Field(alias="paymentId")
    amount: Decimal
    status: str


class BillRecord(SyncedRecord):
    bill_id: str = Field(alias="id")
    supplier_id: str = Field(alias="supplierId")
    supplier_name: str | None = Field(default=None, alias="supplierName")
    reference: str | None = None
    issue_date: date = Field(alias="issueDate")
    due_date: date = Field(alias="dueDate")
    currency: str
    total_amount: Decimal = Field(alias="totalAmount")
    amount_due: Decimal = Field(alias="amountDue")
    status: BillStatus
    payments: tuple[ProductPayment, ...] = ()

    @model_validator(mode="after")
    def _amounts_in_currency_places(self) -> BillRecord:
        # DynamoDB gives 12.5 back for 12.50: the currency's places are restored here, once.
        for name in ("total_amount", "amount_due"):
            object.__setattr__(self, name, to_money(getattr(self, name), self.currency))
        return self

    @property
    def record_id(self) -> str:
        return self.bill_id

    @classmethod
    def _not_synced(cls) -> set[str]:
        return {"payments"}


class PaymentAccount(SyncedRecord):
    """A bank account bills can be paid from (Codat's payment mapping options)."""

    account_id: str = Field(alias="id")
    name: str | None = None
    account_type: str | None = Field(default=None, alias="accountType")
    account_number: str | None = Field(default=None, alias="accountNumber")
    sort_code: str | None = Field(default=None, alias="sortCode")
    nominal_code: str | None = Field(default=None, alias="nominalCode")
    currency: str | None = None
    status: AccountStatus = AccountStatus.ACTIVE

    @property
    def record_id(self) -> str:
        return self.account_id


def utc(moment: datetime) -> datetime:
    """Codat's dates carry an offset, or none (then they are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- what the product sends to create or change records through Codat ------------------------------

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Amount = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=18, decimal_places=4)]


class _Draft(BaseModel):
    # A misspelt field is refused, not silently dropped.
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")


class SupplierDraft(_Draft):
    """A whole supplier. Codat's supplier update replaces the record: every field is sent, and a
    field left out of an update would be deleted in the accounting software (see
    `billpay.bills.rules.check_supplier_update`)."""

    name: Text = Field(alias="supplierName")
    contact_name: Text | None = Field(default=None, alias="contactName")
    email_address: Text | None = Field(default=None, alias="emailAddress")
    phone: Text | None = None
    addresses: tuple[Address, ...] = ()
    status: SupplierStatus = SupplierStatus.ACTIVE
    default_currency: CurrencyCode | None = Field(default=None, alias="defaultCurrency")


class BillLine(_Draft):
    description: Text | None = None
    unit_amount: Amount = Field(alias="unitAmount")
    quantity: Amount = Decimal(1)
    tax_amount: Amount = Field(default=Decimal(0), alias="taxAmount")
    # Ids from Codat's bill mapping options (the chart of accounts and tax rates).
    account_id: RecordId = Field(alias="accountId")
    tax_rate_id: RecordId | None = Field(default=None, alias="taxRateId")


class BillDraft(_Draft):
    """A bill as the product captures it; Codat works out its total from the lines."""

    supplier_id: RecordId = Field(alias="supplierId")
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = (
        None
    )
    issue_date: date = Field(alias="issueDate")
    due_date: date = Field(alias="dueDate")
    currency: CurrencyCode
    currency_rate: Amount | None = Field(default=None, alias="currencyRate")
    # Payments make a bill PartiallyPaid or Paid; a bill is written Open or Draft.
    status: Literal[BillStatus.OPEN, BillStatus.DRAFT] = BillStatus.OPEN
    line_items: tuple[BillLine, ...] = Field(alias="lineItems", min_length=1)

    @model_validator(mode="after")
    def _due_after_issue(self) -> BillDraft:
        if self.due_date < self.issue_date:
            raise ValueError("dueDate is before issueDate")
        return self


class BankAccountDraft(_Draft):
    name: Text
    account_type: Literal["Credit", "Debit"] = Field(default="Debit", alias="accountType")
    account_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)
    ] = Field(alias="accountNumber")
    sort_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = (
        Field(default=None, alias="sortCode")
    )
    nominal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = (
        Field(default=None, alias="nominalCode")
    )
    currency: CurrencyCode


class Attachment(_Model):
    attachment_id: str = Field(alias="id")
    name: str | None = None
    content_type: str | None = Field(default=None, alias="contentType")
    file_size: int | None = Field(default=None, alias="fileSize")


class RequestState(StrEnum):
    PENDING = "PENDING"  # sent to Codat, or about to be; the answer is not known yet
    DONE = "DONE"
    FAILED = "FAILED"  # Codat refused it: the same request gets the same answer


class WriteRequest(_Model):
    """One product write through Codat, by the product's request id: what makes a retried request
    create one record (the ledger of `billpay.bills.writes`)."""

    request_id: str = Field(alias="requestId")
    operation: str
    # A hash of what was asked: the same request id with other content is refused.
    fingerprint: str
    state: RequestState = RequestState.PENDING
    # What was answered (status and body, or the error), replayed to a retry.
    outcome: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(alias="createdAt")
    # The attempt being made (0 first; a new one only once the last is known not to have landed),
    # when it started, and whether it ended without an answer.
    attempt: int = 0
    attempt_at: datetime = Field(alias="attemptAt")
    attempt_ended: bool = Field(default=False, alias="attemptEnded")
