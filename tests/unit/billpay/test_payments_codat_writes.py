"""Codat's billPayments.write.* webhooks applied to the payments: attached to the one payment
awaiting Codat's answer as evidence, never a status change, never a second payment; idempotent
and safe before or after the workflow records its answer, duplicated or reordered."""

from datetime import timedelta

import pytest

from billpay.payments import logic
from billpay.payments.logic import ConcurrentPaymentUpdateError, IllegalSettlementError, Next
from billpay.payments.models import CodatWrite, PaymentStatus
from billpay.payments.rules import attribute_write, with_write

from .payments_fakes import T0, run_workflow
from .test_payments_workflow import COMPANY, World, key


def codat_write(write_id="push-1", successful=True, record_id="codat-pay-9", **times) -> CodatWrite:
    return CodatWrite(
        write_id=write_id,
        webhook_id=f"msg-{write_id}",
        successful=successful,
        status="Success" if successful else "Failed",
        record_id=record_id if successful else None,
        **times,
    )


def unknown_after_a_stored_500(world: World):
    world.codat.faults.append("error")
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    assert logic.submit(ref, world.flow).next is Next.WAIT_TO_RECONCILE
    return ref


def apply(world: World, write: CodatWrite) -> logic.WriteApplied:
    return logic.apply_codat_write(COMPANY, write, world.payments, world.flow.policy)


# --- the rules ------------------------------------------------------------------------------


def test_a_write_is_the_only_payment_awaiting_an_answer_or_nobodys():
    world = World()
    ref = unknown_after_a_stored_500(world)
    record = world.record()
    found, why = attribute_write([record], codat_write(), world.flow.policy)
    assert (found, why) == (record, "the only payment awaiting Codat's answer")
    # Two payments awaiting an answer: not attributable.
    other = record.model_copy(update={"payment_id": "pay-2"})
    found, why = attribute_write([record, other], codat_write(), world.flow.policy)
    assert found is None
    assert "pay-1, pay-2 all await" in why
    # A write that finished before the attempt was sent is not it.
    early = codat_write(completed_at=T0 - timedelta(hours=1))
    assert attribute_write([record], early, world.flow.policy) == (
        None,
        "no payment of the company awaits Codat's answer",
    )
    assert ref.payment_id == "pay-1"


def test_a_write_already_attached_is_not_attached_again():
    world = World()
    unknown_after_a_stored_500(world)
    attached = with_write(world.record(), codat_write())
    assert attached is not None
    assert attached.codat_writes[0].attempt == 1
    assert with_write(attached, codat_write()) is None
    assert attribute_write([attached], codat_write(), world.flow.policy)[1] == "already recorded"


# --- applied to the payments table --------------------------------------------------------------


def test_a_reported_success_stops_a_new_key_and_the_payment_waits_for_review():
    # Given attempt 1 answered 500 and the bill shows nothing: normally a new key after the window
    world = World()
    ref = unknown_after_a_stored_500(world)
    # When Codat reports a payment written (twice: a duplicate delivery)
    assert apply(world, codat_write()).attached
    assert apply(world, codat_write()) == logic.WriteApplied("pay-1", False, "already recorded")
    record = world.record()
    assert (record.status, len(record.codat_writes)) == (PaymentStatus.UNKNOWN, 1)
    # Then the workflow never sends attempt 2: it stops for review once the window has passed
    run = run_workflow(world.flow, world.clock, ref)
    assert run.end == "NeedsReview"
    assert world.keys_sent() == [key(1)]
    assert "Codat reported payment codat-pay-9 written during attempt 1" in world.record().reason
    # and an operator cannot record it FAILED, only PAID
    with pytest.raises(IllegalSettlementError, match="cannot be recorded FAILED"):
        logic.settle(ref, PaymentStatus.FAILED, "not in the platform", "ops", world.flow)
    logic.settle(ref, PaymentStatus.PAID, "platform shows it", "ops", world.flow, "codat-pay-9")
    assert world.record().status is PaymentStatus.PAID


def test_a_reported_failure_is_left_to_reconciliation():
    world = World()
    ref = unknown_after_a_stored_500(world)
    assert apply(world, codat_write(successful=False)).attached
    run = run_workflow(world.flow, world.clock, ref)
    # The bill decides, as without the webhook: attempt 2 after the window, one payment.
    assert run.end == "Finished"
    assert world.keys_sent() == [key(1), key(2)]
    assert world.record().status is PaymentStatus.PAID
    assert len(world.codat.payments) == 1


@pytest.mark.parametrize("order", [("failed", "ok"), ("ok", "failed")])
def test_reordered_reports_converge_a_success_stops_the_new_key_either_way(order):
    world = World()
    ref = unknown_after_a_stored_500(world)
    writes = {"failed": codat_write("push-f", successful=False), "ok": codat_write("push-s")}
    for name in order:
        assert apply(world, writes[name]).attached
    assert run_workflow(world.flow, world.clock, ref).end == "NeedsReview"
    assert world.keys_sent() == [key(1)]


def test_a_webhook_before_the_workflow_records_codats_answer_is_kept_with_the_answer():
    # Given Codat created the payment and its webhook is applied before Submit records PAID
    world = World()
    ref = world.accept()
    logic.take_bill(ref, world.flow)
    logic.check(ref, world.flow)
    applied = []

    def webhook_first(record):
        if record.status is PaymentStatus.PAID and not applied:
            applied.append(apply(world, codat_write(record_id="codat-pay-1")))
        return False

    world.payments.crash_before = webhook_first
    # When Submit records Codat's 201 over a record that changed only by the attached write
    assert logic.submit(ref, world.flow).next is Next.FINISH
    # Then both are kept: PAID with Codat's id and the write; one key, one payment, no retry
    assert applied[0].attached
    record = world.record()
    assert (record.status, record.codat_payment_id) == (PaymentStatus.PAID, "codat-pay-1")
    assert [w.write_id for w in record.codat_writes] == ["push-1"]
    assert world.keys_sent() == [key(1)]
    assert len(world.codat.payments) == 1


def test_a_decision_to_send_a_new_key_made_without_a_reported_success_is_made_again():
    # Given reconcile decides "new key" (the window passed, the bill unchanged) and the success
    # webhook is attached between its read and its write
    world = World()
    ref = unknown_after_a_stored_500(world)
    world.clock.advance(95 * 60 + 1)
    applied = []

    def webhook_first(record):
        if record.status is PaymentStatus.PENDING and not applied:
            applied.append(apply(world, codat_write()))
        return False

    world.payments.crash_before = webhook_first
    # Then the decision is refused (the step is retried from the record) and, made again, stops
    with pytest.raises(ConcurrentPaymentUpdateError):
        logic.reconcile(ref, world.flow)
    assert world.record().status is PaymentStatus.UNKNOWN
    assert logic.reconcile(ref, world.flow).next is Next.NEEDS_REVIEW
    assert world.keys_sent() == [key(1)]


def test_a_webhook_after_the_payment_is_over_changes_nothing():
    world = World()
    world.pay()
    before = world.record()
    assert apply(world, codat_write(record_id="codat-pay-1")) == logic.WriteApplied(
        None, False, "no payment of the company awaits Codat's answer"
    )
    assert world.record() == before


def test_an_operator_who_finds_the_write_is_anothers_can_record_failed_naming_it():
    world = World()
    ref = unknown_after_a_stored_500(world)
    apply(world, codat_write())
    assert run_workflow(world.flow, world.clock, ref).end == "NeedsReview"
    with pytest.raises(IllegalSettlementError, match=r"no Codat write \['push-9'\]"):
        logic.settle(
            ref, PaymentStatus.FAILED, "not in the platform", "ops", world.flow,
            dismissed_writes=frozenset({"push-9"}),
        )  # fmt: skip
    logic.settle(
        ref, PaymentStatus.FAILED, "not in the platform", "ops", world.flow,
        dismissed_writes=frozenset({"push-1"}),
    )  # fmt: skip
    record = world.record()
    assert record.status is PaymentStatus.FAILED
    assert record.reason.endswith("(Codat writes push-1 found to be others')")
    assert world.keys_sent() == [key(1)]
