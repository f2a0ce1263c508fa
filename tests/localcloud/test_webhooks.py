"""Codat webhooks end to end on the local cloud: the emulator signs and delivers real webhooks to
the local webhook API; the ingress stores them; Lambda's poller (emulated) feeds the processor."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from billpay.codat.throttle import DynamoThrottleStore
from billpay.companies.models import CompanyRecord, CompanyStatus
from billpay.companies.repository import DynamoCompanyRepository
from billpay.webhooks.queue import SqsWebhookQueue
from billpay.webhooks.signature import secret_key, sign
from billpay.webhooks.store import DynamoWebhookStore
from codat_emulator.webhooks import dispatcher_for
from ops import webhooks as ops_webhooks


class World:
    def __init__(self, product):
        self.product, self.cloud, self.emulator = product, product.cloud, product.emulator
        self.dynamodb = self.cloud.client("dynamodb")
        self.companies = DynamoCompanyRepository(
            self.dynamodb, self.cloud.output("CompaniesTableName")
        )
        self.events_table = self.cloud.output("WebhookEventsTableName")
        self.store = DynamoWebhookStore(self.dynamodb, self.events_table)
        self.throttle = DynamoThrottleStore(self.dynamodb, self.cloud.output("CompaniesTableName"))
        self.http = self.emulator.http()
        # Capture what the product publishes: a rule on the integration bus into a queue.
        sqs, events = self.cloud.client("sqs"), self.cloud.client("events")
        self.capture_url = sqs.create_queue(QueueName="published")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(
            QueueUrl=self.capture_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        bus = self.cloud.output("EventBusName")
        events.put_rule(
            Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["billpay"]})
        )
        events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": capture_arn}])
        self.published: list[dict] = []

    def options(self, **changes):
        self.http.patch("/_emulator/webhooks/options", json=changes).raise_for_status()

    def settle(self):
        assert dispatcher_for(self.emulator.store).wait_until_idle(60)
        self.cloud.wait_for_queues(60)
        sqs = self.cloud.client("sqs")
        while batch := sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                self.published.append(json.loads(message["Body"]))
                sqs.delete_message(
                    QueueUrl=self.capture_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def onboarded(self, status=CompanyStatus.PENDING_LINK):
        """A product company and its tagged Codat company with a PendingAuth connection."""
        company_id = f"smb-{uuid.uuid4().hex[:8]}"
        codat = self.http.post(
            "/companies", json={"name": "Acme Ltd", "tags": {"billpayCompanyId": company_id}}
        ).json()
        connection = self.http.post(
            f"/companies/{codat['id']}/connections", json={"platformKey": "gbol"}
        ).json()
        now = datetime.now(UTC)
        assert self.companies.create(
            CompanyRecord(
                company_id=company_id, name="Acme Ltd", status=status,
                onboarding_execution_arn=f"arn:aws:states:us-east-1:1:execution:o:{company_id}",
                created_at=now, updated_at=now, codat_company_id=codat["id"],
                connection_id=connection["id"],
            )
        )  # fmt: skip
        return company_id, codat["id"], connection["id"]

    def link(self, codat_id, connection_id):
        self.http.post(
            f"/_emulator/link/{codat_id}/connections/{connection_id}",
            json={"action": "authorize", "size": 3},
        ).raise_for_status()

    def control(self, codat_id, connection_id, action, body=None):
        path = f"/_emulator/companies/{codat_id}/connections/{connection_id}/{action}"
        self.http.post(path, json=body or {}).raise_for_status()

    def record(self, company_id):
        return self.companies.get(company_id)

    def events_of(self, company_id, detail_type=None):
        return [
            e for e in self.published
            if e["detail"]["companyId"] == company_id
            and (detail_type is None or e["detail-type"] == detail_type)
        ]  # fmt: skip

    def stored_count(self):
        return self.dynamodb.scan(TableName=self.events_table, Select="COUNT")["Count"]

    def set_status(self, company_id, status):
        record = self.record(company_id)
        assert self.companies.replace(
            record.model_copy(update={"status": status, "version": record.version + 1}),
            record.version,
        )


@pytest.fixture(scope="module")
def world(product_with_codat):
    world = World(product_with_codat)
    yield world
    world.http.close()


@pytest.fixture(autouse=True)
def _default_delivery(world):
    world.options(duplicate=False, out_of_order=False, delay_seconds=0, time_scale=0.001)
    yield
    world.settle()


def test_each_event_type_has_its_effect(world):
    company_id, codat_id, connection_id = world.onboarded()
    # connection.connected and read.completed.initial
    world.link(codat_id, connection_id)
    world.settle()
    record = world.record(company_id)
    assert record.connection_status == "Linked"
    assert record.data_types["bills"] == "Complete"
    assert record.signals.keys() == {"authorization", "initialRead"}
    assert record.signals["authorization"].detail["outcome"] == "linked"
    # read.completed -> CompanyDataRead
    world.set_status(company_id, CompanyStatus.READY)
    world.control(codat_id, connection_id, "read", {"dataTypes": ["bills"]})
    # a write's late outcome -> BillWriteFailed; a supplier's -> SupplierWriteSucceeded (the
    # consumer ops.codat_setup registers is subscribed to both)
    world.control(codat_id, connection_id, "write-results",
                  {"dataType": "bills", "type": "Create", "successful": False})  # fmt: skip
    world.settle()
    world.control(codat_id, connection_id, "write-results",
                  {"dataType": "suppliers", "type": "Create", "successful": True})  # fmt: skip
    world.settle()
    assert [e["detail-type"] for e in world.events_of(company_id)] == [
        "CompanyDataRead", "BillWriteFailed", "SupplierWriteSucceeded"
    ]  # fmt: skip
    # deauthorized -> NEEDS_RELINK and CompanyNeedsRelink
    world.control(codat_id, connection_id, "deauthorize")
    world.settle()
    assert world.record(company_id).status is CompanyStatus.NEEDS_RELINK
    (relink,) = world.events_of(company_id, "CompanyNeedsRelink")
    assert relink["detail"]["connectionStatus"] == "Deauthorized"
    assert relink["detail"]["schemaVersion"] == 1
    # client.rateLimit.reached / reset -> the throttle
    world.http.post("/_emulator/quota", json={"action": "exhaust"}).raise_for_status()
    world.settle()
    assert world.throttle.current() is not None
    world.http.post("/_emulator/quota", json={"action": "reset"}).raise_for_status()
    world.settle()
    assert world.throttle.current() is None


def test_a_cancelled_link_is_a_failed_authorization_with_codats_reason(world):
    company_id, codat_id, connection_id = world.onboarded()
    world.http.post(
        f"/_emulator/link/{codat_id}/connections/{connection_id}", json={"action": "cancel"}
    ).raise_for_status()
    world.settle()
    signal = world.record(company_id).signals["authorization"]
    assert signal.event_type == "connection.failed"
    assert signal.detail["outcome"] == "failed"
    assert signal.detail["reason"] == "User cancelled"  # the error's errorMessage


def test_a_reconnected_connection_is_ready_again_and_a_deleted_one_needs_a_relink(world):
    company_id, codat_id, connection_id = world.onboarded()
    world.link(codat_id, connection_id)
    world.settle()
    world.set_status(company_id, CompanyStatus.READY)
    world.control(codat_id, connection_id, "deauthorize")  # connection.disconnected
    world.settle()
    assert world.record(company_id).status is CompanyStatus.NEEDS_RELINK
    # connection.reconnected: the SMB authorizes the same connection again
    world.link(codat_id, connection_id)
    world.settle()
    record = world.record(company_id)
    assert (record.status, record.connection_status) == (CompanyStatus.READY, "Linked")
    assert record.signals["authorization"].event_type == "connection.reconnected"
    # connection.deleted: the connection is gone in Codat
    world.http.delete(f"/companies/{codat_id}/connections/{connection_id}").raise_for_status()
    world.settle()
    assert world.record(company_id).status is CompanyStatus.NEEDS_RELINK
    relinks = world.events_of(company_id, "CompanyNeedsRelink")
    assert [e["detail"]["reason"] for e in relinks] == [
        "connection.disconnected", "connection.deleted"
    ]  # fmt: skip


def test_duplicates_are_applied_once(world):
    world.options(duplicate=True, duplicate_after_seconds=0.01)
    company_id, codat_id, connection_id = world.onboarded(CompanyStatus.READY)
    for _ in range(3):
        world.control(codat_id, connection_id, "write-results",
                      {"dataType": "bills", "type": "Create", "successful": True,
                       "recordId": "bill-1"})  # fmt: skip
    world.settle()
    deliveries = [
        d for d in dispatcher_for(world.emulator.store).deliveries()
        if d["companyId"] == codat_id and d["eventType"] == "bills.write.successful"
    ]  # fmt: skip
    assert len(deliveries) == 6  # every message twice
    assert {d["state"] for d in deliveries} == {"delivered"}
    published = world.events_of(company_id, "BillWriteSucceeded")
    assert len(published) == 3  # once per webhook
    assert len({e["detail"]["eventId"] for e in published}) == 3


def test_concurrent_duplicates_are_applied_once(world):
    company_id, codat_id, connection_id = world.onboarded(CompanyStatus.READY)
    body = json.dumps({
        "id": str(uuid.uuid4()), "eventType": "bills.write.successful",
        "generatedDate": datetime.now(UTC).isoformat(),
        "payload": {"id": "push-x", "type": "Create", "status": "Success",
                    "referenceCompany": {"id": codat_id, "tags": {"billpayCompanyId": company_id}},
                    "connectionId": connection_id, "record": {"id": "bill-x"}},
    }).encode()  # fmt: skip
    secret = world.cloud.client("secretsmanager").get_secret_value(
        SecretId=world.cloud.output("CodatWebhookSecretArn")
    )["SecretString"]
    webhook_id, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "content-type": "application/json", "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + sign(secret_key(secret), webhook_id, ts, body),
    }  # fmt: skip
    answers: list[int] = []
    start = threading.Barrier(4)

    def post():
        start.wait()
        answers.append(httpx.post(world.product.webhook_url, content=body, headers=headers,
                                  timeout=30).status_code)  # fmt: skip

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    world.settle()
    assert answers == [200] * 4
    assert len(world.events_of(company_id, "BillWriteSucceeded")) == 1
    assert world.store.get(webhook_id).status.value == "APPLIED"


def test_reordered_delivery_converges_to_the_in_order_state(world):
    def journey(out_of_order):
        world.options(out_of_order=out_of_order, out_of_order_hold_seconds=0.5)
        company_id, codat_id, connection_id = world.onboarded()
        world.link(codat_id, connection_id)
        world.control(codat_id, connection_id, "read", {"dataTypes": ["bills", "suppliers"]})
        world.control(codat_id, connection_id, "deauthorize")
        world.settle()
        record = world.record(company_id)
        return (record.connection_status, record.data_types, sorted(record.signals),
                record.signals["authorization"].detail["outcome"])  # fmt: skip

    in_order = journey(out_of_order=False)
    reordered = journey(out_of_order=True)
    assert reordered == in_order
    assert in_order[0] == "Deauthorized"


def _signed(world, body: bytes, content_type="application/json", sign_body=None):
    secret = world.cloud.client("secretsmanager").get_secret_value(
        SecretId=world.cloud.output("CodatWebhookSecretArn")
    )["SecretString"]
    webhook_id, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
    signature = sign(secret_key(secret), webhook_id, ts, sign_body or body)
    return {"content-type": content_type, "webhook-id": webhook_id,
            "webhook-timestamp": str(ts), "webhook-signature": f"v1,{signature}"}  # fmt: skip


def test_every_bad_input_is_rejected_with_nothing_stored(world):
    good = json.dumps({"id": "e", "eventType": "read.completed",
                       "generatedDate": "2026-11-25T10:00:00Z", "payload": {}}).encode()  # fmt: skip
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [
        ("not JSON", b"{nope", _signed(world, b"{nope"), 400),
        ("nested too deep", deep, _signed(world, deep), 400),  # RecursionError, not a 502
        ("nested too deep, as text", deep, _signed(world, deep, content_type="text/plain"), 415),
        ("not an envelope", b'{"hello": 1}', _signed(world, b'{"hello": 1}'), 400),
        ("oversized", b"x" * 300_000, _signed(world, b"x" * 300_000), 413),
        ("wrong content type", good, _signed(world, good, content_type="text/plain"), 415),
        ("signed another body", good, _signed(world, good, sign_body=good + b" "), 401),
        ("unsigned", good, {"content-type": "application/json"}, 401),
    ]
    before = world.stored_count()
    for case, body, headers, status in cases:
        answer = httpx.post(world.product.webhook_url, content=body, headers=headers, timeout=30)
        assert answer.status_code == status, case
        assert "error" in answer.json(), case
    assert world.stored_count() == before


@contextlib.contextmanager
def _processor_environment(world, **changes):
    lambda_client = world.cloud.client("lambda")
    (name,) = [n for n in world.product.function_names() if "WebhookProcessor" in n]
    config = lambda_client.get_function_configuration(FunctionName=name)
    original = config["Environment"]["Variables"]
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {**original, **changes}}
    )
    try:
        yield
    finally:
        lambda_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": original}
        )


def test_a_processing_failure_ends_in_the_dlq_and_the_redrive_recovers_it(world):
    company_id, codat_id, connection_id = world.onboarded(CompanyStatus.READY)
    sqs = world.cloud.client("sqs")
    dlq = world.cloud.output("WebhookDeadLetterQueueUrl")
    # A broken deploy: the processor publishes to a bus that does not exist.
    with _processor_environment(world, EVENT_BUS_NAME="no-such-bus"):
        world.control(codat_id, connection_id, "read", {"dataTypes": ["bills"]})
        world.settle()
        dead = sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )
        assert dead["Attributes"]["ApproximateNumberOfMessages"] == "1"
    assert world.events_of(company_id) == []
    window = (datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    (stored,) = [
        e for e in world.store.received_for_company(company_id, *window)
        if e.event_type == "read.completed"
    ]  # fmt: skip
    failed = world.store.get(stored.webhook_id)
    assert failed.status.value == "RECEIVED"
    assert failed.attempts == 5  # maxReceiveCount
    assert "no-such-bus" in failed.last_error
    # Fixed: the operator's redrive moves it back and it is applied.
    moved = ops_webhooks.redrive_dead_letters(sqs, dlq, world.cloud.output("WebhookQueueUrl"))
    assert moved == 1
    world.settle()
    assert [e["detail-type"] for e in world.events_of(company_id)] == ["CompanyDataRead"]
    assert world.store.get(stored.webhook_id).status.value == "APPLIED"


def test_replaying_a_window_changes_nothing_already_applied(world):
    started = datetime.now(UTC)
    company_id, codat_id, connection_id = world.onboarded()
    world.link(codat_id, connection_id)
    world.set_status(company_id, CompanyStatus.READY)
    world.control(codat_id, connection_id, "read", {"dataTypes": ["bills"]})
    world.settle()
    before = world.record(company_id)
    published = len(world.published)
    report = ops_webhooks.replay(
        world.store,
        SqsWebhookQueue(world.cloud.client("sqs"), world.cloud.output("WebhookQueueUrl")),
        started,
        datetime.now(UTC) + timedelta(seconds=1),
    )
    assert report.sent >= 4  # created, connected, read.completed.initial, read.completed
    assert report.already_applied == report.sent
    world.settle()
    assert world.record(company_id) == before  # same version: not even rewritten
    assert len(world.published) == published
