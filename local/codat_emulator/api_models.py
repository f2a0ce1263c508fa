"""Request bodies as Codat defines them; a validation failure is a 400 listing each field."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from codat_emulator.store import (
    Address,
    BankAccount,
    Bill,
    BillLine,
    Supplier,
    money,
)

NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def _codat_date(value: str) -> str:
    try:
        if "T" in value:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"'{value}' is not an ISO 8601 date or date-time") from error
    return value


# Far beyond any bill, and small enough that Decimal arithmetic on it stays exact.
MAX_MAGNITUDE = Decimal(10) ** 12


def _bounded(value: Decimal) -> Decimal:
    if not value.is_finite() or abs(value) >= MAX_MAGNITUDE:
        raise ValueError(f"must be a finite number below {MAX_MAGNITUDE:,}")
    return value


def _two_places(value: Decimal) -> Decimal:
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("money amounts have at most 2 decimal places")
    return money(value)


CodatDate = Annotated[str, AfterValidator(_codat_date)]
Number = Annotated[Decimal, AfterValidator(_bounded)]
Money = Annotated[Decimal, AfterValidator(_bounded), AfterValidator(_two_places)]


class _Body(BaseModel):
    # Codat ignores fields it does not know; strict on the ones it does.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CompanyBody(_Body):
    name: NonEmpty
    description: str | None = None
    tags: dict[str, str] | None = None


class CompanyPatchBody(_Body):
    name: NonEmpty | None = None
    description: str | None = None
    tags: dict[str, str] | None = None


class ConnectionBody(_Body):
    platform_key: NonEmpty = Field(alias="platformKey")


class UnlinkBody(_Body):
    status: Literal["Unlinked"]


class Ref(_Body):
    id: NonEmpty


class AddressBody(_Body):
    type: Literal["Unknown", "Billing", "Delivery"] = "Unknown"
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    postal_code: str | None = Field(None, alias="postalCode")


class SupplierBody(_Body):
    supplier_name: NonEmpty = Field(alias="supplierName")
    status: Literal["Unknown", "Active", "Archived"]
    contact_name: str | None = Field(None, alias="contactName")
    email_address: str | None = Field(None, alias="emailAddress")
    phone: str | None = None
    addresses: list[AddressBody] | None = None
    balance: Money | None = None
    default_currency: Currency | None = Field(None, alias="defaultCurrency")

    def record(self) -> Supplier:
        return Supplier(
            id="",
            supplier_name=self.supplier_name,
            status=self.status,
            contact_name=self.contact_name,
            email_address=self.email_address,
            phone=self.phone,
            addresses=[Address(**a.model_dump()) for a in self.addresses or []],
            balance=None if self.balance is None else money(self.balance),
            default_currency=self.default_currency,
        )


class SupplierRefBody(_Body):
    id: NonEmpty
    supplier_name: str | None = Field(None, alias="supplierName")


class BillLineBody(_Body):
    description: str | None = None
    unit_amount: Number = Field(Decimal(0), alias="unitAmount")
    quantity: Number = Field(Decimal(1), gt=0)
    tax_amount: Money = Field(Decimal("0.00"), alias="taxAmount")
    total_amount: Money | None = Field(None, alias="totalAmount")
    account_ref: Ref | None = Field(None, alias="accountRef")
    tax_rate_ref: Ref | None = Field(None, alias="taxRateRef")


class BillBody(_Body):
    reference: str | None = None
    supplier_ref: SupplierRefBody = Field(alias="supplierRef")
    issue_date: CodatDate = Field(alias="issueDate")
    due_date: CodatDate = Field(alias="dueDate")
    currency: Currency
    currency_rate: Number | None = Field(None, alias="currencyRate", gt=0)
    line_items: list[BillLineBody] | None = Field(None, alias="lineItems")
    status: Literal["Unknown", "Open", "PartiallyPaid", "Paid", "Void", "Draft"]

    def record(self) -> Bill:
        return Bill(
            id="",
            supplier_id=self.supplier_ref.id,
            issue_date=self.issue_date,
            due_date=self.due_date,
            currency=self.currency,
            status=self.status,
            total_amount=Decimal("0.00"),
            amount_due=Decimal("0.00"),
            reference=self.reference,
            currency_rate=self.currency_rate,
            line_items=[
                BillLine(
                    description=line.description,
                    unit_amount=line.unit_amount,
                    quantity=line.quantity,
                    tax_amount=line.tax_amount,
                    total_amount=line.total_amount,
                    account_id=line.account_ref.id if line.account_ref else None,
                    tax_rate_id=line.tax_rate_ref.id if line.tax_rate_ref else None,
                )
                for line in self.line_items or []
            ],
        )


class BankAccountBody(_Body):
    nominal_code: str | None = Field(None, alias="nominalCode")
    name: NonEmpty
    account_type: Literal["Unknown", "Credit", "Debit"] = Field(alias="accountType")
    account_number: NonEmpty = Field(alias="accountNumber")
    sort_code: str | None = Field(None, alias="sortCode")
    currency: Currency

    def record(self) -> BankAccount:
        return BankAccount(
            id="",
            name=self.name,
            account_type=self.account_type,
            account_number=self.account_number,
            currency=self.currency,
            nominal_code=self.nominal_code,
            sort_code=self.sort_code,
        )


class PaymentBody(_Body):
    amount: Money
    date: CodatDate
    reference: str | None = None
    account_ref: Ref = Field(alias="accountRef")
    currency_rate: Number | None = Field(None, alias="currencyRate", gt=0)


class WebhookConsumerBody(_Body):
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#].[^\s]*$")]
    disabled: bool | None = False
    event_types: list[NonEmpty] = Field(alias="eventTypes", min_length=1)
    company_tags: list[Annotated[str, StringConstraints(max_length=128)]] | None = Field(
        None, alias="companyTags", max_length=10
    )


SYNC_DATA_TYPES = Literal[
    "accountTransactions", "balanceSheet", "bankAccounts", "bankTransactions", "billCreditNotes",
    "billPayments", "bills", "cashFlowStatement", "chartOfAccounts", "company", "creditNotes",
    "customers", "directCosts", "directIncomes", "invoices", "itemReceipts", "items",
    "journalEntries", "journals", "paymentMethods", "payments", "profitAndLoss", "purchaseOrders",
    "salesOrders", "suppliers", "taxRates", "trackingCategories", "transfers",
]  # fmt: skip


class SyncSettingBody(_Body):
    data_type: SYNC_DATA_TYPES = Field(alias="dataType")
    fetch_on_first_link: bool = Field(alias="fetchOnFirstLink")
    sync_schedule: int = Field(alias="syncSchedule", ge=0)
    sync_order: int = Field(alias="syncOrder", ge=0)
    sync_from_utc: str | None = Field(None, alias="syncFromUtc")
    sync_from_window: int | None = Field(None, alias="syncFromWindow", ge=0)
    months_to_sync: int | None = Field(None, alias="monthsToSync", ge=0)
    is_locked: bool | None = Field(None, alias="isLocked")

    def as_json(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True)


class ClientSyncSettingsBody(_Body):
    client_id: str | None = Field(None, alias="clientId")
    settings: list[SyncSettingBody]
    overrides_defaults: bool = Field(True, alias="overridesDefaults")


class CompanySyncSettingsBody(_Body):
    company_id: str | None = Field(None, alias="companyId")
    settings: list[SyncSettingBody]
    overrides_defaults: bool = Field(True, alias="overridesDefaults")
