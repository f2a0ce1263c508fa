"""Whether a payment may go to Codat: the same checks on the product's copy of the bill (when the
API accepts the payment) and on Codat's fresh copy (just before the first attempt).

Pure functions over the bill and the company's payment accounts; Decimal arithmetic only. Also
whether an operator may settle a payment by hand (`settlement_problems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from billpay.bills.models import AccountStatus, BillRecord, BillStatus, PaymentAccount
from billpay.core.money import currency_places
from billpay.payments.models import (
    CodatWrite,
    PaymentIntent,
    PaymentPolicy,
    PaymentRecord,
    PaymentStatus,
    has_places,
)

PAYABLE_BILL_STATUSES = frozenset({BillStatus.OPEN, BillStatus.PARTIALLY_PAID})


@dataclass(frozen=True)
class Problem:
    """Why a payment cannot go, naming the request field at fault."""

    field: str
    message: str

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def payment_problems(
    intent: PaymentIntent, bill: BillRecord, accounts: Sequence[PaymentAccount]
) -> list[Problem]:
    """Everything wrong with paying `bill` this way; empty when the payment may go."""
    problems: list[Problem] = []
    if bill.status not in PAYABLE_BILL_STATUSES:
        problems.append(
            Problem(
                "billId",
                f"bill {bill.bill_id!r} is {bill.status}: only Open or PartiallyPaid bills can be paid",
            )
        )
    amount, currency = intent.amount, bill.currency
    if not has_places(amount, currency):
        problems.append(
            Problem(
                "amount",
                f"amount {amount} has more decimal places than {currency} allows "
                f"({currency_places(currency)})",
            )
        )
    elif amount > bill.amount_due:
        problems.append(
            Problem(
                "amount",
                f"amount {amount} is more than the {bill.amount_due} {currency} due on the bill",
            )
        )
    problems.extend(_account_problems(intent, bill, accounts))
    return problems


def _account_problems(
    intent: PaymentIntent, bill: BillRecord, accounts: Sequence[PaymentAccount]
) -> list[Problem]:
    account = next((a for a in accounts if a.account_id == intent.account_id), None)
    if account is None:
        return [
            Problem(
                "accountId",
                f"account {intent.account_id!r} is not one this company can pay bills from",
            )
        ]
    if account.status is not AccountStatus.ACTIVE:
        return [Problem("accountId", f"account {intent.account_id!r} is {account.status}")]
    # Codat pays in the bill's currency or the account's; another currency needs a rate.
    if account.currency and account.currency != bill.currency and intent.currency_rate is None:
        return [
            Problem(
                "currencyRate",
                f"account {intent.account_id!r} is in {account.currency} and the bill in "
                f"{bill.currency}: a currencyRate is needed",
            )
        ]
    return []


# --- an operator settling a payment the workflow could not ------------------------------------

SETTLED_STATUSES = frozenset({PaymentStatus.PAID, PaymentStatus.FAILED})
MIN_EVIDENCE_LENGTH = 8


def settlement_problems(
    record: PaymentRecord,
    status: PaymentStatus,
    evidence: str,
    policy: PaymentPolicy,
    now: datetime,
    dismissed_writes: frozenset[str] = frozenset(),
) -> list[str]:
    """Why an operator may not record `status` for the payment now; empty when they may.

    Only a payment left UNKNOWN (stopped at NeedsReview, or given up with an attempt unsettled)
    is settled by hand, to PAID or FAILED, with the evidence in words. FAILED only once Codat's
    idempotency window (plus the margin) has passed since the attempt was last sent: before
    that, the request may still land, and a payment recorded FAILED invites a second one. Nor
    while Codat has reported a payment written during the attempt, unless the operator has
    found that write to be another payment's and names it in `dismissed_writes`.
    """
    problems: list[str] = []
    if status not in SETTLED_STATUSES:
        problems.append(f"a payment is settled as PAID or FAILED, not {status}")
    if record.status is not PaymentStatus.UNKNOWN:
        problems.append(
            f"payment {record.payment_id!r} is {record.status}, not UNKNOWN: "
            + (
                "it is settled already"
                if record.status.is_final
                else "its workflow is still deciding (only an UNKNOWN payment is settled by hand)"
            )
        )
    if len(evidence.strip()) < MIN_EVIDENCE_LENGTH:
        problems.append(
            f"say what shows the outcome (--evidence, at least {MIN_EVIDENCE_LENGTH} characters): "
            "the platform's payment or bank reference, or what the bill shows"
        )
    written = [
        w
        for w in record.codat_writes
        if record.attempt is not None
        and w.attempt == record.attempt.number
        and w.successful
        and w.write_id not in dismissed_writes
    ]
    if status is PaymentStatus.FAILED and written:
        problems.extend(
            f"Codat reported payment {w.record_id} written during attempt {w.attempt} (write "
            f"{w.write_id}, webhook {w.webhook_id}): it cannot be recorded FAILED unless that "
            "write is found to be another payment's (--dismiss-write)"
            for w in written
        )
    if status is PaymentStatus.FAILED and record.attempt is not None:
        may_land_until = policy.new_key_from(record.attempt)
        if now < may_land_until:
            problems.append(
                f"attempt {record.attempt.number} was last sent at "
                f"{record.attempt.last_sent_at.isoformat()} and may still land at Codat until "
                f"{may_land_until.isoformat()}: it cannot be recorded FAILED before then"
            )
    return problems


# --- Codat's billPayments.write.* webhooks --------------------------------------------------


def awaits_answer(record: PaymentRecord) -> bool:
    """An attempt went to Codat and its outcome is not known: what a write webhook may be about."""
    return record.attempt is not None and record.status in (
        PaymentStatus.SUBMITTED,
        PaymentStatus.UNKNOWN,
    )


def could_be_the_attempt(record: PaymentRecord, write: CodatWrite, policy: PaymentPolicy) -> bool:
    """Whether Codat's write could be the record's current attempt: not finished before the
    attempt was first sent, not requested after the attempt could still land (margin for clocks)."""
    attempt = record.attempt
    if attempt is None:
        return False
    if (
        write.completed_at is not None
        and write.completed_at < attempt.first_sent_at - policy.margin
    ):
        return False
    return write.requested_at is None or write.requested_at <= policy.new_key_from(attempt)


def attribute_write(
    records: Sequence[PaymentRecord], write: CodatWrite, policy: PaymentPolicy
) -> tuple[PaymentRecord | None, str]:
    """The one payment a write webhook is about, and why; None when it is not exactly one.

    The webhook names neither the bill nor the Idempotency-Key, only Codat's payment id (of a
    successful write) and times. Only a payment awaiting an answer can be the one; a webhook
    that could be two payments' is attributed to neither (it changes nothing then)."""
    already = next(
        (r for r in records if any(w.write_id == write.write_id for w in r.codat_writes)), None
    )
    if already is not None:
        return already, "already recorded"
    candidates = [r for r in records if awaits_answer(r) and could_be_the_attempt(r, write, policy)]
    if not candidates:
        return None, "no payment of the company awaits Codat's answer"
    if len(candidates) > 1:
        ids = ", ".join(sorted(r.payment_id for r in candidates))
        return None, f"payments {ids} all await Codat's answer: not attributable"
    return candidates[0], "the only payment awaiting Codat's answer"


def with_write(record: PaymentRecord, write: CodatWrite) -> PaymentRecord | None:
    """The record with Codat's write attached to its attempt; None when it is attached already
    (a duplicate webhook, or the same write delivered again)."""
    if record.attempt is None or any(w.write_id == write.write_id for w in record.codat_writes):
        return None
    attached = write.model_copy(update={"attempt": record.attempt.number})
    return record.model_copy(update={"codat_writes": (*record.codat_writes, attached)})
