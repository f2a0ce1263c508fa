"""Re-driving webhooks: a replay of stored events by time window or company, and the DLQ redrive.

Both only send webhook ids to the processing queue; the processor applies an event that is not
APPLIED yet and does nothing for one that is, so either can be run any number of times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billpay.webhooks.queue import SqsWebhookQueue
from billpay.webhooks.store import DynamoWebhookStore, EventStatus, IndexedWebhook


@dataclass(frozen=True)
class ReplayReport:
    sent: int
    # Of those, already applied (the processor will leave them alone).
    already_applied: int
    by_event_type: dict[str, int]


def select(
    store: DynamoWebhookStore, since: datetime, until: datetime, company_id: str | None = None
) -> list[IndexedWebhook]:
    """Stored events received in [since, until), of one company if given, oldest first."""
    if until <= since:
        raise ValueError("--until must be after --since")
    if company_id:
        return list(store.received_for_company(company_id, since, until))
    return list(store.received_between(since, until))


def replay(
    store: DynamoWebhookStore,
    queue: SqsWebhookQueue,
    since: datetime,
    until: datetime,
    company_id: str | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    chosen = select(store, since, until, company_id)
    by_type: dict[str, int] = {}
    for event in chosen:
        by_type[event.event_type] = by_type.get(event.event_type, 0) + 1
        if not dry_run:
            queue.send(event.webhook_id)
    applied = sum(e.status is EventStatus.APPLIED for e in chosen)
    return ReplayReport(sent=0 if dry_run else len(chosen), already_applied=applied,
                        by_event_type=by_type)  # fmt: skip


def redrive_dead_letters(sqs: Any, dead_letter_url: str, queue_url: str) -> int:
    """Move every message from the DLQ back to the processing queue; returns how many moved.

    Each message is sent before it is deleted, so a failure half-way loses nothing (a message
    may then be in both queues: the processor applies it once).
    """
    moved = 0
    while True:
        batch = sqs.receive_message(
            QueueUrl=dead_letter_url, MaxNumberOfMessages=10, VisibilityTimeout=60
        ).get("Messages", [])
        if not batch:
            return moved
        for message in batch:
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
