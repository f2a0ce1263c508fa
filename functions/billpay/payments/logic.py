"""Paying a bill exactly once.

Codat keeps the answer to a request under its Idempotency-Key for a window (90 minutes) and replays
it, 5xx included. So sending a key again tells nothing new, and a payment that may have landed is
found out by reading the bill, never by a blind retry under a new key. The rules, as code:

- One payment of a bill in flight at a time (`take_bill`): a change in the bill's amount due is then
  this payment's doing, or something to look at, never a guess.
- Checked against Codat's fresh copy of the bill just before the first attempt (`check`).
- One attempt = one Idempotency-Key derived from the payment id and the attempt number, and the same
  body on every try. A 429 is sent again with the same key once Retry-After and the throttle allow
  (`submit`). A 5xx, a timeout, an answer that does not parse: UNKNOWN.
- UNKNOWN is settled by reading the bill (`reconcile`): its amount due down by exactly the amount
  since the snapshot taken before the attempt is PAID; unchanged, it is read again on a schedule;
  only once the window has passed with the bill unchanged may the next attempt go, under a new key.
  Any other change stops the workflow for a person to look (the payment stays UNKNOWN).
- Every step reads the record, decides, writes the record (conditionally on its version) and only
  then calls Codat. A step that dies is retried from what was recorded: an attempt recorded as sent
  but without an answer is sent again with the same key while Codat still holds its answer, and
  after that only reconciled.

Each step returns what the state machine does next (`Step`); the state machine only waits and routes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billpay.bills.models import (
    READABLE_STATUSES,
    WRITABLE_STATUSES,
    BillRecord,
    CompanyNotReadyError,
    Connection,
    ProductPayment,
)
from billpay.codat.errors import (
    CodatError,
    CodatRateLimitedError,
    CodatRejectedError,
    CodatRetryableError,
)
from billpay.companies.models import CompanyRecord
from billpay.companies.ports import CompanyRepository
from billpay.core.errors import BillPayError, ConflictError, NotFoundError
from billpay.events.models import BillPaid, DomainEvent, PaymentFailed
from billpay.events.publisher import EventPublisher
from billpay.onboarding.ports import WorkflowStarter
from billpay.payments.models import (
    Attempt,
    BillSnapshot,
    CodatWrite,
    PaymentIntent,
    PaymentPolicy,
    PaymentRecord,
    PaymentRequest,
    PaymentStatus,
    attempt_key,
    execution_name,
)
from billpay.payments.ports import (
    BillPayments,
    CodatPayables,
    PayablesCopy,
    PaymentBody,
    PaymentStore,
)
from billpay.payments.rules import (
    Problem,
    attribute_write,
    payment_problems,
    settlement_problems,
    with_write,
)

Clock = Callable[[], datetime]

# A 429 without Retry-After still waits this long before the same key goes again.
DEFAULT_RETRY_AFTER_SECONDS = 60
# Codat answers 409 while the first request under a key is still running, and 422 when the key
# carries another body: neither says whether the payment landed.
_AMBIGUOUS_REFUSALS = frozenset({409, 422})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InvalidPaymentError(BillPayError):
    code = "InvalidPayment"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.details = [problem.as_detail() for problem in problems]


class ConcurrentPaymentUpdateError(BillPayError):
    """Someone else wrote the payment between our read and our write: the step is retried."""

    code = "ConcurrentPaymentUpdate"


# --- accepting a payment (the API) --------------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    payments: PaymentStore
    companies: CompanyRepository
    payables: PayablesCopy
    bill_payments: BillPayments
    workflows: WorkflowStarter
    now: Clock = _utcnow


def accept_payment(
    company_id: str, bill_id: str, request: PaymentRequest, intake: Intake
) -> PaymentRecord:
    """Record the payment PENDING and start its workflow; the same request again changes nothing.

    Checked against the product's copy of the bill and accounts (a 4xx names what is wrong, and
    nothing is recorded or sent). The same paymentId with other details is a ConflictError.
    """
    intent = request.intent(bill_id)
    record = intake.payments.get(company_id, request.payment_id)
    if record is None:
        record = _checked_payment(company_id, request.payment_id, intent, intake)
        if intake.payments.create(record):
            list_on_bill(intake.bill_payments, record)
        else:  # the same paymentId accepted by a concurrent request a moment ago
            record = _stored(intake.payments, company_id, request.payment_id)
    if record.intent.fingerprint() != intent.fingerprint():
        raise ConflictError(
            f"payment {request.payment_id!r} already exists with other details "
            f"(bill {record.bill_id!r}, amount {record.intent.amount} {record.currency})"
        )
    # Started once per payment (the execution name is unique); a repeat only finds it running.
    intake.workflows.start(
        execution_name(company_id, request.payment_id),
        {"companyId": company_id, "paymentId": request.payment_id},
    )
    return record


def _checked_payment(
    company_id: str, payment_id: str, intent: PaymentIntent, intake: Intake
) -> PaymentRecord:
    company = intake.companies.get(company_id)
    if company is None:
        raise NotFoundError(f"company {company_id!r} is not known")
    Connection.of(company, WRITABLE_STATUSES)
    bill = intake.payables.bill(company_id, intent.bill_id)
    if bill is None:
        raise NotFoundError(f"bill {intent.bill_id!r} is not known for company {company_id!r}")
    problems = payment_problems(intent, bill, intake.payables.payment_accounts(company_id))
    if problems:
        raise InvalidPaymentError(problems)
    now = intake.now()
    return PaymentRecord(
        company_id=company_id,
        payment_id=payment_id,
        intent=intent,
        currency=bill.currency,
        status=PaymentStatus.PENDING,
        reason="accepted: to be checked against Codat and sent",
        created_at=now,
        updated_at=now,
        accepted_bill=_snapshot(bill, now),
    )


def get_payment(
    company_id: str, bill_id: str, payment_id: str, payments: PaymentStore
) -> PaymentRecord:
    record = payments.get(company_id, payment_id)
    if record is None or record.bill_id != bill_id:
        raise NotFoundError(f"payment {payment_id!r} of bill {bill_id!r} is not known")
    return record


# --- the workflow's steps -----------------------------------------------------------------------


class Next(StrEnum):
    """Where the state machine goes after a step (the names of its states)."""

    CHECK = "Check"
    WAIT_FOR_BILL = "WaitForBill"  # then TakeBill again
    WAIT_TO_CHECK = "WaitToCheck"  # then Check again
    SUBMIT = "Submit"
    WAIT_FOR_RATE_LIMIT = "WaitForRateLimit"  # then Submit again
    RECONCILE = "Reconcile"
    WAIT_TO_RECONCILE = "WaitToReconcile"  # then Reconcile
    FINISH = "Finish"
    NEEDS_REVIEW = "NeedsReview"


class Step(BaseModel):
    """A step's answer to the state machine."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    next: Next
    status: PaymentStatus
    # How long the wait state after this step lasts (only for the WAIT_* steps).
    wait_seconds: int = Field(default=0, alias="waitSeconds", ge=0)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class PaymentRef(BaseModel):
    """What each step of the state machine gets: which payment."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    company_id: str = Field(alias="companyId", min_length=1)
    payment_id: str = Field(alias="paymentId", min_length=1)


@dataclass(frozen=True)
class Workflow:
    payments: PaymentStore
    companies: CompanyRepository
    # Built on first use: only the steps that call Codat pay for importing its SDK.
    codat: Callable[[], CodatPayables]
    bill_payments: BillPayments
    events: EventPublisher
    policy: PaymentPolicy
    now: Clock = _utcnow

    def load(self, ref: PaymentRef) -> PaymentRecord:
        return _stored(self.payments, ref.company_id, ref.payment_id)

    def save(self, record: PaymentRecord, changed: PaymentRecord) -> PaymentRecord:
        """Write `changed` over `record` unless someone wrote in between; a new status is also
        listed on the bill. Returns what was stored."""
        written = changed.model_copy(
            update={"version": record.version + 1, "updated_at": self.now()}
        )
        if not self.payments.replace(written, expected_version=record.version):
            stored = self.payments.get(record.company_id, record.payment_id)
            if stored is not None and _only_writes_attached(record, stored, changed):
                # A Codat write webhook attached meanwhile, and this decision does not hang on
                # it (Codat's 201 recorded, a read scheduled): keep both, no retry of the step.
                return self.save(
                    stored, changed.model_copy(update={"codat_writes": stored.codat_writes})
                )
            raise ConcurrentPaymentUpdateError(
                f"payment {record.payment_id!r} changed while a step was deciding"
            )
        if written.status != record.status:
            list_on_bill(self.bill_payments, written)
        return written

    def company(self, record: PaymentRecord) -> CompanyRecord:
        company = self.companies.get(record.company_id)
        if company is None:
            raise NotFoundError(f"company {record.company_id!r} is not known")
        return company


def take_bill(ref: PaymentRef, flow: Workflow) -> Step:
    """Hold the bill for this payment, or wait while another payment of it is in flight."""
    record = flow.load(ref)
    if record.status is not PaymentStatus.PENDING or record.snapshot is not None:
        return _resume(record)
    now = flow.now()
    holder = flow.payments.lock_bill(record.company_id, record.bill_id, record.payment_id, now)
    if holder == record.payment_id:
        return Step(next=Next.CHECK, status=record.status)
    other = flow.payments.get(record.company_id, holder)
    if other is None or other.status.is_final:
        # The holder is over but its last step died before letting go: the bill is free.
        if flow.payments.take_over_bill(
            record.company_id, record.bill_id, holder, record.payment_id, now
        ):
            return Step(next=Next.CHECK, status=record.status)
        return Step(next=Next.WAIT_FOR_BILL, status=record.status, wait_seconds=1)
    if _pending_too_long(flow, record, now):
        reason = (
            f"payment {holder!r} of the same bill was still in flight "
            f"{flow.policy.max_pending_seconds} seconds after this one was accepted; nothing was sent"
        )
        return _reject(flow, record, reason, now)
    reason = f"waiting for payment {holder!r} of the same bill to finish"
    if record.reason != reason:
        record = flow.save(record, record.moved_to(PaymentStatus.PENDING, reason, now))
    return Step(
        next=Next.WAIT_FOR_BILL,
        status=record.status,
        wait_seconds=flow.policy.bill_busy_retry_seconds,
    )


def check(ref: PaymentRef, flow: Workflow) -> Step:
    """Check the payment against Codat's fresh copy of the bill and accounts; keep the snapshot the
    reconciliation compares with. Codat errors are raised for the state machine to retry."""
    record = flow.load(ref)
    if record.status is not PaymentStatus.PENDING or record.snapshot is not None:
        return _resume(record)
    now = flow.now()
    try:
        connection = Connection.of(flow.company(record), WRITABLE_STATUSES)
    except CompanyNotReadyError as error:
        return _reject(flow, record, f"{error}; nothing was sent", now)
    try:
        bill = flow.codat().fresh_bill(
            connection, record.bill_id, record.accepted_bill.source_modified_date
        )
        accounts = flow.codat().payment_accounts(connection) if bill is not None else []
    except CodatRetryableError as error:
        return _check_later(flow, record, error, now)
    if bill is None:
        return _reject(flow, record, f"Codat has no bill {record.bill_id!r}; nothing was sent", now)
    problems = payment_problems(record.intent, bill, accounts)
    if problems:
        reason = "; ".join(problem.message for problem in problems)
        return _reject(flow, record, f"{reason} (Codat's copy); nothing was sent", now)
    checked = record.model_copy(
        update={"snapshot": _snapshot(bill, now), "reason": "checked against Codat: sending"}
    )
    flow.save(record, checked)
    return Step(next=Next.SUBMIT, status=record.status)


def _check_later(
    flow: Workflow, record: PaymentRecord, error: CodatRetryableError, now: datetime
) -> Step:
    """Codat could not be read (a 5xx, a timeout, its rate limit): nothing was sent, try later."""
    if _pending_too_long(flow, record, now):
        reason = (
            f"Codat could not be read to check the payment ({error.message}) for "
            f"{flow.policy.max_pending_seconds} seconds; nothing was sent"
        )
        return _fail(flow, record, reason, now)
    wait = error.retry_after_seconds or flow.policy.read_delay(0)
    reason = f"Codat could not be read to check the payment ({error.message}): again in {wait} s"
    flow.save(
        record,
        record.model_copy(update={"reason": reason, "correlation_id": error.correlation_id}),
    )
    return Step(next=Next.WAIT_TO_CHECK, status=record.status, wait_seconds=wait)


def _pending_too_long(flow: Workflow, record: PaymentRecord, now: datetime) -> bool:
    return (now - record.created_at).total_seconds() >= flow.policy.max_pending_seconds


def submit(ref: PaymentRef, flow: Workflow) -> Step:
    """Send the current attempt (a new one from PENDING, the same key again from SUBMITTED)."""
    record = flow.load(ref)
    now = flow.now()
    if record.status is PaymentStatus.PENDING and record.snapshot is not None:
        return _send_new_attempt(record, flow, now)
    if record.status is PaymentStatus.SUBMITTED and record.attempt is not None:
        return _send_again(record, record.attempt, flow, now)
    return _resume(record)


def _send_new_attempt(record: PaymentRecord, flow: Workflow, now: datetime) -> Step:
    number = record.attempts + 1
    company = flow.company(record)
    if company.status not in WRITABLE_STATUSES:
        reason = f"company {record.company_id!r} is {company.status}: attempt {number} not sent"
        if number == 1:
            return _reject(flow, record, reason, now)
        return _fail(flow, record, f"no earlier attempt shows on the bill and {reason}", now)
    attempt = Attempt(
        number=number,
        idempotency_key=attempt_key(record.company_id, record.payment_id, number),
        first_sent_at=now,
        last_sent_at=now,
    )
    sent = flow.save(
        record,
        record.moved_to(
            PaymentStatus.SUBMITTED,
            f"attempt {number} sent to Codat",
            now,
            attempt=attempt,
            reads=0,
        ),
    )
    return _send(sent, attempt, Connection.of(company, WRITABLE_STATUSES), flow, now)


def _send_again(record: PaymentRecord, attempt: Attempt, flow: Workflow, now: datetime) -> Step:
    """The attempt was sent (or was about to be) and has no answer but a 429 recorded."""
    company = flow.company(record)
    if now >= flow.policy.same_key_until(attempt) or company.status not in WRITABLE_STATUSES:
        # Codat may have forgotten the first request's answer by now (or cannot be written to):
        # sending the key again could pay twice. Only the bill can tell.
        reason = (
            f"attempt {attempt.number} has no answer recorded and cannot be sent again safely; "
            "reading the bill"
        )
        flow.save(record, record.moved_to(PaymentStatus.UNKNOWN, reason, now, reads=0))
        return Step(next=Next.RECONCILE, status=PaymentStatus.UNKNOWN)
    # Every earlier send was turned away with a 429: Codat holds nothing under the key, so its
    # window starts with this send.
    nothing_stored = attempt.rate_limited == attempt.sends
    again = attempt.model_copy(
        update={
            "first_sent_at": now if nothing_stored else attempt.first_sent_at,
            "last_sent_at": now,
            "sends": attempt.sends + 1,
        }
    )
    sent = flow.save(
        record,
        record.model_copy(
            update={
                "attempt": again,
                "reason": f"attempt {attempt.number} sent to Codat again with the same key",
            }
        ),
    )
    return _send(sent, again, Connection.of(company, WRITABLE_STATUSES), flow, now)


def _send(
    record: PaymentRecord, attempt: Attempt, connection: Connection, flow: Workflow, now: datetime
) -> Step:
    body = _body(record)
    try:
        created = flow.codat().pay_bill(connection, record.bill_id, body, attempt.idempotency_key)
    except CodatRateLimitedError as error:
        wait = max(1, error.retry_after_seconds or DEFAULT_RETRY_AFTER_SECONDS)
        limited = attempt.model_copy(update={"rate_limited": attempt.rate_limited + 1})
        reason = (
            f"Codat's rate limit: attempt {attempt.number} goes again with the same key "
            f"in {wait} seconds"
        )
        flow.save(
            record,
            record.model_copy(
                update={
                    "attempt": limited,
                    "reason": reason,
                    "correlation_id": error.correlation_id,
                }
            ),
        )
        return Step(
            next=Next.WAIT_FOR_RATE_LIMIT, status=PaymentStatus.SUBMITTED, wait_seconds=wait
        )
    except CodatRejectedError as error:
        if error.status not in _AMBIGUOUS_REFUSALS:
            reason = f"Codat refused attempt {attempt.number} ({error.status}): {error.message}"
            return _reject(flow, record, reason, now, correlation_id=error.correlation_id)
        return _unknown(flow, record, attempt, error, now)
    except CodatError as error:  # unavailable (5xx, timeout) or an answer the SDK cannot read
        return _unknown(flow, record, attempt, error, now)
    paid = record.moved_to(
        PaymentStatus.PAID,
        f"Codat created payment {created.id} (attempt {attempt.number})",
        now,
        codat_payment_id=created.id,
    )
    flow.save(record, paid)
    return Step(next=Next.FINISH, status=PaymentStatus.PAID)


def _unknown(
    flow: Workflow, record: PaymentRecord, attempt: Attempt, error: CodatError, now: datetime
) -> Step:
    answer = f"answered {error.status}" if error.status else "did not answer"
    reason = (
        f"Codat {answer} to attempt {attempt.number} ({error.message}): whether it landed is "
        "unknown; reading the bill"
    )
    flow.save(
        record,
        record.moved_to(
            PaymentStatus.UNKNOWN, reason, now, reads=0, correlation_id=error.correlation_id
        ),
    )
    return Step(
        next=Next.WAIT_TO_RECONCILE,
        status=PaymentStatus.UNKNOWN,
        wait_seconds=flow.policy.read_delay(0),
    )


class BillShows(StrEnum):
    PAYMENT = "payment"  # amount due down by exactly this payment's amount
    NOTHING = "nothing"  # amount due and status as in the snapshot
    SOMETHING_ELSE = "somethingElse"  # any other change: not this payment's to explain


def what_the_bill_shows(
    snapshot: BillSnapshot, bill: BillRecord | None, intent: PaymentIntent
) -> BillShows:
    if bill is None:
        return BillShows.SOMETHING_ELSE
    if snapshot.amount_due - bill.amount_due == intent.amount:
        return BillShows.PAYMENT
    if bill.amount_due == snapshot.amount_due and bill.status == snapshot.status:
        return BillShows.NOTHING
    return BillShows.SOMETHING_ELSE


def reconcile(ref: PaymentRef, flow: Workflow) -> Step:
    """Read the bill to learn whether an UNKNOWN attempt landed."""
    record = flow.load(ref)
    if record.status is not PaymentStatus.UNKNOWN or record.attempt is None:
        return _resume(record)
    snapshot, attempt = record.snapshot, record.attempt
    assert snapshot is not None, "an attempt is only made after a snapshot"
    now = flow.now()
    try:
        connection = Connection.of(flow.company(record), READABLE_STATUSES)
        bill = flow.codat().fresh_bill(connection, record.bill_id, snapshot.source_modified_date)
    except (CodatRetryableError, CompanyNotReadyError) as error:
        return _read_later(flow, record, attempt, f"the bill could not be read ({error})", now)
    shows = what_the_bill_shows(snapshot, bill, record.intent)
    if shows is BillShows.PAYMENT:
        assert bill is not None
        reason = (
            f"the bill shows attempt {attempt.number}: amount due {snapshot.amount_due} -> "
            f"{bill.amount_due} {record.currency}"
        )
        flow.save(record, record.moved_to(PaymentStatus.PAID, reason, now))
        return Step(next=Next.FINISH, status=PaymentStatus.PAID)
    if shows is BillShows.SOMETHING_ELSE:
        seen = "is gone" if bill is None else f"shows {bill.amount_due} due and {bill.status}"
        reason = (
            f"the bill {seen}, against {snapshot.amount_due} due and {snapshot.status} before "
            f"attempt {attempt.number}: this payment alone does not explain it. Nothing more is "
            "sent; check the bill in the accounting platform"
        )
        flow.save(record, record.model_copy(update={"reason": reason}))
        return Step(next=Next.NEEDS_REVIEW, status=PaymentStatus.UNKNOWN)
    if now < flow.policy.new_key_from(attempt):
        return _read_later(flow, record, attempt, "the bill does not show it yet", now)
    written = record.reported_written(attempt.number)
    if written is not None:
        reason = (
            f"Codat reported payment {written.record_id} written during attempt {attempt.number} "
            f"(webhook {written.webhook_id}), but the bill still shows {snapshot.amount_due} due "
            "after the idempotency window: nothing more is sent; check the bill in the "
            "accounting platform"
        )
        flow.save(record, record.model_copy(update={"reason": reason}))
        return Step(next=Next.NEEDS_REVIEW, status=PaymentStatus.UNKNOWN)
    window = f"after Codat's idempotency window ({flow.policy.idempotency_window_seconds} s)"
    if record.attempts >= flow.policy.max_attempts:
        return _fail(
            flow, record, f"none of {record.attempts} attempts shows on the bill {window}", now
        )
    reason = f"attempt {attempt.number} does not show on the bill {window}: a new attempt next"
    flow.save(
        record,
        record.moved_to(
            PaymentStatus.PENDING,
            reason,
            now,
            attempt=None,
            earlier_attempts=(*record.earlier_attempts, attempt),
        ),
    )
    return Step(next=Next.SUBMIT, status=PaymentStatus.PENDING)


def _read_later(
    flow: Workflow, record: PaymentRecord, attempt: Attempt, why: str, now: datetime
) -> Step:
    reads = record.reads + 1
    wait = flow.policy.read_delay(reads)
    # Never sleep past the moment the next attempt may go: read once more right then.
    until_new_key = math.ceil((flow.policy.new_key_from(attempt) - now).total_seconds())
    if until_new_key > 0:
        wait = min(wait, until_new_key)
    reason = f"attempt {attempt.number}: {why}; reading it again in {wait} seconds"
    flow.save(record, record.model_copy(update={"reads": reads, "reason": reason}))
    return Step(next=Next.WAIT_TO_RECONCILE, status=record.status, wait_seconds=wait)


def finish(ref: PaymentRef, flow: Workflow) -> Step:
    """The payment is over: list it on the bill, tell the product, let the bill go."""
    record = flow.load(ref)
    if not record.status.is_final:
        raise BillPayError(f"payment {record.payment_id!r} is {record.status}, not over")
    list_on_bill(flow.bill_payments, record)
    flow.events.publish([outcome_event(record, flow.company(record))])
    flow.payments.unlock_bill(record.company_id, record.bill_id, record.payment_id)
    return Step(next=Next.FINISH, status=record.status)


def give_up(ref: PaymentRef, error: dict[str, Any], flow: Workflow) -> Step:
    """A step failed for good (the state machine caught it). What is safe to say depends on what
    was sent: nothing yet, FAILED; an attempt with no answer, still UNKNOWN, for a person."""
    record = flow.load(ref)
    cause = f"{error.get('Error', 'Error')}: {str(error.get('Cause', ''))[:500]}"
    now = flow.now()
    if record.status is PaymentStatus.PENDING and record.attempt is None:
        record = flow.save(
            record,
            record.moved_to(PaymentStatus.FAILED, f"stopped before sending: {cause}", now),
        )
        finish(PaymentRef(company_id=record.company_id, payment_id=record.payment_id), flow)
        return Step(next=Next.FINISH, status=record.status)
    if not record.status.is_final:
        reason = (
            f"stopped with attempt {record.attempts} unsettled ({cause}); it may have landed: "
            "check the bill in the accounting platform"
        )
        flow.save(record, record.moved_to(PaymentStatus.UNKNOWN, reason, now))
    return Step(next=Next.NEEDS_REVIEW, status=record.status)


# --- an operator settling a payment the workflow left UNKNOWN ------------------------------------


class IllegalSettlementError(ConflictError):
    code = "IllegalSettlement"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def settle(
    ref: PaymentRef,
    status: PaymentStatus,
    evidence: str,
    operator: str,
    flow: Workflow,
    codat_payment_id: str | None = None,
    dismissed_writes: frozenset[str] = frozenset(),
) -> PaymentRecord:
    """Record the operator's decision on an UNKNOWN payment (docs/payments.md, "Settling a
    payment that needs review") and finish it as the workflow would: listed on the bill,
    BillPaid or PaymentFailed published, the bill let go. Refused (IllegalSettlementError,
    nothing written) unless `settlement_problems` finds nothing; a concurrent write to the
    payment (its workflow, a webhook) is a ConcurrentPaymentUpdateError: look again and rerun."""
    record = flow.load(ref)
    now = flow.now()
    problems = settlement_problems(record, status, evidence, flow.policy, now, dismissed_writes)
    unknown = dismissed_writes - {w.write_id for w in record.codat_writes}
    if unknown:
        problems.append(f"no Codat write {sorted(unknown)} is attached to this payment")
    if codat_payment_id is not None and status is not PaymentStatus.PAID:
        problems.append("a Codat payment id is evidence of a PAID payment only")
    if problems:
        raise IllegalSettlementError(problems)
    changes: dict[str, Any] = {}
    if codat_payment_id is not None:
        changes["codat_payment_id"] = codat_payment_id
    reason = f"settled {status} by {operator} after review: {evidence.strip()}"
    if dismissed_writes:
        reason += f" (Codat writes {', '.join(sorted(dismissed_writes))} found to be others')"
    settled = flow.save(record, record.moved_to(status, reason, now, **changes))
    finish(ref, flow)
    return settled


# --- Codat's billPayments.write.* webhooks (applied by the webhook processor) -------------------

# A write webhook racing a workflow step for the same record: read again this many times.
_WRITE_CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class WriteApplied:
    """What a billPayments.write.* webhook did to the payments (the processor's outcome facts)."""

    payment_id: str | None
    attached: bool
    why: str

    def facts(self) -> dict[str, Any]:
        found = {"paymentId": self.payment_id, "attached": self.attached, "attribution": self.why}
        return {k: v for k, v in found.items() if v is not None}


def apply_codat_write(
    company_id: str, write: CodatWrite, payments: PaymentStore, policy: PaymentPolicy
) -> WriteApplied:
    """Attach Codat's report of a payment write to the one payment awaiting Codat's answer.

    Never a status change and never a call to Codat: the bill still decides PAID (Codat's
    webhook names no bill), and a reported failure does not make a payment FAILED (the attempt's
    stored answer and the bill decide that). What it changes: a successful write attached to an
    attempt stops the workflow from ever sending a new key for that payment (`reconcile`) and an
    operator from recording it FAILED. Safe in any order against the workflow: the write is
    conditional on the record's version, so a step deciding at the same moment is retried from
    the record and carries on as before (a new key never follows from it); a duplicate or a
    replay finds the write attached and changes nothing."""
    for _ in range(_WRITE_CONFLICT_RETRIES):
        records = [
            record
            for holder in dict.fromkeys(payments.bill_holders(company_id))
            if (record := payments.get(company_id, holder)) is not None
        ]
        record, why = attribute_write(records, write, policy)
        if record is None:
            return WriteApplied(None, False, why)
        changed = with_write(record, write)
        if changed is None:
            return WriteApplied(record.payment_id, False, "already recorded")
        written = changed.model_copy(update={"version": record.version + 1})
        if payments.replace(written, expected_version=record.version):
            return WriteApplied(record.payment_id, True, why)
    raise ConcurrentPaymentUpdateError(
        f"the payments of company {company_id!r} kept changing while Codat's write "
        f"{write.write_id!r} was attached"
    )


def list_on_bill(bill_payments: BillPayments, record: PaymentRecord) -> None:
    """The payment as the bill lists it: the product sees a bill's payments with the bill."""
    listed = ProductPayment.model_validate(
        {
            "paymentId": record.payment_id,
            "amount": record.intent.amount,
            "status": record.status.value,
            "currency": record.currency,
            "date": record.intent.date.isoformat(),
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
        }
    )
    bill_payments.record_payment(record.company_id, record.bill_id, listed, record.version)


def outcome_event(record: PaymentRecord, company: CompanyRecord) -> DomainEvent:
    common: dict[str, Any] = {
        "event_id": f"payment:{record.company_id}:{record.payment_id}:{record.status}",
        "occurred_at": record.updated_at,
        "company_id": record.company_id,
        "codat_company_id": company.codat_company_id,
        "payment_id": record.payment_id,
        "bill_id": record.bill_id,
        "amount": format(record.intent.amount, "f"),
        "currency": record.currency,
        "attempts": record.attempts,
    }
    if record.status is PaymentStatus.PAID:
        return BillPaid(**common, codat_payment_id=record.codat_payment_id)
    return PaymentFailed(
        **common,
        status=record.status.value,
        reason=record.reason,
        correlation_id=record.correlation_id,
    )


# --- helpers ------------------------------------------------------------------------------------


def _resume(record: PaymentRecord) -> Step:
    """Where a payment found in the wrong step carries on (a retried step that had moved it)."""
    status = record.status
    if status.is_final:
        return Step(next=Next.FINISH, status=status)
    if status is PaymentStatus.UNKNOWN:
        return Step(next=Next.RECONCILE, status=status)
    if status is PaymentStatus.SUBMITTED or record.snapshot is not None:
        return Step(next=Next.SUBMIT, status=status)
    return Step(next=Next.CHECK, status=status)


def _reject(
    flow: Workflow,
    record: PaymentRecord,
    reason: str,
    now: datetime,
    correlation_id: str | None = None,
) -> Step:
    rejected = record.moved_to(
        PaymentStatus.REJECTED, reason, now, correlation_id=correlation_id or record.correlation_id
    )
    flow.save(record, rejected)
    return Step(next=Next.FINISH, status=PaymentStatus.REJECTED)


def _fail(flow: Workflow, record: PaymentRecord, reason: str, now: datetime) -> Step:
    flow.save(record, record.moved_to(PaymentStatus.FAILED, reason, now))
    return Step(next=Next.FINISH, status=PaymentStatus.FAILED)


def _body(record: PaymentRecord) -> PaymentBody:
    intent = record.intent
    return PaymentBody(
        amount=intent.amount,
        date=intent.date,
        account_id=intent.account_id,
        reference=intent.reference,
        currency_rate=intent.currency_rate,
    )


def _snapshot(bill: BillRecord, now: datetime) -> BillSnapshot:
    return BillSnapshot(
        amount_due=bill.amount_due,
        status=bill.status,
        source_modified_date=bill.source_modified_date,
        taken_at=now,
    )


# What a reported successful write forbids: giving up an attempt that may have landed.
_DECISIONS_A_WRITE_CHANGES = frozenset({PaymentStatus.PENDING, PaymentStatus.FAILED})


def _only_writes_attached(
    read: PaymentRecord, stored: PaymentRecord, changed: PaymentRecord
) -> bool:
    """Whether the stored record differs from the one read only by Codat writes attached since,
    and the change decided from it is one those writes cannot alter."""
    if stored.codat_writes == read.codat_writes:
        return False
    same = stored.model_copy(update={"codat_writes": read.codat_writes, "version": read.version})
    undecided = (
        read.status is PaymentStatus.UNKNOWN and changed.status in _DECISIONS_A_WRITE_CHANGES
    )
    return same == read and not undecided


def _stored(payments: PaymentStore, company_id: str, payment_id: str) -> PaymentRecord:
    record = payments.get(company_id, payment_id)
    if record is None:
        raise NotFoundError(f"payment {payment_id!r} of company {company_id!r} is not known")
    return record
