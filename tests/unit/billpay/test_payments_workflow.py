"""The payment workflow's steps over in-memory ports: exactly one payment whatever Codat answers,
and a step that dies anywhere resumes without a second one."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billpay.bills.models import AccountStatus, BillStatus
from billpay.codat.errors import (
    CodatRateLimitedError,
    CodatRejectedError,
    CodatUnavailableError,
)
from billpay.companies.models import CompanyStatus
from billpay.payments import logic
from billpay.payments.logic import Intake, Next, PaymentRef, Workflow
from billpay.payments.models import PaymentRequest, PaymentStatus, attempt_key

from .fakes import InMemoryCompanies, InMemoryWorkflow, RecordingPublisher
from .payables_fakes import ready_company
from .payments_fakes import (
    T0,
    Clock,
    FakeCodatPayables,
    InMemoryPayablesCopy,
    InMemoryPayments,
    RecordingBillPayments,
    account,
    open_bill,
    policy,
    run_workflow,
)

COMPANY = "smb-1"


class World:
    """One READY company with one open bill of 100.00 GBP and one GBP account, in the product's
    copy and in Codat."""

    def __init__(self, **policy_changes) -> None:
        self.clock = Clock()
        self.companies = InMemoryCompanies()
        self.companies.create(ready_company(COMPANY))
        self.payments = InMemoryPayments()
        self.copy = InMemoryPayablesCopy(bills={"bill-1": open_bill()}, accounts=[account()])
        self.codat = FakeCodatPayables(self.clock)
        self.codat.bills["bill-1"] = open_bill()
        self.codat.accounts = [account()]
        self.on_bill = RecordingBillPayments()
        self.events = RecordingPublisher()
        self.workflows = InMemoryWorkflow()
        self.flow = Workflow(
            payments=self.payments,
            companies=self.companies,
            codat=lambda: self.codat,
            bill_payments=self.on_bill,
            events=self.events,
            policy=policy(**policy_changes),
            now=self.clock,
        )
        self.intake = Intake(
            payments=self.payments,
            companies=self.companies,
            payables=self.copy,
            bill_payments=self.on_bill,
            workflows=self.workflows,
            now=self.clock,
        )

    def accept(self, payment_id: str = "pay-1", amount: str = "100.00", **body) -> PaymentRef:
        request = PaymentRequest.model_validate(
            {
                "paymentId": payment_id,
                "amount": Decimal(amount),
                "date": "2026-11-25",
                "accountId": "acc-1",
                **body,
            }
        )
        logic.accept_payment(COMPANY, body.get("billId", "bill-1"), request, self.intake)
        return PaymentRef(company_id=COMPANY, payment_id=payment_id)

    def pay(self, payment_id: str = "pay-1", amount: str = "100.00"):
        ref = self.accept(payment_id, amount)
        return ref, run_workflow(self.flow, self.clock, ref)

    def record(self, payment_id: str = "pay-1"):
        return self.payments.get(COMPANY, payment_id)

    def statuses(self, payment_id: str = "pay-1") -> list[str]:
        return [t.status.value for t in self.record(payment_id).history]

    def keys_sent(self) -> list[str]:
        return [sent.key for sent in self.codat.sent]


def key(attempt: int, payment_id: str = "pay-1") -> str:
    return attempt_key(COMPANY, payment_id, attempt)


# --- the happy paths ----------------------------------------------------------------------------


def test_a_full_payment_is_paid_once_listed_on_the_bill_and_announced():
    world = World()
    _, run = world.pay()
    assert run.end == "Finished"
    assert world.statuses() == ["PENDING", "SUBMITTED", "PAID"]
    assert world.codat.payments == [("codat-pay-1", "bill-1", Decimal("100.00"))]
    assert world.codat.bills["bill-1"].status is BillStatus.PAID
    record = world.record()
    assert record.codat_payment_id == "codat-pay-1"
    assert world.keys_sent() == [key(1)]
    assert world.on_bill.listed[(COMPANY, "bill-1")] == {"pay-1": "PAID"}
    [event] = world.events.events
    assert event.DETAIL_TYPE == "BillPaid"
    assert event.detail()["amount"] == "100.00"
    assert event.event_id == f"payment:{COMPANY}:pay-1:PAID"
    assert world.payments.locks == {}


def test_a_partial_payment_leaves_the_bill_partially_paid():
    world = World()
    world.pay(amount="40.00")
    assert world.record().status is PaymentStatus.PAID
    assert world.codat.bills["bill-1"].amount_due == Decimal("60.00")
    assert world.codat.bills["bill-1"].status is BillStatus.PARTIALLY_PAID


def test_the_body_sent_is_the_intent_exactly():
    world = World()
    world.accept(reference="INV-1", currencyRate=Decimal("1.5"), amount="12.30")
    run_workflow(world.flow, world.clock, PaymentRef(company_id=COMPANY, payment_id="pay-1"))
    [sent] = world.codat.sent
    assert sent.body.amount == Decimal("12.30")
    assert sent.body.date == date(2026, 11, 25)
    assert sent.body.account_id == "acc-1"
    assert sent.body.reference == "INV-1"
    assert sent.body.currency_rate == Decimal("1.5")


# --- checked against Codat's fresh copy ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"amount_due": Decimal("50.00"), "status": BillStatus.PARTIALLY_PAID}, "more than"),
        ({"amount_due": Decimal("0.00"), "status": BillStatus.PAID}, "is Paid"),
        ({"status": BillStatus.VOID}, "is Void"),
    ],
)
def test_a_bill_changed_in_codat_since_the_copy_is_rejected_with_nothing_sent(change, words):
    world = World()
    world.codat.change_bill("bill-1", **change)
    world.pay()
    record = world.record()
    assert record.status is PaymentStatus.REJECTED
    assert words in record.reason
    assert world.codat.sent == []
    assert world.events.events[0].DETAIL_TYPE == "PaymentFailed"
    assert world.payments.locks == {}


def test_an_account_archived_since_the_copy_is_rejected_with_nothing_sent():
    world = World()
    world.codat.accounts = [account(status=AccountStatus.ARCHIVED)]
    world.pay()
    assert world.record().status is PaymentStatus.REJECTED
    assert "Archived" in world.record().reason
    assert world.codat.sent == []


def test_a_company_no_longer_ready_is_rejected_with_nothing_sent():
    world = World()
    ref = world.accept()
    world.companies.items[COMPANY] = ready_company(COMPANY, status=CompanyStatus.NEEDS_RELINK)
    run_workflow(world.flow, world.clock, ref)
    assert world.record().status is PaymentStatus.REJECTED
    assert world.codat.sent == []


def test_codat_refusing_the_payment_is_rejected_with_its_correlation_id():
    world = World()
    # Codat's own rules refuse it (here: the bill was paid between the check and the send).
    original = world.codat.fresh_bill

    def paid_after_reading(*args):
        bill = original(*args)
        world.codat.change_bill("bill-1", amount_due=Decimal("0.00"), status=BillStatus.PAID)
        return bill

    world.codat.fresh_bill = paid_after_reading
    world.pay()
    record = world.record()
    assert record.status is PaymentStatus.REJECTED
    assert "Codat refused attempt 1 (400)" in record.reason
    assert record.correlation_id == "corr-400"
    assert world.codat.payments == []


def test_a_check_codat_cannot_answer_now_is_done_again_later():
    world = World()
    world.codat.read_faults = [
        CodatRateLimitedError("429", status=429, retry_after_seconds=20),
        CodatUnavailableError("503", status=503),
    ]
    _, run = world.pay()
    assert world.record().status is PaymentStatus.PAID
    waits = [s.wait_seconds for _, s in run.steps if s.next is Next.WAIT_TO_CHECK]
    assert waits == [20, 10]
    assert len(world.codat.payments) == 1


def test_a_check_codat_never_answers_ends_failed_with_nothing_sent():
    world = World(max_pending_seconds=3600)
    world.codat.read_faults = [CodatUnavailableError("503", status=503)] * 1000
    world.pay()
    record = world.record()
    assert record.status is PaymentStatus.FAILED
    assert "could not be read" in record.reason
    assert world.codat.sent == []
    assert world.events.events[0].DETAIL_TYPE == "PaymentFailed"


# --- rate limits ------------------------------------------------------------------------------


def test_a_run_of_429s_waits_each_retry_after_and_pays_once_with_the_same_key():
    world = World()
    world.codat.faults = ["rate_limit"] * 4
    world.codat.retry_after = 7
    _, run = world.pay()
    assert world.record().status is PaymentStatus.PAID
    assert world.keys_sent() == [key(1)] * 5
    assert len(world.codat.payments) == 1
    waits = [step.wait_seconds for name, step in run.steps if step.next is Next.WAIT_FOR_RATE_LIMIT]
    assert waits == [7, 7, 7, 7]
    assert world.statuses() == ["PENDING", "SUBMITTED", "PAID"]


def test_429s_for_longer_than_the_window_keep_the_key_since_codat_stored_nothing():
    world = World()
    world.codat.faults = ["rate_limit"] * 3
    world.codat.retry_after = 3600  # e.g. the daily quota: 3 hours in all
    world.pay()
    assert world.record().status is PaymentStatus.PAID
    assert set(world.keys_sent()) == {key(1)}
    assert world.record().attempts == 1


# --- ambiguous answers ----------------------------------------------------------------------------


def test_applied_then_500_is_found_on_the_bill_without_sending_again():
    world = World()
    world.codat.faults = ["applied_then_error"]
    world.pay()
    record = world.record()
    assert record.status is PaymentStatus.PAID
    assert "amount due 100.00 -> 0.00" in record.reason
    assert world.statuses() == ["PENDING", "SUBMITTED", "UNKNOWN", "PAID"]
    assert world.keys_sent() == [key(1)]
    assert len(world.codat.payments) == 1
    assert record.correlation_id == "corr-500"


def test_applied_then_timeout_is_found_on_the_bill_without_sending_again():
    world = World()
    world.codat.faults = ["applied_then_timeout"]
    world.pay()
    assert world.record().status is PaymentStatus.PAID
    assert world.keys_sent() == [key(1)]
    assert len(world.codat.payments) == 1


def test_a_hang_that_lands_late_is_read_until_it_shows_and_never_sent_again():
    world = World()
    world.codat.faults = ["hang"]
    world.codat.hang_reads = 4
    _, run = world.pay()
    assert world.record().status is PaymentStatus.PAID
    assert world.keys_sent() == [key(1)]
    assert len(world.codat.payments) == 1
    reads = [s for name, s in run.steps if name == "reconcile"]
    assert len(reads) == 4
    # The schedule: 10 s before the first read, then 30, 60, 120.
    waits = [s.wait_seconds for _, s in run.steps if s.next is Next.WAIT_TO_RECONCILE]
    assert waits == [10, 30, 60, 120]


def test_a_stored_500_is_never_followed_by_a_new_key_inside_the_window():
    world = World()
    world.codat.faults = ["error"]
    ref = world.accept()
    run = run_workflow(world.flow, world.clock, ref)
    record = world.record()
    assert record.status is PaymentStatus.PAID
    assert world.keys_sent() == [key(1), key(2)]
    assert len(world.codat.payments) == 1
    assert world.statuses() == ["PENDING", "SUBMITTED", "UNKNOWN", "PENDING", "SUBMITTED", "PAID"]
    # The second key went only after the window (and its margin) since the first.
    first, second = record.earlier_attempts[0], record.attempt
    assert second.first_sent_at - first.last_sent_at >= timedelta(minutes=95)
    assert run.end == "Finished"


def test_no_attempt_ever_showing_ends_failed_after_max_attempts():
    world = World(max_attempts=2)
    world.codat.faults = ["error", "error"]
    world.pay()
    record = world.record()
    assert record.status is PaymentStatus.FAILED
    assert "none of 2 attempts" in record.reason
    assert world.keys_sent() == [key(1), key(2)]
    assert world.codat.payments == []
    [event] = world.events.events
    assert event.DETAIL_TYPE == "PaymentFailed"
    assert event.detail()["status"] == "FAILED"


def test_a_422_under_our_key_is_ambiguous_not_a_refusal():
    world = World()
    ref = world.accept()
    world.codat.faults = []
    original = world.codat.pay_bill
    calls = []

    def first_422(*args):
        calls.append(args)
        if len(calls) == 1:
            original(*args)  # lands
            raise CodatRejectedError("another body", status=422, correlation_id="c-422")
        return original(*args)

    world.codat.pay_bill = first_422
    run_workflow(world.flow, world.clock, ref)
    assert world.record().status is PaymentStatus.PAID
    assert world.statuses() == ["PENDING", "SUBMITTED", "UNKNOWN", "PAID"]
    assert len(world.codat.payments) == 1


def test_a_bill_that_changed_otherwise_stops_for_review_and_keeps_the_bill():
    world = World()
    world.codat.faults = ["error"]
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    assert logic.submit(ref, world.flow).next is Next.WAIT_TO_RECONCILE
    # While the attempt is unknown, the SMB pays 30.00 in the accounting platform.
    world.codat.change_bill("bill-1", amount_due=Decimal("70.00"), status=BillStatus.PARTIALLY_PAID)
    run = run_workflow(world.flow, world.clock, ref)
    assert run.end == "NeedsReview"
    record = world.record()
    assert record.status is PaymentStatus.UNKNOWN
    assert "does not explain it" in record.reason
    assert world.keys_sent() == [key(1)]
    assert world.payments.locks == {(COMPANY, "bill-1"): "pay-1"}
    assert world.events.events == []


def test_reads_that_fail_are_read_again_later():
    world = World()
    world.codat.faults = ["applied_then_error"]
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    logic.submit(ref, world.flow)
    world.codat.read_faults = [CodatUnavailableError("503", status=503)] * 2
    run = run_workflow(world.flow, world.clock, ref)
    assert world.record().status is PaymentStatus.PAID
    assert len(world.codat.payments) == 1
    assert sum(1 for name, _ in run.steps if name == "reconcile") == 3


# --- a Lambda dying at any point ----------------------------------------------------------------


def test_dying_after_codats_answer_resends_the_same_key_and_codat_replays_it():
    world = World()
    ref = world.accept()
    world.payments.crash_before = lambda record: record.status is PaymentStatus.PAID
    assert logic.take_bill(ref, world.flow).next is Next.CHECK
    assert logic.check(ref, world.flow).next is Next.SUBMIT
    with pytest.raises(RuntimeError, match="died"):
        logic.submit(ref, world.flow)
    assert world.record().status is PaymentStatus.SUBMITTED
    assert len(world.codat.payments) == 1
    # Step Functions retries the task.
    world.clock.advance(2)
    assert logic.submit(ref, world.flow).next is Next.FINISH
    assert world.record().status is PaymentStatus.PAID
    assert world.record().codat_payment_id == "codat-pay-1"
    assert world.keys_sent() == [key(1), key(1)]
    assert len(world.codat.payments) == 1


def test_dying_after_codats_answer_and_retried_too_late_for_the_key_reads_the_bill():
    world = World()
    ref = world.accept()
    world.payments.crash_before = lambda record: record.status is PaymentStatus.PAID
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    with pytest.raises(RuntimeError):
        logic.submit(ref, world.flow)
    world.clock.advance(90 * 60)  # past the key's safe use
    step = logic.submit(ref, world.flow)
    assert step.next is Next.RECONCILE
    assert logic.reconcile(ref, world.flow).next is Next.FINISH
    assert world.record().status is PaymentStatus.PAID
    assert world.keys_sent() == [key(1)]
    assert len(world.codat.payments) == 1


def test_dying_after_recording_unknown_goes_on_reconciling_not_resending():
    world = World()
    world.codat.faults = ["applied_then_error"]
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    logic.submit(ref, world.flow)
    assert world.record().status is PaymentStatus.UNKNOWN
    # The same task retried (its answer was lost): it must not send a thing.
    assert logic.submit(ref, world.flow).next is Next.RECONCILE
    assert world.keys_sent() == [key(1)]


@pytest.mark.parametrize("step", [logic.take_bill, logic.check, logic.submit, logic.reconcile])
def test_every_step_run_again_on_a_paid_payment_only_finishes(step):
    world = World()
    ref, _ = world.pay()
    sent = list(world.codat.sent)
    assert step(ref, world.flow).next is Next.FINISH
    assert world.codat.sent == sent
    logic.finish(ref, world.flow)
    logic.finish(ref, world.flow)
    # The same event id each time: consumers dedupe on it.
    assert {e.event_id for e in world.events.events} == {f"payment:{COMPANY}:pay-1:PAID"}


def test_give_up_before_anything_was_sent_is_failed_and_announced():
    world = World()
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.give_up(ref, {"Error": "CodatNotFoundError", "Cause": "no connection"}, world.flow)
    record = world.record()
    assert record.status is PaymentStatus.FAILED
    assert "CodatNotFoundError" in record.reason
    assert world.events.events[0].DETAIL_TYPE == "PaymentFailed"
    assert world.payments.locks == {}


def test_give_up_with_an_attempt_unsettled_stays_unknown_and_keeps_the_bill():
    world = World()
    world.codat.faults = ["error"]
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    logic.submit(ref, world.flow)
    logic.give_up(ref, {"Error": "States.Timeout", "Cause": ""}, world.flow)
    record = world.record()
    assert record.status is PaymentStatus.UNKNOWN
    assert "may have landed" in record.reason
    assert world.events.events == []
    assert world.payments.locks == {(COMPANY, "bill-1"): "pay-1"}


# --- one payment of a bill at a time ------------------------------------------------------------


def test_a_second_payment_of_the_bill_waits_for_the_first_then_is_checked_afresh():
    world = World()
    first = world.accept("pay-1", "100.00")
    second = world.accept("pay-2", "100.00")
    assert logic.take_bill(first, world.flow).next is Next.CHECK
    waiting = logic.take_bill(second, world.flow)
    assert waiting.next is Next.WAIT_FOR_BILL
    assert "pay-1" in world.record("pay-2").reason
    run_workflow(world.flow, world.clock, first)
    run_workflow(world.flow, world.clock, second)
    assert world.record("pay-1").status is PaymentStatus.PAID
    assert world.record("pay-2").status is PaymentStatus.REJECTED
    assert "is Paid" in world.record("pay-2").reason
    assert len(world.codat.payments) == 1


def test_a_bill_held_too_long_rejects_the_waiting_payment():
    world = World(max_pending_seconds=600, bill_busy_retry_seconds=60)
    first = world.accept("pay-1", "10.00")
    second = world.accept("pay-2", "10.00")
    logic.take_bill(first, world.flow)
    run = run_workflow(world.flow, world.clock, second)
    assert run.end == "Finished"
    assert world.record("pay-2").status is PaymentStatus.REJECTED
    assert "still in flight" in world.record("pay-2").reason
    assert world.codat.sent == []


def test_a_lock_left_by_a_finished_payment_is_taken_over():
    world = World()
    first = world.accept("pay-1", "10.00")
    run_workflow(world.flow, world.clock, first)
    world.payments.locks[(COMPANY, "bill-1")] = "pay-1"  # its unlock never happened
    second = world.accept("pay-2", "10.00")
    run_workflow(world.flow, world.clock, second)
    assert world.record("pay-2").status is PaymentStatus.PAID
    assert len(world.codat.payments) == 2


def test_the_new_key_waits_for_the_window_however_often_the_bill_is_read():
    world = World(reconcile_schedule_seconds=(60,))
    world.codat.faults = ["error"]
    _, run = world.pay()
    assert world.record().status is PaymentStatus.PAID
    assert world.clock.now - T0 >= timedelta(minutes=95)
    reads = sum(1 for name, _ in run.steps if name == "reconcile")
    assert reads == 95  # one a minute, until the window and its margin (95 minutes) have passed
