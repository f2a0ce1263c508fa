"""The ingress rules (billpay.webhooks.intake) and the Lambda handler around them, with fakes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from billpay.webhooks import ingress, intake
from billpay.webhooks.signature import secret_key, sign
from billpay.webhooks.signing_secret import SecretUnavailable
from billpay.webhooks.store import EventStatus, StoredWebhook

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


class Keys:
    def __init__(self, keys=None, error=None):
        self._keys, self._error = keys or [secret_key(SECRET)], error

    def keys(self):
        if self._error:
            raise SecretUnavailable(self._error)
        return self._keys


class Store:
    def __init__(self, fail=False):
        self.items: dict[str, StoredWebhook] = {}
        self.fail = fail

    def add(self, event):
        if self.fail:
            raise RuntimeError("DynamoDB is throttling")
        if event.webhook_id in self.items:
            return self.items[event.webhook_id]
        self.items[event.webhook_id] = event
        return None


class Queue:
    def __init__(self, fail=False):
        self.sent: list[str] = []
        self.fail = fail

    def send(self, webhook_id):
        if self.fail:
            raise RuntimeError("SQS is down")
        self.sent.append(webhook_id)


def envelope(event_type="read.completed", **payload):
    return {
        "id": "evt-1",
        "eventType": event_type,
        "generatedDate": "2026-11-25T09:59:00Z",
        "payload": payload
        or {"referenceCompany": {"id": "codat-1", "tags": {"billpayCompanyId": "smb-1"}}},
    }


def signed(body: bytes, webhook_id="msg_1", at=NOW):
    ts = int(at.timestamp())
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + sign(secret_key(SECRET), webhook_id, ts, body),
    }


def receive(headers, body, store=None, queue=None, keys=None):
    return intake.receive(
        headers, body, signing=keys or Keys(), store=store or Store(), queue=queue or Queue(),
        now=NOW,
    )  # fmt: skip


def test_a_signed_event_is_stored_then_queued_then_acknowledged():
    store, queue = Store(), Queue()
    body = json.dumps(envelope()).encode()
    answer = receive(signed(body), body, store, queue)
    assert answer.status == 200
    assert answer.body == {"webhookId": "msg_1", "status": "accepted"}
    assert answer.metrics == (intake.Metric.ACCEPTED,)
    stored = store.items["msg_1"]
    assert stored.body == body.decode()
    assert (stored.company_id, stored.codat_company_id) == ("smb-1", "codat-1")
    assert stored.event_type == "read.completed"
    assert queue.sent == ["msg_1"]


def test_an_event_type_the_project_ignores_is_accepted_too():
    body = json.dumps(envelope("invoices.write.successful", anything=1)).encode()
    assert receive(signed(body), body).status == 200


def test_a_redelivery_is_sent_again_unless_already_applied():
    store, queue = Store(), Queue()
    body = json.dumps(envelope()).encode()
    receive(signed(body), body, store, queue)
    again = receive(signed(body), body, store, queue)
    assert (again.status, again.body["status"]) == (200, "duplicate")
    assert queue.sent == ["msg_1", "msg_1"]  # the processor applies it once
    store.items["msg_1"] = StoredWebhook(
        **{**store.items["msg_1"].__dict__, "status": EventStatus.APPLIED}
    )
    receive(signed(body), body, store, queue)
    assert queue.sent == ["msg_1", "msg_1"]


@pytest.mark.parametrize(
    ("store", "queue"), [(Store(fail=True), Queue()), (Store(), Queue(fail=True))]
)
def test_storage_or_queue_failure_is_a_503_so_codat_retries(store, queue):
    body = json.dumps(envelope()).encode()
    answer = receive(signed(body), body, store, queue)
    assert answer.status == 503
    assert answer.metrics == (intake.Metric.FAILED,)


def _bad_requests():
    good = json.dumps(envelope()).encode()
    not_json = b"not json"
    no_payload = json.dumps({**envelope(), "payload": None}).encode()
    bad_date = json.dumps({**envelope(), "generatedDate": "yesterday"}).encode()
    array = b"[1, 2]"
    deep = b"[" * 100_000 + b"]" * 100_000  # deeper than Python's parser goes: RecursionError
    big = json.dumps({**envelope(), "pad": "x" * intake.MAX_BODY_BYTES}).encode()
    return [
        ("wrong content type", {**signed(good), "content-type": "text/plain"}, good, 415),
        ("no content type", {k: v for k, v in signed(good).items() if k != "content-type"}, good, 415),
        ("oversized", signed(big), big, 413),
        ("unsigned", {"content-type": "application/json"}, good, 401),
        ("signed another body", signed(good), good.replace(b"smb-1", b"smb-2"), 401),
        ("stale", signed(good, at=NOW.replace(minute=50, hour=9)), good, 401),
        ("from the future", signed(good, at=NOW.replace(minute=6)), good, 401),
        ("not json", signed(not_json), not_json, 400),
        ("nested too deep", signed(deep), deep, 400),
        ("not an object", signed(array), array, 400),
        ("no payload", signed(no_payload), no_payload, 400),
        ("bad generatedDate", signed(bad_date), bad_date, 400),
    ]  # fmt: skip


@pytest.mark.parametrize(("case", "headers", "body", "status"), _bad_requests())
def test_bad_input_is_a_short_4xx_and_nothing_is_stored(case, headers, body, status):
    store, queue = Store(), Queue()
    answer = receive(headers, body, store, queue)
    assert answer.status == status, case
    assert set(answer.body) == {"error"}
    assert store.items == {}
    assert queue.sent == []
    # Counted: signature failures apart (their own alarm), the rest as invalid (the 4xx rate)
    counted = intake.Metric.UNAUTHORIZED if status == 401 else intake.Metric.INVALID
    assert answer.metrics == (counted,), case


def test_without_a_usable_secret_every_webhook_is_refused_and_counted():
    body = json.dumps(envelope()).encode()
    answer = receive(signed(body), body, keys=Keys(error="not set"))
    assert answer.status == 401
    assert intake.Metric.SECRET_UNAVAILABLE in answer.metrics


def test_the_handler_verifies_the_bytes_api_gateway_passes_text_or_base64(capsys):
    store, queue = Store(), Queue()
    deps = ingress.IngressDependencies(
        stage="test", signing=Keys(), store=store, queue=queue, clock=lambda: NOW
    )
    body = json.dumps(envelope(), ensure_ascii=False).replace("smb-1", "smb-ü").encode()
    headers = {k.title(): v for k, v in signed(body).items()}  # header case does not matter
    as_text = {"headers": headers, "body": body.decode(), "isBase64Encoded": False}
    answer = ingress.handler(as_text, None, deps)
    assert answer["statusCode"] == 200, answer
    as_base64 = {
        "multiValueHeaders": {k: [v] for k, v in signed(body, "msg_2").items()},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    assert ingress.handler(as_base64, None, deps)["statusCode"] == 200
    assert queue.sent == ["msg_1", "msg_2"]
    # One EMF line per answer, counting the outcome under the stage dimension.
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["WebhookAccepted"] for m in metrics] == [1, 1]
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BillPay"


def test_a_stored_event_outlives_codats_two_week_replay_window():
    """The dedupe record must still be there when an operator replays from Codat's portal (up to
    two weeks back): the table's TTL (expiresAt) is at least 15 days after receipt."""
    body = json.dumps(envelope()).encode()
    store = Store()
    receive(signed(body), body, store)
    item = store.items["msg_1"].to_item()
    assert item["expiresAt"] >= (NOW + timedelta(days=15)).timestamp()
