"""Applying stored webhooks: each event type's effect, once per webhook-id, in any order."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from billpay.companies.models import CompanyRecord, CompanyStatus, Wait, WaitKind
from billpay.events import models as events
from billpay.webhooks import logic, processor
from billpay.webhooks.store import DynamoWebhookStore, EventStatus, StoredWebhook

from .fakes import (
    InMemoryCompanies,
    InMemoryThrottle,
    LambdaContext,
    RecordingPublisher,
    RecordingResumer,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
CODAT_ID = "codat-co-1"


class World:
    def __init__(self, store: DynamoWebhookStore) -> None:
        self.store = store
        self.companies = InMemoryCompanies()
        self.resumer = RecordingResumer()
        self.publisher = RecordingPublisher()
        self.throttle = InMemoryThrottle()
        self.effects = logic.Effects(self.companies, self.resumer, self.publisher, self.throttle)
        self.counter = itertools.count(1)

    def company(self, status=CompanyStatus.PENDING_LINK, company_id="smb-1", **fields):
        record = CompanyRecord(
            company_id=company_id, name="Acme Ltd", status=status,
            onboarding_execution_arn="arn:aws:states:eu-west-1:1:execution:o:onboard-smb-1",
            created_at=T0, updated_at=T0, codat_company_id=CODAT_ID, **fields,
        )  # fmt: skip
        self.companies.create(record)
        return record

    def receive(self, event_type, payload, at=T0, webhook_id=None, tagged=True):
        webhook_id = webhook_id or f"msg_{next(self.counter)}"
        reference = {"id": CODAT_ID, "name": "Acme Ltd"}
        if tagged:
            reference["tags"] = {"billpayCompanyId": "smb-1"}
        if "referenceCompany" in payload:
            payload = {**payload, "referenceCompany": reference}
        body = json.dumps(
            {"id": webhook_id, "eventType": event_type, "generatedDate": at.isoformat(),
             "payload": payload}
        )  # fmt: skip
        assert (
            self.store.add(
                StoredWebhook(webhook_id, event_type, at.isoformat(), datetime.now(UTC), body)
            )
            is None
        )
        return webhook_id

    def process(self, webhook_id):
        return logic.process(
            webhook_id, self.store, self.effects, now=lambda: datetime.now(UTC), lease=LEASE
        )

    def record(self, company_id="smb-1"):
        return self.companies.get(company_id)


@pytest.fixture
def world(aws, webhook_events_table):
    return World(DynamoWebhookStore(aws("dynamodb"), webhook_events_table))


def connection(event_type_status="Linked", connection_id="conn-1"):
    return {
        "referenceCompany": {},
        "connection": {"id": connection_id, "status": event_type_status, "platformName": "Xero"},
    }


def read(*data_types, status="Complete", modified=True):
    return {
        "referenceCompany": {},
        "modifiedFromDate": None,
        "dataTypes": [
            {"connectionId": "conn-1", "dataType": d, "recordsModified": modified, "status": status}
            for d in data_types
        ],
    }


def write(status="Success", record_id="bill-9"):
    return {
        "id": "push-1", "type": "Create", "referenceCompany": {}, "connectionId": "conn-1",
        "requestedOnDate": T0.isoformat(), "completedOnDate": T0.isoformat(), "status": status,
        "record": {"id": record_id} if record_id else None,
    }  # fmt: skip


# --- connection events ---------------------------------------------------------------------


def test_connected_records_the_status_and_resumes_a_waiting_onboarding(world):
    world.company(wait=Wait(kind=WaitKind.AUTHORIZATION, token="tok", not_before=T0, armed_at=T0))
    webhook_id = world.receive("connection.connected", connection("Linked"), at=T0)
    outcome = world.process(webhook_id)
    record = world.record()
    assert (record.connection_id, record.connection_status) == ("conn-1", "Linked")
    assert record.wait is None
    assert outcome.facts["resumedWait"] is True
    assert world.resumer.resumed["tok"]["detail"] == {
        "connectionId": "conn-1", "connectionStatus": "Linked", "outcome": "linked",
        "reason": None,
    }  # fmt: skip
    stored = world.store.get(webhook_id)
    assert stored.status is EventStatus.APPLIED
    assert stored.outcome["effect"] == "connection"
    assert stored.company_id == "smb-1"


def test_a_signal_before_its_wait_is_kept_for_the_wait(world):
    world.company()
    failed = connection("PendingAuth")
    failed["connection"]["dataConnectionErrors"] = [
        {"statusCode": "401", "errorMessage": "Expired", "erroredOnUtc": "2026-11-24T10:00:00Z"},
        {"statusCode": "403", "statusText": "User cancelled",
         "errorMessage": "User cancelled linking", "erroredOnUtc": "2026-11-25T10:00:00Z"},
    ]  # fmt: skip
    world.process(world.receive("connection.failed", failed))
    signal = world.record().signals[WaitKind.AUTHORIZATION]
    assert signal.detail["outcome"] == "failed"
    assert signal.detail["reason"] == "User cancelled linking"
    assert world.resumer.resumed == {}


def test_the_same_webhook_twice_is_applied_once(world):
    world.company(status=CompanyStatus.READY, connection_id="conn-1")
    webhook_id = world.receive("connection.disconnected", connection("Deauthorized"))
    assert world.process(webhook_id) is not None
    assert world.process(webhook_id) is None
    assert world.record().status is CompanyStatus.NEEDS_RELINK
    (published,) = world.publisher.published
    assert isinstance(published, events.CompanyNeedsRelink)
    assert published.event_id == webhook_id
    assert published.reason == "connection.disconnected"


def test_losing_the_connection_before_ready_only_records_the_status(world):
    world.company(status=CompanyStatus.LINKED, connection_id="conn-1")
    world.process(world.receive("connection.deleted", connection("Unlinked")))
    assert world.record().status is CompanyStatus.LINKED
    assert world.record().connection_status == "Unlinked"
    assert world.publisher.published == []


def test_an_event_about_another_connection_leaves_the_company_alone(world):
    world.company(connection_id="conn-new", connection_status="Linked")
    world.process(world.receive("connection.deleted", connection("Unlinked", "conn-old")))
    assert world.record().connection_status == "Linked"


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_connection_events_in_any_order_converge(world, order):
    world.company(status=CompanyStatus.READY, connection_id="conn-1")
    sequence = [
        ("connection.disconnected", "Deauthorized", T0),
        ("connection.reconnected", "Linked", T0 + timedelta(minutes=1)),
        ("connection.created", "PendingAuth", T0 - timedelta(days=1)),
    ]
    ids = [world.receive(t, connection(s), at=at) for t, s, at in sequence]
    for index in order:
        world.process(ids[index])
    record = world.record()
    assert record.connection_status == "Linked"  # the newest event's
    assert record.connection_event_at == T0 + timedelta(minutes=1)
    assert record.status is CompanyStatus.READY  # the newest event says it works again


# --- reads, writes, rate limits ---------------------------------------------------------------


def test_initial_read_records_each_data_type_and_signals_the_wait(world):
    world.company(status=CompanyStatus.LINKED)
    payload = read("bills", "suppliers")
    payload["dataTypes"][1]["status"] = "AuthError"
    world.process(world.receive("read.completed.initial", payload))
    record = world.record()
    assert record.data_types == {"bills": "Complete", "suppliers": "AuthError"}
    signal = record.signals[WaitKind.INITIAL_READ]
    assert signal.detail == {
        "connectionId": "conn-1", "dataTypes": {"bills": "Complete", "suppliers": "AuthError"}
    }  # fmt: skip


def test_read_completed_publishes_company_data_read(world):
    world.company(status=CompanyStatus.READY)
    webhook_id = world.receive("read.completed", read("bills", modified=True), at=T0)
    world.process(webhook_id)
    (published,) = world.publisher.published
    assert isinstance(published, events.CompanyDataRead)
    assert published.detail()["dataTypes"] == [
        {"dataType": "bills", "status": "Complete", "recordsModified": True}
    ]
    assert world.record().last_read_at == T0


@pytest.mark.parametrize("reverse", [False, True])
def test_reads_in_any_order_keep_the_newest_status_per_data_type(world, reverse):
    world.company(status=CompanyStatus.READY)
    reads = [
        world.receive("read.completed", read("bills", status="FetchError"), at=T0),
        world.receive("read.completed", read("suppliers"), at=T0 + timedelta(hours=1)),
        world.receive("read.completed", read("bills"), at=T0 + timedelta(minutes=30)),
    ]
    for webhook_id in reversed(reads) if reverse else reads:
        world.process(webhook_id)
    assert world.record().data_types == {"bills": "Complete", "suppliers": "Complete"}
    assert world.record().last_read_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("event_type", "payload", "expected"),
    [
        ("bills.write.successful", write(), events.BillWriteSucceeded),
        ("bill.write.unsuccessful", write("Failed", None), events.BillWriteFailed),
        ("billPayments.write.successful", write(), events.BillPaymentWriteSucceeded),
        ("billPayments.write.unsuccessful", write("TimedOut", None), events.BillPaymentWriteFailed),
        ("suppliers.write.successful", write(), events.SupplierWriteSucceeded),
        ("supplier.write.unsuccessful", write("Failed"), events.SupplierWriteFailed),
    ],
)
def test_write_outcomes_are_published(world, event_type, payload, expected):
    world.company(status=CompanyStatus.READY)
    webhook_id = world.receive(event_type, payload)
    world.process(webhook_id)
    (published,) = world.publisher.published
    assert type(published) is expected
    assert (published.push_id, published.status) == ("push-1", payload["status"])
    assert world.store.get(webhook_id).outcome["facts"]["pushId"] == "push-1"


def test_rate_limit_reached_holds_and_reset_releases_the_throttle(world):
    expiry = T0 + timedelta(hours=12)
    payload = {"dailyQuota": 1000, "quotaRemaining": 0, "expiryDate": expiry.isoformat()}
    world.process(world.receive("client.rateLimit.reached", payload, at=T0))
    world.process(world.receive("client.rateLimit.reset", {**payload, "quotaRemaining": 1000},
                                at=T0 + timedelta(hours=12)))  # fmt: skip
    (hold, held), (release, reset_at) = world.throttle.calls
    assert (hold, held.until, held.set_at, held.reason) == (
        "hold",
        expiry,
        T0,
        "client.rateLimit.reached",
    )
    assert (release, reset_at) == ("release", T0 + timedelta(hours=12))


def test_unknown_companies_and_event_types_are_kept_with_no_effect(world):
    unknown_company = world.receive("read.completed", read("bills"), tagged=False)
    unknown_type = world.receive("invoices.write.successful", {"whatever": True})
    assert world.process(unknown_company).effect == "unknownCompany"
    assert world.process(unknown_type).effect == "ignored"
    assert world.publisher.published == []
    assert world.store.get(unknown_type).status is EventStatus.APPLIED


def test_without_the_tag_the_company_is_found_by_its_codat_id(world):
    world.company(status=CompanyStatus.READY)
    world.process(world.receive("read.completed", read("bills"), tagged=False))
    assert len(world.publisher.published) == 1


def test_unknown_enum_values_are_kept_as_sent(world):
    world.company(status=CompanyStatus.LINKED)
    world.process(world.receive("read.completed.initial", read("bills", status="SomethingNew")))
    assert world.record().data_types == {"bills": "SomethingNew"}


# --- failures --------------------------------------------------------------------------------


def test_a_failed_effect_releases_the_claim_and_the_retry_applies_it(world):
    world.company(status=CompanyStatus.READY)
    webhook_id = world.receive("read.completed", read("bills"))
    world.publisher.fail = True
    with pytest.raises(RuntimeError, match="EventBridge refused"):
        world.process(webhook_id)
    failed = world.store.get(webhook_id)
    assert failed.status is EventStatus.RECEIVED
    assert failed.lease_until is None
    assert "EventBridge refused" in failed.last_error
    world.publisher.fail = False
    assert world.process(webhook_id).effect == "read"
    assert len(world.publisher.published) == 1
    assert world.store.get(webhook_id).attempts == 2


def test_a_live_claim_makes_a_concurrent_duplicate_back_off(world):
    world.company()
    webhook_id = world.receive("connection.connected", connection())
    claim = world.store.claim(webhook_id, datetime.now(UTC), LEASE)  # another processor's
    assert claim.result.value == "CLAIMED"
    assert world.process(webhook_id) is None  # BUSY: acknowledged, the holder applies it
    assert world.record().connection_status is None


def test_the_handler_reports_only_the_failed_records(world):
    world.company(status=CompanyStatus.LINKED)
    good = world.receive("connection.connected", connection())
    broken = connection()
    del broken["connection"]["status"]  # a field the project depends on
    poisoned = world.receive("connection.connected", broken)
    deps = processor.ProcessorDependencies(world.store, world.effects)
    batch = {
        "Records": [
            {"messageId": "m1", "body": json.dumps({"webhookId": poisoned})},
            {"messageId": "m2", "body": json.dumps({"webhookId": good})},
            {"messageId": "m3", "body": "not json"},
        ]
    }
    answer = processor.handler(batch, LambdaContext("processor", remaining_ms=25_000), deps)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert world.store.get(good).status is EventStatus.APPLIED
    assert world.store.get(poisoned).status is EventStatus.RECEIVED
    assert "status" in world.store.get(poisoned).last_error


def test_a_payment_write_is_attached_to_the_payment_awaiting_codats_answer_once(world):
    # Given a payment whose attempt got a stored 500 (billpay.payments: UNKNOWN, bill held)
    from billpay.payments.models import PaymentStatus

    from .test_payments_codat_writes import unknown_after_a_stored_500
    from .test_payments_workflow import World as PaymentsWorld

    payments = PaymentsWorld()
    unknown_after_a_stored_500(payments)
    effects = logic.Effects(
        world.companies, world.resumer, world.publisher, world.throttle,
        payment_writes=logic.PaymentWrites(payments.payments, payments.flow.policy),
    )  # fmt: skip
    world.effects = effects
    world.company(status=CompanyStatus.READY)
    sent = payments.clock().isoformat()
    payload = {**write(record_id="codat-pay-9"), "requestedOnDate": sent, "completedOnDate": sent}
    # When Codat's webhook is processed, again (the same id), and delivered again (a new id)
    first = world.receive("billPayments.write.successful", payload)
    outcome = world.process(first)
    assert world.process(first) is None
    again = world.process(world.receive("billPayments.write.successful", payload))
    # Then it is attached once, the payment's status untouched, and still published
    assert outcome.facts["payment"] == {
        "paymentId": "pay-1", "attached": True,
        "attribution": "the only payment awaiting Codat's answer",
    }  # fmt: skip
    assert again.facts["payment"]["attribution"] == "already recorded"
    record = payments.record()
    assert record.status is PaymentStatus.UNKNOWN
    assert [(w.write_id, w.record_id, w.webhook_id) for w in record.codat_writes] == [
        ("push-1", "codat-pay-9", first)
    ]
    assert [type(e) for e in world.publisher.published] == [events.BillPaymentWriteSucceeded] * 2
