"""A bill payment: what the product asks for, what the workflow records, what the API answers.

One `PaymentRecord` per payment (the payments table, keyed by company and the product's
`paymentId`). It is the only truth about a payment: every step of the workflow reads it, decides,
writes it back (conditionally on its version) and only then calls Codat, so a step that dies at any
point is retried from what was recorded.

Statuses:

    PENDING    accepted; nothing is in flight at Codat (validating, waiting for the bill, or
               about to send the next attempt)
    SUBMITTED  an attempt is being sent to Codat, or waits out a 429 to be sent again
    UNKNOWN    Codat's answer (a 5xx, a timeout) does not say whether the payment landed: the bill
               is read on a schedule until it shows
    PAID       Codat created it, or the bill shows it            (final)
    REJECTED   refused by the checks or by Codat: nothing was created   (final)
    FAILED     nothing landed and nothing more will be tried     (final)

Amounts are Decimal end to end (`billpay.core.money`): a float never reaches a record or an answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from billpay.bills.models import BillStatus, RecordId
from billpay.codat.keys import idempotency_key
from billpay.core.money import currency_places

# The product's own id for a payment: also what the Idempotency-Keys are derived from.
PAYMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
PaymentId = Annotated[str, StringConstraints(pattern=PAYMENT_ID_PATTERN)]

# Codat's SDK sends amounts as JSON floats (doubles), exact to 15 significant digits: the largest
# amount with two places that survives the trip is below this.
MAX_AMOUNT = Decimal("1000000000000")
# Codat keeps currency rates to 9 decimal places.
RATE_PLACES = 9
MAX_REFERENCE_LENGTH = 255

# Execution names are UUIDs in this namespace, named after the payment.
_EXECUTION_NAMESPACE = uuid.UUID("1b6f0f6e-5a8e-4c55-9a4f-3c3bd2b8a0d1")


def attempt_key(company_id: str, payment_id: str, attempt: int) -> str:
    """The Idempotency-Key of one attempt of one payment: the same on every try of the attempt."""
    return idempotency_key(f"payment/{company_id}/{payment_id}/attempt/{attempt}")


def execution_name(company_id: str, payment_id: str) -> str:
    """One workflow execution per payment: Step Functions refuses a second with the same name."""
    return "pay-" + str(uuid.uuid5(_EXECUTION_NAMESPACE, f"{company_id}/{payment_id}"))


def _exact_decimal(value: object) -> Decimal:
    """A JSON number (parsed as Decimal, never float) or a decimal string; anything else refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError("must be a number")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def _amount(value: object) -> Decimal:
    amount = _exact_decimal(value)
    if amount <= 0:
        raise ValueError(f"must be greater than zero, not {amount}")
    if amount >= MAX_AMOUNT:
        raise ValueError(f"must be less than {MAX_AMOUNT:,}")
    return amount


def _rate(value: object) -> Decimal:
    rate = _exact_decimal(value)
    if rate <= 0:
        raise ValueError(f"must be greater than zero, not {rate}")
    if rate != rate.quantize(Decimal(1).scaleb(-RATE_PLACES)) or rate >= MAX_AMOUNT:
        raise ValueError(
            f"must have at most {RATE_PLACES} decimal places and be below {MAX_AMOUNT:,}"
        )
    return rate


def _iso_date(value: object) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _money_text(amount: Decimal) -> str:
    return format(amount, "f")


# In answers and records amounts are decimal strings ("12.50"): JSON numbers would go through floats.
Amount = Annotated[
    Decimal, BeforeValidator(_amount), PlainSerializer(_money_text, when_used="json")
]
Rate = Annotated[Decimal, BeforeValidator(_rate), PlainSerializer(_money_text, when_used="json")]
Money = Annotated[
    Decimal, BeforeValidator(_exact_decimal), PlainSerializer(_money_text, when_used="json")
]
PaymentDate = Annotated[date, BeforeValidator(_iso_date)]
Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REFERENCE_LENGTH)
]


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class PaymentIntent(_Model):
    """What to pay: the same body goes to Codat on every try of every attempt."""

    bill_id: RecordId = Field(alias="billId")
    amount: Amount
    date: PaymentDate
    account_id: RecordId = Field(alias="accountId")
    reference: Reference | None = None
    currency_rate: Rate | None = Field(default=None, alias="currencyRate")

    def fingerprint(self) -> str:
        """Equal for the same intent however it was written (10.5 and 10.50 are one amount)."""
        fields = {
            "billId": self.bill_id,
            "amount": _money_text(self.amount.normalize()),
            "date": self.date.isoformat(),
            "accountId": self.account_id,
            "reference": self.reference,
            "currencyRate": None
            if self.currency_rate is None
            else _money_text(self.currency_rate.normalize()),
        }
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class PaymentRequest(BaseModel):
    """Body of POST /companies/{companyId}/bills/{billId}/payments (the bill comes from the path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payment_id: PaymentId = Field(alias="paymentId")
    amount: Amount
    date: PaymentDate
    account_id: RecordId = Field(alias="accountId")
    reference: Reference | None = None
    currency_rate: Rate | None = Field(default=None, alias="currencyRate")

    def intent(self, bill_id: str) -> PaymentIntent:
        return PaymentIntent(
            bill_id=bill_id,
            amount=self.amount,
            date=self.date,
            account_id=self.account_id,
            reference=self.reference,
            currency_rate=self.currency_rate,
        )


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    UNKNOWN = "UNKNOWN"
    PAID = "PAID"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({PaymentStatus.PAID, PaymentStatus.REJECTED, PaymentStatus.FAILED})


class BillSnapshot(_Model):
    """The bill as Codat showed it just before an attempt: what a landed payment changes."""

    amount_due: Money = Field(alias="amountDue")
    status: BillStatus
    source_modified_date: datetime | None = Field(default=None, alias="sourceModifiedDate")
    taken_at: datetime = Field(alias="takenAt")


class Attempt(_Model):
    """One Idempotency-Key's worth of trying. Tries of one attempt send the same key and body."""

    number: int = Field(ge=1)
    idempotency_key: str = Field(alias="idempotencyKey")
    # Codat keeps a key's answer for its idempotency window from the first request under it; a
    # request may still be landing until the window has passed since the last one.
    first_sent_at: datetime = Field(alias="firstSentAt")
    last_sent_at: datetime = Field(alias="lastSentAt")
    sends: int = Field(default=1, ge=1)
    # Sends answered with a 429 (or held back by the throttle): Codat stored nothing for those.
    rate_limited: int = Field(default=0, alias="rateLimited", ge=0)


class Transition(_Model):
    status: PaymentStatus
    at: datetime
    reason: str


class CodatWrite(_Model):
    """A `billPayments.write.*` webhook attributed to this payment's attempt: what Codat reported
    about a payment write while the attempt had no answer (docs/payments.md, "Codat's write
    webhooks"). Evidence only: the bill still decides PAID; a successful one stops a new key."""

    write_id: str = Field(alias="writeId")
    webhook_id: str = Field(alias="webhookId")
    # The attempt it is attached to (0 until attributed).
    attempt: int = Field(default=0, ge=0)
    successful: bool
    status: str | None = None
    # Codat's id of the payment written (a successful write); None when nothing was written.
    record_id: str | None = Field(default=None, alias="recordId")
    requested_at: datetime | None = Field(default=None, alias="requestedAt")
    completed_at: datetime | None = Field(default=None, alias="completedAt")


class PaymentRecord(_Model):
    """One item of the payments table."""

    company_id: str = Field(alias="companyId")
    payment_id: str = Field(alias="paymentId")
    intent: PaymentIntent
    # The bill's currency when the payment was accepted: how many places an amount may have.
    currency: str
    status: PaymentStatus
    reason: str
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    # Incremented by every write; each write is conditional on the version it read.
    version: int = 0
    # The bill as the product's copy showed it when the payment was accepted (the fresh read
    # starts from its sourceModifiedDate), and as Codat showed it just before the first attempt.
    accepted_bill: BillSnapshot = Field(alias="acceptedBill")
    snapshot: BillSnapshot | None = None
    attempt: Attempt | None = None
    earlier_attempts: tuple[Attempt, ...] = Field(default=(), alias="earlierAttempts")
    # Reads of the bill since the current attempt became UNKNOWN.
    reads: int = 0
    codat_payment_id: str | None = Field(default=None, alias="codatPaymentId")
    # Codat's id of the last request that went wrong: what Codat's support asks for.
    correlation_id: str | None = Field(default=None, alias="correlationId")
    history: tuple[Transition, ...] = ()
    # Codat's billPayments.write.* webhooks attributed to an attempt of this payment.
    codat_writes: tuple[CodatWrite, ...] = Field(default=(), alias="codatWrites")

    def reported_written(self, attempt: int) -> CodatWrite | None:
        """A successful payment write Codat reported during `attempt`, if any."""
        return next((w for w in self.codat_writes if w.attempt == attempt and w.successful), None)

    @model_validator(mode="after")
    def _history_starts_with_the_status(self) -> PaymentRecord:
        if not self.history:
            first = Transition(status=self.status, at=self.created_at, reason=self.reason)
            object.__setattr__(self, "history", (first,))
        return self

    @property
    def bill_id(self) -> str:
        return self.intent.bill_id

    @property
    def attempts(self) -> int:
        return len(self.earlier_attempts) + (1 if self.attempt else 0)

    def moved_to(
        self, status: PaymentStatus, reason: str, at: datetime, **changes: Any
    ) -> PaymentRecord:
        """This record in `status` because of `reason`; the history keeps every change of status."""
        if self.status.is_final and status != self.status:
            raise ValueError(
                f"payment {self.payment_id!r} is {self.status}: it cannot become {status}"
            )
        history = self.history
        if status != self.status:
            history = (*history, Transition(status=status, at=at, reason=reason))
        return self.model_copy(
            update={"status": status, "reason": reason, "history": history, **changes}
        )

    def to_item(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def has_places(amount: Decimal, currency: str) -> bool:
    """Whether `amount` is exact in `currency`'s minor units (10.50 GBP yes, 10.505 GBP no)."""
    return amount == amount.quantize(Decimal(1).scaleb(-currency_places(currency)))


class PaymentView(_Model):
    """What GET .../payments/{paymentId} answers (and POST, with 202)."""

    payment_id: str = Field(serialization_alias="paymentId")
    company_id: str = Field(serialization_alias="companyId")
    bill_id: str = Field(serialization_alias="billId")
    amount: Money
    currency: str
    date: date
    account_id: str = Field(serialization_alias="accountId")
    reference: str | None
    currency_rate: Money | None = Field(serialization_alias="currencyRate")
    status: PaymentStatus
    reason: str
    codat_payment_id: str | None = Field(serialization_alias="codatPaymentId")
    correlation_id: str | None = Field(serialization_alias="correlationId")
    attempts: int
    created_at: datetime = Field(serialization_alias="createdAt")
    updated_at: datetime = Field(serialization_alias="updatedAt")
    history: tuple[Transition, ...]
    codat_writes: tuple[CodatWrite, ...] = Field(serialization_alias="codatWrites")

    @classmethod
    def of(cls, record: PaymentRecord) -> PaymentView:
        intent = record.intent
        return cls(
            payment_id=record.payment_id,
            company_id=record.company_id,
            bill_id=intent.bill_id,
            amount=intent.amount,
            currency=record.currency,
            date=intent.date,
            account_id=intent.account_id,
            reference=intent.reference,
            currency_rate=intent.currency_rate,
            status=record.status,
            reason=record.reason,
            codat_payment_id=record.codat_payment_id,
            correlation_id=record.correlation_id,
            attempts=record.attempts,
            created_at=record.created_at,
            updated_at=record.updated_at,
            history=record.history,
            codat_writes=record.codat_writes,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class PaymentPolicy(BaseModel):
    """How patient the workflow is. From the stage (infra/config.py), through PAYMENT_POLICY."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # How long Codat keeps an Idempotency-Key's answer (90 minutes).
    idempotency_window_seconds: int = Field(
        default=90 * 60, alias="idempotencyWindowSeconds", ge=1, le=86_400
    )
    # Slack for the clocks (ours, Codat's) on either side of the window: the same key is sent
    # again only well inside it, a new key only well after it.
    window_margin_seconds: int = Field(default=300, alias="windowMarginSeconds", ge=0, le=3_600)
    # While a payment is UNKNOWN: the waits before each read of the bill (the last repeats).
    reconcile_schedule_seconds: tuple[int, ...] = Field(
        default=(10, 30, 60, 120, 300, 600),
        alias="reconcileScheduleSeconds",
        min_length=1,
        max_length=50,
    )
    # Attempts (Idempotency-Keys) before a payment that never shows on the bill is FAILED.
    max_attempts: int = Field(default=2, alias="maxAttempts", ge=1, le=10)
    # Another payment of the same bill in flight: look again after this long.
    bill_busy_retry_seconds: int = Field(default=30, alias="billBusyRetrySeconds", ge=1)
    # A payment not sent this long after it was accepted (its bill busy all along, Codat not
    # answering the check) ends without being sent.
    max_pending_seconds: int = Field(default=4 * 3_600, alias="maxPendingSeconds", ge=1)

    @model_validator(mode="after")
    def _positive_waits(self) -> PaymentPolicy:
        if any(seconds < 1 for seconds in self.reconcile_schedule_seconds):
            raise ValueError("reconcileScheduleSeconds must all be at least 1 second")
        if self.window_margin_seconds >= self.idempotency_window_seconds:
            raise ValueError("windowMarginSeconds must be smaller than idempotencyWindowSeconds")
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.idempotency_window_seconds)

    @property
    def margin(self) -> timedelta:
        return timedelta(seconds=self.window_margin_seconds)

    def read_delay(self, reads_done: int) -> int:
        schedule = self.reconcile_schedule_seconds
        return schedule[min(reads_done, len(schedule) - 1)]

    def same_key_until(self, attempt: Attempt) -> datetime:
        """Sending the attempt's key again after this could create a second payment: Codat may
        have forgotten the first request's answer by then."""
        return attempt.first_sent_at + self.window - self.margin

    def new_key_from(self, attempt: Attempt) -> datetime:
        """Before this, the attempt's request may still land at Codat: no new key yet."""
        return attempt.last_sent_at + self.window + self.margin

    def to_env(self) -> str:
        return self.model_dump_json(by_alias=True)
