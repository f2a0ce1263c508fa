"""What the payment logic needs from the outside world. Adapters implement these; tests pass fakes.

- `PaymentStore`: the payments table (records, and one lock item per bill).
- `PayablesCopy`: the product's copy of the company's bills and accounts (the payables table).
- `CodatPayables`: Codat, for fresh state and the payment itself (the Codat adapter).
- `BillPayments`: the payments listed on the product's copy of the bill (the payables table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from billpay.bills.models import BillRecord, Connection, PaymentAccount, ProductPayment
from billpay.payments.models import PaymentRecord


class PaymentStore(Protocol):
    def get(self, company_id: str, payment_id: str) -> PaymentRecord | None: ...

    def create(self, record: PaymentRecord) -> bool:
        """Store a new payment unless one with its id exists; True when this call stored it."""
        ...

    def replace(self, record: PaymentRecord, expected_version: int) -> bool:
        """Store the record if the stored one is at `expected_version`; False if it is not."""
        ...

    def lock_bill(self, company_id: str, bill_id: str, payment_id: str, now: datetime) -> str:
        """Take the bill for this payment unless another payment holds it; returns the holder."""
        ...

    def take_over_bill(
        self, company_id: str, bill_id: str, stale_holder: str, payment_id: str, now: datetime
    ) -> bool:
        """Move the bill from a payment that is over (but did not let go) to this one."""
        ...

    def bill_holders(self, company_id: str) -> list[str]:
        """The ids of the payments holding one of the company's bills (those in flight)."""
        ...

    def unlock_bill(self, company_id: str, bill_id: str, payment_id: str) -> None:
        """Let go of the bill if this payment holds it; nothing otherwise."""
        ...


class PayablesCopy(Protocol):
    """The product's copy of the payables, kept current from Codat by the bills sync."""

    def bill(self, company_id: str, bill_id: str) -> BillRecord | None: ...

    def payment_accounts(self, company_id: str) -> list[PaymentAccount]: ...


@dataclass(frozen=True)
class PaymentBody:
    """The body of Codat's create-bill-payment, the same on every try."""

    amount: Decimal
    date: date
    account_id: str
    reference: str | None
    currency_rate: Decimal | None


@dataclass(frozen=True)
class CreatedPayment:
    id: str | None


class CodatPayables(Protocol):
    """Codat's answers; failures raise billpay.codat.errors (retryable, rate-limited, permanent)."""

    def fresh_bill(
        self, connection: Connection, bill_id: str, modified_since: datetime | None
    ) -> BillRecord | None:
        """The bill as Codat has it now; None if Codat's list has no such bill.

        `modified_since` (the sourceModifiedDate of a copy of the bill) narrows the listing: a bill
        only ever moves forward in time.
        """
        ...

    def payment_accounts(self, connection: Connection) -> list[PaymentAccount]: ...

    def pay_bill(
        self, connection: Connection, bill_id: str, body: PaymentBody, idempotency_key: str
    ) -> CreatedPayment: ...


class BillPayments(Protocol):
    """The payments listed on the product's copy of a bill (the payables table)."""

    def record_payment(
        self, company_id: str, bill_id: str, payment: ProductPayment, version: int | None = None
    ) -> None:
        """List `payment` on the bill, replacing the entry with its id, unless the entry listed
        comes from a newer `version` of the payment record (late or reordered writers)."""
        ...
