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
