"""The domain events the product backend listens to on the integration event bus.

Each event is an EventBridge entry: `source` is "billpay", `detail-type` is the class's
`DETAIL_TYPE`, and `detail` is the model as JSON, with `schemaVersion` so a consumer can tell a
breaking change. The product imports these models to parse what it receives. Adding an optional
field keeps the version; removing or changing one bumps it (and the old shape keeps being sent
until consumers moved; see docs/events.md).

Consumers dedupe on `eventId`: it is derived from what caused the event (a webhook id, an
execution), so a redelivered or replayed cause publishes the same id.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "billpay"


class DomainEvent(BaseModel):
    """Fields every event carries. Subclasses add theirs and set DETAIL_TYPE and SCHEMA_VERSION."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    DETAIL_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str = Field(alias="eventId", min_length=1)
    occurred_at: datetime = Field(alias="occurredAt")
    # The product's own id for the SMB, and the id Codat gave it (None before Codat knows it).
    company_id: str = Field(alias="companyId")
    codat_company_id: str | None = Field(default=None, alias="codatCompanyId")

    def detail(self) -> dict[str, object]:
        return {
            "schemaVersion": self.SCHEMA_VERSION,
            **self.model_dump(mode="json", by_alias=True),
        }


# --- published by the webhook processor (billpay.webhooks) -----------------------------------


class CompanyNeedsRelink(DomainEvent):
    """A READY company lost its accounting connection (disconnected, deleted or deauthorized):
    the SMB must authorize again before bills can be read or paid."""

    DETAIL_TYPE: ClassVar[str] = "CompanyNeedsRelink"

    connection_id: str = Field(alias="connectionId")
    connection_status: str = Field(alias="connectionStatus")
    # The Codat event that said so (connection.disconnected, connection.deleted, ...).
    reason: str


class DataTypeRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    data_type: str = Field(alias="dataType")
    # Codat's dataset status as sent (Complete, AuthError, FetchError, ...).
    status: str
    records_modified: bool = Field(alias="recordsModified")


class CompanyDataRead(DomainEvent):
    """Codat finished a read of the company's books (`read.completed`). `recordsModified` says
    which data types changed since the previous read; read them from Codat to see what."""

    DETAIL_TYPE: ClassVar[str] = "CompanyDataRead"

    data_types: tuple[DataTypeRead, ...] = Field(alias="dataTypes")
    modified_from: datetime | None = Field(default=None, alias="modifiedFrom")


class WriteOutcome(DomainEvent):
    """The late outcome of a write Codat made to the accounting platform (`*.write.*`)."""

    # Codat's id of the write request (push operation), the record written (None when it
    # failed), Create/Update/..., and Codat's write status (Success, Failed, TimedOut, ...).
    push_id: str = Field(alias="pushId")
    record_id: str | None = Field(default=None, alias="recordId")
    write_type: str | None = Field(default=None, alias="writeType")
    status: str
    connection_id: str | None = Field(default=None, alias="connectionId")


class BillWriteSucceeded(WriteOutcome):
    DETAIL_TYPE: ClassVar[str] = "BillWriteSucceeded"


class BillWriteFailed(WriteOutcome):
    DETAIL_TYPE: ClassVar[str] = "BillWriteFailed"


class SupplierWriteSucceeded(WriteOutcome):
    DETAIL_TYPE: ClassVar[str] = "SupplierWriteSucceeded"


class SupplierWriteFailed(WriteOutcome):
    DETAIL_TYPE: ClassVar[str] = "SupplierWriteFailed"


class BillPaymentWriteSucceeded(WriteOutcome):
    DETAIL_TYPE: ClassVar[str] = "BillPaymentWriteSucceeded"


class BillPaymentWriteFailed(WriteOutcome):
    DETAIL_TYPE: ClassVar[str] = "BillPaymentWriteFailed"


# --- published by the payment workflow (billpay.payments) ---------------------------------------


class _PaymentOutcome(DomainEvent):
    """A payment made through the product reached its end. `eventId` is derived from the payment
    and its final status, so a retried step publishes the same id."""

    payment_id: str = Field(alias="paymentId")
    bill_id: str = Field(alias="billId")
    # Decimal strings in the bill's currency ("12.50"): never floats.
    amount: str
    currency: str
    # Attempts made (one Idempotency-Key each).
    attempts: int


class BillPaid(_PaymentOutcome):
    """The payment is on the bill in the accounting platform (Codat created it, or the bill's
    amount due shows it)."""

    DETAIL_TYPE: ClassVar[str] = "BillPaid"

    codat_payment_id: str | None = Field(default=None, alias="codatPaymentId")


class PaymentFailed(_PaymentOutcome):
    """Nothing was paid: REJECTED (the checks or Codat refused it) or FAILED (no attempt landed)."""

    DETAIL_TYPE: ClassVar[str] = "PaymentFailed"

    status: str
    reason: str
    correlation_id: str | None = Field(default=None, alias="correlationId")
