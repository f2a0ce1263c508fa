"""An operator settling a payment the workflow left UNKNOWN (NeedsReview): only UNKNOWN, only to
PAID or FAILED, with evidence, FAILED only once the attempt can no longer land; the outcome is
listed on the bill, announced once, and the bill let go."""

from decimal import Decimal

import pytest

from billpay.bills.models import BillStatus
from billpay.payments import logic
from billpay.payments.logic import IllegalSettlementError
from billpay.payments.models import PaymentStatus
from billpay.payments.rules import settlement_problems

from .payments_fakes import run_workflow
from .test_payments_workflow import COMPANY, World

EVIDENCE = "Xero shows payment 8841 of 100.00 on the bill"


def needing_review() -> tuple[World, logic.PaymentRef]:
    """Attempt 1 answered 500 (not applied) and the bill changed otherwise: NeedsReview."""
    world = World()
    world.codat.faults = ["error"]
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    logic.submit(ref, world.flow)
    world.codat.change_bill("bill-1", amount_due=Decimal("70.00"), status=BillStatus.PARTIALLY_PAID)
    assert run_workflow(world.flow, world.clock, ref).end == "NeedsReview"
    assert world.record().status is PaymentStatus.UNKNOWN
    return world, ref


def test_paid_with_evidence_is_recorded_listed_announced_and_lets_the_bill_go():
    world, ref = needing_review()
    settled = logic.settle(
        ref, PaymentStatus.PAID, EVIDENCE, "ops@acme", world.flow, codat_payment_id="cp-8841"
    )
    record = world.record()
    assert record == settled
    assert record.status is PaymentStatus.PAID
    assert record.codat_payment_id == "cp-8841"
    assert record.reason == f"settled PAID by ops@acme after review: {EVIDENCE}"
    assert world.statuses()[-2:] == ["UNKNOWN", "PAID"]
    assert world.on_bill.listed[(COMPANY, "bill-1")] == {"pay-1": "PAID"}
    assert [e.DETAIL_TYPE for e in world.events.events] == ["BillPaid"]
    assert world.payments.locks == {}
    # Nothing went to Codat: settling is a record, not a payment.
    assert len(world.codat.sent) == 1


def test_failed_is_refused_inside_the_window_and_recorded_after_it():
    world, ref = needing_review()
    with pytest.raises(IllegalSettlementError, match="may still land at Codat until"):
        logic.settle(ref, PaymentStatus.FAILED, "not on the bill in Xero", "ops", world.flow)
    assert world.record().status is PaymentStatus.UNKNOWN
    world.clock.advance(95 * 60 + 1)
    logic.settle(ref, PaymentStatus.FAILED, "not on the bill in Xero", "ops", world.flow)
    record = world.record()
    assert record.status is PaymentStatus.FAILED
    [event] = world.events.events
    assert (event.DETAIL_TYPE, event.reason) == ("PaymentFailed", record.reason)
    assert world.payments.locks == {}


def test_settling_twice_is_refused_and_changes_nothing():
    world, ref = needing_review()
    logic.settle(ref, PaymentStatus.PAID, EVIDENCE, "ops", world.flow)
    before = world.record()
    with pytest.raises(IllegalSettlementError, match="is PAID, not UNKNOWN: it is settled already"):
        logic.settle(ref, PaymentStatus.PAID, EVIDENCE, "ops", world.flow)
    assert world.record() == before
    assert len(world.events.events) == 1


def test_a_payment_its_workflow_is_still_deciding_is_refused():
    world = World()
    ref = world.accept()
    with pytest.raises(IllegalSettlementError, match="is PENDING, not UNKNOWN: its workflow"):
        logic.settle(ref, PaymentStatus.PAID, EVIDENCE, "ops", world.flow)
    assert world.record().status is PaymentStatus.PENDING
    assert world.events.events == []


@pytest.mark.parametrize(
    ("status", "evidence", "codat_id", "words"),
    [
        (PaymentStatus.REJECTED, EVIDENCE, None, "PAID or FAILED, not REJECTED"),
        (PaymentStatus.PAID, "  ok  ", None, "say what shows the outcome"),
        (PaymentStatus.FAILED, EVIDENCE, "cp-1", "evidence of a PAID payment only"),
    ],
)
def test_bad_decisions_are_refused_with_what_is_wrong(status, evidence, codat_id, words):
    world, ref = needing_review()
    world.clock.advance(95 * 60 + 1)
    with pytest.raises(IllegalSettlementError, match=words):
        logic.settle(ref, status, evidence, "ops", world.flow, codat_payment_id=codat_id)
    assert world.record().status is PaymentStatus.UNKNOWN


def test_the_rule_lists_every_problem_at_once():
    world, _ = needing_review()
    problems = settlement_problems(
        world.record(), PaymentStatus.FAILED, "", world.flow.policy, world.clock()
    )
    assert len(problems) == 2
    assert "evidence" in problems[0]
    assert "may still land" in problems[1]
