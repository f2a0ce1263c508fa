"""The replay window and the DLQ redrive, on moto: which stored events a window selects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billpay.webhooks.queue import SqsWebhookQueue
from billpay.webhooks.store import RETENTION, DynamoWebhookStore, EventStatus, StoredWebhook
from ops import webhooks

T0 = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)


@pytest.fixture
def store(aws, webhook_events_table):
    store = DynamoWebhookStore(aws("dynamodb"), webhook_events_table)
    # Every 30 minutes for 4 hours across midnight, alternating two companies.
    for n in range(8):
        store.add(
            StoredWebhook(
                webhook_id=f"msg_{n}", event_type="read.completed",
                generated_date=(T0 + timedelta(minutes=30 * n)).isoformat(),
                received_at=T0 + timedelta(minutes=30 * n), body="{}",
                company_id="smb-a" if n % 2 == 0 else "smb-b",
            )
        )  # fmt: skip
    return store


@pytest.fixture(autouse=True)
def _now_after_the_events(monkeypatch):
    # The store skips expired items against the real clock; these fixed-date items are 30 days
    # old soon, so keep them inside their retention by giving them an expiry far ahead.
    monkeypatch.setattr("billpay.webhooks.store.RETENTION", RETENTION * 400)


def ids(events):
    return [e.webhook_id for e in events]


def test_a_window_is_half_open_and_crosses_midnight(store):
    chosen = webhooks.select(store, T0 + timedelta(minutes=30), T0 + timedelta(minutes=120))
    assert ids(chosen) == ["msg_1", "msg_2", "msg_3"]  # 23:30, 00:00, 00:30; not 01:00


def test_a_window_of_one_company(store):
    chosen = webhooks.select(store, T0, T0 + timedelta(hours=4), company_id="smb-b")
    assert ids(chosen) == ["msg_1", "msg_3", "msg_5", "msg_7"]


def test_an_empty_or_inverted_window(store):
    assert webhooks.select(store, T0 - timedelta(days=2), T0 - timedelta(days=1)) == []
    with pytest.raises(ValueError, match="after"):
        webhooks.select(store, T0, T0)


def test_expired_events_are_not_replayed(aws, webhook_events_table):
    store = DynamoWebhookStore(aws("dynamodb"), webhook_events_table)
    now = datetime.now(UTC)
    store.add(StoredWebhook("old", "read.completed", now.isoformat(), now, "{}", expires_at=1))
    assert webhooks.select(store, now - timedelta(minutes=1), now + timedelta(minutes=1)) == []


def test_replay_sends_every_chosen_id_and_counts_the_applied_ones(aws, store):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="webhooks")["QueueUrl"]
    store.claim("msg_0", T0, timedelta(seconds=30))
    store.complete("msg_0", {"effect": "read"}, "smb-a", T0)
    report = webhooks.replay(store, SqsWebhookQueue(sqs, url), T0, T0 + timedelta(hours=1))
    assert (report.sent, report.already_applied) == (2, 1)
    assert store.get("msg_0").status is EventStatus.APPLIED
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert sorted(bodies) == ['{"webhookId": "msg_0"}', '{"webhookId": "msg_1"}']
    dry = webhooks.replay(
        store, SqsWebhookQueue(sqs, url), T0, T0 + timedelta(hours=1), dry_run=True
    )
    assert dry.sent == 0


def test_the_redrive_moves_every_dead_letter_back(aws):
    sqs = aws("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    for n in range(13):
        sqs.send_message(QueueUrl=dlq, MessageBody=f'{{"webhookId": "msg_{n}"}}')
    assert webhooks.redrive_dead_letters(sqs, dlq, queue) == 13
    assert webhooks.redrive_dead_letters(sqs, dlq, queue) == 0
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "13"
