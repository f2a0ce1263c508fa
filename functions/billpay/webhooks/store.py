"""The webhook events table (DynamoDB): the only module that reads or writes it.

One item per verified webhook, keyed by its `webhook-id`. It is, at once:
- the dedupe record: the ingress stores an event once (conditional put), so a redelivery finds it;
- the processing state: a processor claims the event with a lease (conditional update), applies
  it, and marks it APPLIED; a duplicate or replayed delivery of an APPLIED event does nothing;
- the replay store: two indexes list events by day received and by company.
Items expire (TTL) after `RETENTION`, longer than Codat's two-week replay window. DynamoDB deletes
expired items up to two days late (the local cloud never does), so reads skip them themselves.

Standard library only (botocore's client is passed in): the ingress function imports this module
and must start fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from billpay.core.dynamo import from_dynamo as _from_dynamo
from billpay.core.dynamo import to_dynamo as _to_dynamo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BY_DAY_INDEX = "byDayReceived"
BY_COMPANY_INDEX = "byCompany"
# Longer than Codat's replay window (two weeks), so a replayed event still finds its record.
RETENTION = timedelta(days=30)


class EventStatus(StrEnum):
    RECEIVED = "RECEIVED"  # stored by the ingress; not applied yet (or its processing failed)
    APPLIED = "APPLIED"  # its effect is done (or it has none): never applied again


def iso(moment: datetime) -> str:
    """Fixed-width UTC, so that string order is time order (DynamoDB compares strings)."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class StoredWebhook:
    webhook_id: str
    event_type: str
    # Codat's generatedDate as sent, and when the ingress stored the event.
    generated_date: str
    received_at: datetime
    # The verified body, exactly as Codat sent it (UTF-8).
    body: str
    status: EventStatus = EventStatus.RECEIVED
    # The product's company id (from the Codat company's tag, or found by the processor).
    company_id: str | None = None
    codat_company_id: str | None = None
    attempts: int = 0
    lease_until: datetime | None = None
    last_error: str | None = None
    # What applying it did (effect name and its facts), once APPLIED.
    outcome: dict[str, Any] | None = None
    expires_at: int = 0

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "webhookId": self.webhook_id,
            "eventType": self.event_type,
            "generatedDate": self.generated_date,
            "receivedAt": iso(self.received_at),
            "receivedDay": iso(self.received_at)[:10],
            "body": self.body,
            "status": self.status.value,
            "attempts": self.attempts,
            "expiresAt": self.expires_at or int((self.received_at + RETENTION).timestamp()),
        }
        optional = {
            "companyId": self.company_id,
            "codatCompanyId": self.codat_company_id,
            "leaseUntil": iso(self.lease_until) if self.lease_until else None,
            "lastError": self.last_error,
            "outcome": self.outcome,
        }
        item.update({key: value for key, value in optional.items() if value is not None})
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredWebhook:
        lease = item.get("leaseUntil")
        return cls(
            webhook_id=item["webhookId"],
            event_type=item["eventType"],
            generated_date=item["generatedDate"],
            received_at=datetime.fromisoformat(item["receivedAt"]),
            body=item["body"],
            status=EventStatus(item["status"]),
            company_id=item.get("companyId"),
            codat_company_id=item.get("codatCompanyId"),
            attempts=int(item.get("attempts", 0)),
            lease_until=datetime.fromisoformat(lease) if lease else None,
            last_error=item.get("lastError"),
            outcome=_plain(item.get("outcome")),
            expires_at=int(item["expiresAt"]),
        )

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now.timestamp()


@dataclass(frozen=True)
class IndexedWebhook:
    """What the replay indexes hold of an event: enough to choose it and send it again."""

    webhook_id: str
    event_type: str
    status: EventStatus
    received_at: datetime


class ClaimResult(StrEnum):
    CLAIMED = "CLAIMED"  # this caller holds the lease: apply, then complete or release
    APPLIED = "APPLIED"  # already applied: nothing to do
    BUSY = "BUSY"  # another processor holds a live lease on it
    MISSING = "MISSING"  # no such event (expired, or never stored)


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    event: StoredWebhook | None = None


class DynamoWebhookStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- ingress -------------------------------------------------------------------------------

    def add(self, event: StoredWebhook) -> StoredWebhook | None:
        """Store a new event; None when it was stored, else the event already stored under its id."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_dynamo(event.to_item()),
                ConditionExpression="attribute_not_exists(webhookId)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            existing = self.get(event.webhook_id)
            if existing is None:  # expired and deleted in between: store it again
                return self.add(event)
            return existing
        return None

    # -- processing ----------------------------------------------------------------------------

    def get(self, webhook_id: str) -> StoredWebhook | None:
        item = self._client.get_item(
            TableName=self._table, Key={"webhookId": {"S": webhook_id}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else StoredWebhook.from_item(_from_dynamo(item))

    def claim(self, webhook_id: str, now: datetime, lease: timedelta) -> Claim:
        """Take the lease on an event that is not applied and not leased (or whose lease ran out).

        The condition makes concurrent duplicates safe: of two processors claiming one event at
        once, one gets it and the other is told BUSY (or APPLIED once the first is done).
        """
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"webhookId": {"S": webhook_id}},
                UpdateExpression="SET leaseUntil = :lease ADD attempts :one",
                ConditionExpression=(
                    "attribute_exists(webhookId) AND #status <> :applied"
                    " AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":lease": {"S": iso(now + lease)},
                    ":now": {"S": iso(now)},
                    ":one": {"N": "1"},
                    ":applied": {"S": EventStatus.APPLIED.value},
                },
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            current = self.get(webhook_id)
            if current is None or current.expired(now):
                return Claim(ClaimResult.MISSING, current)
            if current.status == EventStatus.APPLIED:
                return Claim(ClaimResult.APPLIED, current)
            return Claim(ClaimResult.BUSY, current)
        return Claim(
            ClaimResult.CLAIMED, StoredWebhook.from_item(_from_dynamo(answer["Attributes"]))
        )

    def complete(
        self, webhook_id: str, outcome: dict[str, Any], company_id: str | None, now: datetime
    ) -> None:
        """Mark the event APPLIED with what it did, and release the lease."""
        values: dict[str, Any] = {
            ":applied": EventStatus.APPLIED.value,
            ":outcome": outcome,
            ":at": iso(now),
        }
        update = "SET #status = :applied, outcome = :outcome, appliedAt = :at"
        if company_id is not None:
            update += ", companyId = :company"
            values[":company"] = company_id
        self._client.update_item(
            TableName=self._table,
            Key={"webhookId": {"S": webhook_id}},
            UpdateExpression=update + " REMOVE leaseUntil, lastError",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_to_dynamo(values),
        )

    def release(self, webhook_id: str, error: str) -> None:
        """Give the lease back after a failure, so the next delivery can retry at once."""
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key={"webhookId": {"S": webhook_id}},
                UpdateExpression="SET lastError = :error REMOVE leaseUntil",
                ConditionExpression="attribute_exists(webhookId)",
                ExpressionAttributeValues={":error": {"S": error[:1000]}},
            )

    # -- replay --------------------------------------------------------------------------------

    def received_between(self, since: datetime, until: datetime) -> Iterator[IndexedWebhook]:
        """Events received in [since, until), oldest first, expired ones skipped."""
        day = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            yield from self._query(BY_DAY_INDEX, "receivedDay", day.isoformat(), since, until)
            day += timedelta(days=1)

    def received_for_company(
        self, company_id: str, since: datetime, until: datetime
    ) -> Iterator[IndexedWebhook]:
        """The company's events received in [since, until), oldest first, expired ones skipped."""
        yield from self._query(BY_COMPANY_INDEX, "companyId", company_id, since, until)

    def _query(
        self, index: str, key: str, value: str, since: datetime, until: datetime
    ) -> Iterator[IndexedWebhook]:
        now = datetime.now(UTC)
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            IndexName=index,
            KeyConditionExpression="#key = :value AND receivedAt BETWEEN :since AND :until",
            ExpressionAttributeNames={"#key": key},
            ExpressionAttributeValues={
                ":value": {"S": value},
                ":since": {"S": iso(since)},
                ":until": {"S": iso(until)},
            },
        )
        for page in pages:
            for item in page["Items"]:
                row = _from_dynamo(item)
                if row["receivedAt"] >= iso(until) or int(row["expiresAt"]) <= now.timestamp():
                    continue  # BETWEEN includes its upper bound; expired items linger a while
                yield IndexedWebhook(
                    webhook_id=row["webhookId"],
                    event_type=row["eventType"],
                    status=EventStatus(row["status"]),
                    received_at=datetime.fromisoformat(row["receivedAt"]),
                )


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; outcomes are JSON, so make them JSON again."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
