"""In-memory stand-ins for the payment ports, with the adapters' contracts, and a driver that runs
the workflow's steps as the state machine does (waits advance a fake clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billpay.bills.models import (
    AccountStatus,
    BillRecord,
    BillStatus,
    Connection,
    PaymentAccount,
    ProductPayment,
)
from billpay.codat.errors import (
    CodatError,
    CodatRateLimitedError,
    CodatRejectedError,
    CodatUnavailableError,
)
from billpay.payments import logic
from billpay.payments.logic import Next, PaymentRef, Step, Workflow
from billpay.payments.models import PaymentPolicy, PaymentRecord
from billpay.payments.ports import CreatedPayment, PaymentBody

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=90)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def open_bill(bill_id: str = "bill-1", due: str = "100.00", **changes) -> BillRecord:
    record = BillRecord(
        bill_id=bill_id,
        supplier_id="sup-1",
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 12, 1),
        currency="GBP",
        total_amount=Decimal(due),
        amount_due=Decimal(due),
        status=BillStatus.OPEN,
        source_modified_date=T0 - timedelta(days=1),
    )
    return record.model_copy(update=changes)


def account(
    account_id: str = "acc-1", currency: str = "GBP", status: AccountStatus = AccountStatus.ACTIVE
) -> PaymentAccount:
    return PaymentAccount(account_id=account_id, name="Current", currency=currency, status=status)


class InMemoryPayments:
    """PaymentStore: conditional writes on version; one lock item per bill."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], PaymentRecord] = {}
        self.locks: dict[tuple[str, str], str] = {}
        self.writes: list[PaymentRecord] = []
        # Raised by the next replace() that would store a record this returns True for: the
        # Lambda dying after Codat answered and before the answer is recorded.
        self.crash_before: Callable[[PaymentRecord], bool] | None = None

    def get(self, company_id: str, payment_id: str) -> PaymentRecord | None:
        return self.records.get((company_id, payment_id))

    def create(self, record: PaymentRecord) -> bool:
        key = (record.company_id, record.payment_id)
        if key in self.records:
            return False
        self.records[key] = record
        self.writes.append(record)
        return True

    def replace(self, record: PaymentRecord, expected_version: int) -> bool:
        if self.crash_before is not None and self.crash_before(record):
            self.crash_before = None
            raise RuntimeError("Lambda died before recording")
        key = (record.company_id, record.payment_id)
        stored = self.records.get(key)
        if stored is None or stored.version != expected_version:
            return False
        self.records[key] = record
        self.writes.append(record)
        return True

    def lock_bill(self, company_id: str, bill_id: str, payment_id: str, now: datetime) -> str:
        return self.locks.setdefault((company_id, bill_id), payment_id)

    def take_over_bill(
        self, company_id: str, bill_id: str, stale_holder: str, payment_id: str, now: datetime
    ) -> bool:
        key = (company_id, bill_id)
        if self.locks.get(key) != stale_holder:
            return False
        self.locks[key] = payment_id
        return True

    def bill_holders(self, company_id: str) -> list[str]:
        return [holder for (company, _), holder in self.locks.items() if company == company_id]

    def unlock_bill(self, company_id: str, bill_id: str, payment_id: str) -> None:
        if self.locks.get((company_id, bill_id)) == payment_id:
            del self.locks[(company_id, bill_id)]


@dataclass
class InMemoryPayablesCopy:
    bills: dict[str, BillRecord] = field(default_factory=dict)
    accounts: list[PaymentAccount] = field(default_factory=list)

    def bill(self, company_id: str, bill_id: str) -> BillRecord | None:
        return self.bills.get(bill_id)

    def payment_accounts(self, company_id: str) -> list[PaymentAccount]:
        return list(self.accounts)


class RecordingBillPayments:
    def __init__(self) -> None:
        self.listed: dict[tuple[str, str], dict[str, str]] = {}
        self.versions: dict[str, int] = {}

    def record_payment(
        self, company_id: str, bill_id: str, payment: ProductPayment, version: int | None = None
    ) -> None:
        seen = self.versions.get(payment.payment_id)
        if version is not None and seen is not None and seen >= version:
            return
        if version is not None:
            self.versions[payment.payment_id] = version
        self.listed.setdefault((company_id, bill_id), {})[payment.payment_id] = payment.status


@dataclass
class Sent:
    bill_id: str
    body: PaymentBody
    key: str


class FakeCodatPayables:
    """Codat's bill payments with its idempotency rules: every answer under an Idempotency-Key is
    stored and replayed (5xx included), a 429 stores nothing, another body under a key is a 422.

    `faults` are consumed by the next pay_bill calls that reach them, like the emulator's:
    "rate_limit" (429, before the key is looked at), "error" (not applied, 500 stored),
    "applied_then_error" (applied, 500 stored), "applied_then_timeout" (applied, success stored,
    the client times out), "hang" (the client times out; the payment lands `hang_reads` reads of
    the bill later, success stored).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.bills: dict[str, BillRecord] = {}
        self.accounts: list[PaymentAccount] = []
        self.faults: list[str] = []
        self.read_faults: list[CodatError] = []
        self.retry_after = 5
        self.hang_reads = 2
        self.sent: list[Sent] = []
        self.payments: list[tuple[str, str, Decimal]] = []  # (id, bill, amount)
        self.reads = 0
        self._stored: dict[str, tuple[PaymentBody, CreatedPayment | CodatError]] = {}
        self._landing: list[tuple[int, str, Decimal]] = []

    # --- reads ---

    def fresh_bill(
        self, connection: Connection, bill_id: str, modified_since: datetime | None
    ) -> BillRecord | None:
        self.reads += 1
        if self.read_faults:
            raise self.read_faults.pop(0)
        for due, landing_bill, amount in list(self._landing):
            if self.reads >= due:
                self._landing.remove((due, landing_bill, amount))
                self._apply(landing_bill, amount)
        bill = self.bills.get(bill_id)
        if bill is None:
            return None
        if modified_since is not None and (
            bill.source_modified_date is None or bill.source_modified_date < modified_since
        ):
            return None
        return bill

    def payment_accounts(self, connection: Connection) -> list[PaymentAccount]:
        return list(self.accounts)

    # --- the payment ---

    def pay_bill(
        self, connection: Connection, bill_id: str, body: PaymentBody, idempotency_key: str
    ) -> CreatedPayment:
        self.sent.append(Sent(bill_id, body, idempotency_key))
        if self.faults and self.faults[0] == "rate_limit":
            self.faults.pop(0)
            raise CodatRateLimitedError(
                "429", status=429, correlation_id="corr-429", retry_after_seconds=self.retry_after
            )
        stored = self._stored.get(idempotency_key)
        if stored is not None:
            stored_body, answer = stored
            if stored_body != body:
                raise CodatRejectedError("422 another body", status=422, correlation_id="c-422")
            return self._answer(answer)
        fault = self.faults.pop(0) if self.faults else None
        answer: CreatedPayment | CodatError
        if fault == "error":
            answer = CodatUnavailableError("500", status=500, correlation_id="corr-500")
        elif fault == "hang":
            self._landing.append((self.reads + self.hang_reads, bill_id, body.amount))
            self._stored[idempotency_key] = (body, CreatedPayment(id="late"))
            raise CodatUnavailableError("timed out", correlation_id=None)
        else:
            answer = self._create(bill_id, body)
            if fault == "applied_then_error":
                answer = CodatUnavailableError("500", status=500, correlation_id="corr-500")
        self._stored[idempotency_key] = (body, answer)
        if fault == "applied_then_timeout":
            raise CodatUnavailableError("timed out", correlation_id=None)
        return self._answer(answer)

    def _answer(self, answer: CreatedPayment | CodatError) -> CreatedPayment:
        if isinstance(answer, CodatError):
            raise answer
        return answer

    def _create(self, bill_id: str, body: PaymentBody) -> CreatedPayment | CodatError:
        bill = self.bills.get(bill_id)
        if bill is None:
            return CodatRejectedError("404 no bill", status=404, correlation_id="corr-404")
        if body.amount > bill.amount_due or bill.status not in (
            BillStatus.OPEN,
            BillStatus.PARTIALLY_PAID,
        ):
            return CodatRejectedError("400 not payable", status=400, correlation_id="corr-400")
        return CreatedPayment(id=self._apply(bill_id, body.amount))

    def _apply(self, bill_id: str, amount: Decimal) -> str:
        bill = self.bills[bill_id]
        due = bill.amount_due - amount
        self.bills[bill_id] = bill.model_copy(
            update={
                "amount_due": due,
                "status": BillStatus.PAID if due == 0 else BillStatus.PARTIALLY_PAID,
                "source_modified_date": self.clock(),
            }
        )
        payment_id = f"codat-pay-{len(self.payments) + 1}"
        self.payments.append((payment_id, bill_id, amount))
        return payment_id

    def change_bill(self, bill_id: str, **changes) -> None:
        """The accounting platform changes the bill on its own."""
        self.bills[bill_id] = self.bills[bill_id].model_copy(
            update={**changes, "source_modified_date": self.clock()}
        )


# --- the state machine, as the steps see it -----------------------------------------------------

_STEPS: dict[Next, Callable[[PaymentRef, Workflow], Step]] = {
    Next.CHECK: logic.check,
    Next.SUBMIT: logic.submit,
    Next.RECONCILE: logic.reconcile,
}
_AFTER_WAIT = {
    Next.WAIT_FOR_BILL: logic.take_bill,
    Next.WAIT_TO_CHECK: logic.check,
    Next.WAIT_FOR_RATE_LIMIT: logic.submit,
    Next.WAIT_TO_RECONCILE: logic.reconcile,
}


@dataclass
class Run:
    steps: list[tuple[str, Step]]
    end: str  # "Finished" or "NeedsReview"

    @property
    def waited(self) -> int:
        return sum(step.wait_seconds for _, step in self.steps)


def run_workflow(flow: Workflow, clock: Clock, ref: PaymentRef, *, max_steps: int = 500) -> Run:
    """Drive the steps as the state machine does: route on `next`, wait `waitSeconds`."""
    steps: list[tuple[str, Step]] = []
    step = logic.take_bill(ref, flow)
    steps.append(("TakeBill", step))
    for _ in range(max_steps):
        if step.next is Next.FINISH:
            steps.append(("Finish", logic.finish(ref, flow)))
            return Run(steps, "Finished")
        if step.next is Next.NEEDS_REVIEW:
            return Run(steps, "NeedsReview")
        if step.next in _AFTER_WAIT:
            clock.advance(step.wait_seconds)
            function = _AFTER_WAIT[step.next]
        else:
            function = _STEPS[step.next]
        step = function(ref, flow)
        steps.append((function.__name__, step))
    raise AssertionError(f"the workflow did not end in {max_steps} steps: {steps[-5:]}")


def policy(**changes) -> PaymentPolicy:
    return PaymentPolicy().model_copy(update=changes)
