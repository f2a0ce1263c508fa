"""The delivery worker with an in-memory sender: retries on Codat's (compressed) schedule,
duplicates, out-of-order and late delivery, loopback-only targets, and a clean stop."""

import threading
import time

import httpx
import pytest
from standardwebhooks import Webhook as Verifier

from codat_emulator.config import CODAT_RETRY_SCHEDULE, DeliveryOptions, EmulatorConfig
from codat_emulator.store import Store
from codat_emulator.webhooks import WebhookDispatcher

URL = "http://127.0.0.1:9/hooks"


class FakeReceiver:
    """Answers with the queued status codes (then 200), records what it got, verifies it."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received = []
        self.lock = threading.Lock()
        self.secret = None

    def __call__(self, url, body, headers, timeout):
        with self.lock:
            if self.secret is not None:
                Verifier(self.secret).verify(body, dict(headers))
            self.received.append((url, body, dict(headers), time.monotonic()))
            status = self.statuses.pop(0) if self.statuses else 200
        if status == "timeout":
            raise httpx.ReadTimeout("slow")
        return status

    def event_types(self):
        import json

        return [json.loads(body)["eventType"] for _, body, _, _ in self.received]


def _setup(receiver, url=URL, event_types=("connection.created",), **options):
    store = Store()
    dispatcher = WebhookDispatcher(
        store, "http://127.0.0.1:1", DeliveryOptions(**options), sender=receiver
    )
    dispatcher.subscribe()
    consumer = store.create_webhook_consumer(url, list(event_types))
    receiver.secret = next(c.secret for c in store.webhook_consumers())
    company = store.create_company("Acme", "http://127.0.0.1:1")
    dispatcher.start()
    return store, dispatcher, company["id"], consumer


def test_retries_on_the_compressed_schedule_until_a_2xx():
    receiver = FakeReceiver([500, "timeout", 503])
    store, dispatcher, company_id, _ = _setup(receiver, time_scale=0.0005)
    try:
        store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
        assert dispatcher.wait_until_idle(5)
    finally:
        dispatcher.stop()
    (delivery,) = dispatcher.deliveries()
    assert delivery["state"] == "delivered"
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, None, 503, 200]
    assert "no response" in delivery["attempts"][1]["error"]
    # every retry carries the same webhook-id and a valid signature
    assert {h["webhook-id"] for _, _, h, _ in receiver.received} == {delivery["webhookId"]}
    gaps = [b[3] - a[3] for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert gaps[1] >= CODAT_RETRY_SCHEDULE[2] * 0.0005 * 0.9  # 5 min scaled to 0.15 s


def test_gives_up_after_the_last_attempt():
    receiver = FakeReceiver([500] * 10)
    store, dispatcher, company_id, _ = _setup(receiver, time_scale=0.0001, retry_schedule=(0, 1, 1))
    try:
        store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
        assert dispatcher.wait_until_idle(5)
    finally:
        dispatcher.stop()
    (delivery,) = dispatcher.deliveries()
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 3


def test_duplicate_sends_the_same_message_twice():
    receiver = FakeReceiver()
    store, dispatcher, company_id, _ = _setup(receiver, duplicate=True)
    try:
        store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
        assert dispatcher.wait_until_idle(5)
    finally:
        dispatcher.stop()
    ids = [h["webhook-id"] for _, _, h, _ in receiver.received]
    assert len(ids) == 2
    assert len(set(ids)) == 1
    assert [d["duplicate"] for d in dispatcher.deliveries()] == [False, True]


def test_out_of_order_swaps_consecutive_messages():
    receiver = FakeReceiver()
    store, dispatcher, company_id, _ = _setup(
        receiver, out_of_order=True, out_of_order_hold_seconds=0.2
    )
    try:
        first = store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
        second = store.create_connection(company_id, "qhyg", "http://127.0.0.1:1")
        third = store.create_connection(company_id, "fbrh", "http://127.0.0.1:1")
        assert dispatcher.wait_until_idle(5)
    finally:
        dispatcher.stop()
    import json

    order = [json.loads(body)["payload"]["connection"]["id"] for _, body, _, _ in receiver.received]
    # the second overtakes the first; the third, with no successor, goes after its hold time
    assert order == [second["id"], first["id"], third["id"]]


def test_late_delivery_waits():
    receiver = FakeReceiver()
    store, dispatcher, company_id, _ = _setup(receiver, delay_seconds=0.3)
    try:
        started = time.monotonic()
        store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
        assert dispatcher.wait_until_idle(5)
    finally:
        dispatcher.stop()
    assert receiver.received[0][3] - started >= 0.3


def test_only_subscribed_event_types_and_enabled_consumers_get_messages():
    receiver = FakeReceiver()
    store, dispatcher, company_id, _ = _setup(receiver, event_types=("connection.connected",))
    try:
        connection = store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
        store.set_connection_status(company_id, connection["id"], "Linked")
        assert dispatcher.wait_until_idle(5)
    finally:
        dispatcher.stop()
    assert receiver.event_types() == ["connection.connected"]
    assert len(dispatcher.events()) == 2  # both were generated, one was wanted


def test_non_loopback_targets_are_refused_without_posting():
    receiver = FakeReceiver()
    store, dispatcher, company_id, _ = _setup(receiver, url="https://example.com/hooks")
    try:
        store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
        assert dispatcher.wait_until_idle(5)
    finally:
        dispatcher.stop()
    assert receiver.received == []
    (delivery,) = dispatcher.deliveries()
    assert delivery["state"] == "failed"
    assert "loopback" in delivery["attempts"][0]["error"]


def test_stop_reports_pending_deliveries_and_does_not_hang():
    receiver = FakeReceiver([500])
    store, dispatcher, company_id, _ = _setup(receiver, time_scale=1.0)
    store.create_connection(company_id, "gbol", "http://127.0.0.1:1")
    deadline = time.monotonic() + 5
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    pending = dispatcher.stop()
    assert time.monotonic() - started < 2
    assert not dispatcher.running
    assert [p["state"] for p in pending] == ["abandoned"]
    assert pending[0]["attempts"][0]["statusCode"] == 500


def test_bad_options_change_nothing():
    dispatcher = WebhookDispatcher(Store(), "http://127.0.0.1:1")
    with pytest.raises(ValueError, match="time_scale"):
        dispatcher.update_options({"time_scale": -1})
    with pytest.raises(ValueError, match="bogus"):
        dispatcher.update_options({"bogus": True})
    assert dispatcher.options.time_scale == 1.0
    assert dispatcher.update_options({"duplicate": True}).duplicate is True


def test_options_from_environment():
    config, _ = EmulatorConfig.from_env(
        {"CODAT_EMULATOR_WEBHOOK_TIME_SCALE": "0.01", "CODAT_EMULATOR_WEBHOOK_DUPLICATE": "true"}
    )
    options = config.webhooks
    assert options.time_scale == 0.01
    assert options.duplicate is True
    assert options.out_of_order is False
