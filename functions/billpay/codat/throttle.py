"""The Codat rate-limit throttle: one place that every Codat call consults before it spends quota.

Set by `client.rateLimit.reached` webhooks and by any 429 with `Retry-After`; cleared by
`client.rateLimit.reset` or simply by its time passing. Codat's quota is per client (API key), so
there is one throttle for the whole deployment, kept as one reserved item of the companies table
(its key cannot collide with a company: product company ids never contain `#`).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

THROTTLE_KEY = "codat#rateLimit"


class Throttle(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    # No Codat call before this instant.
    until: datetime
    # Why: "client.rateLimit.reached" (webhook) or "429" (an answer with Retry-After).
    reason: str
    # When the cause happened (the webhook's generatedDate, or the 429's arrival): a reset
    # generated before the throttle was set must not clear it.
    set_at: datetime = Field(alias="setAt")

    def blocks(self, now: datetime) -> bool:
        return now < self.until


class ThrottleStore(Protocol):
    def current(self) -> Throttle | None: ...

    def hold(self, throttle: Throttle) -> None:
        """Keep `throttle` unless one that lasts longer is already held, or a reset newer than its
        cause was already seen (webhooks arrive out of order)."""
        ...

    def release(self, reset_at: datetime) -> None:
        """Clear the throttle if it was set before `reset_at` (Codat's reset event time), and
        remember the reset so a late, older `reached` does not set it again."""
        ...


class DynamoThrottleStore:
    """The throttle item in the companies table; writes are conditional so the longest wins.

    The item outlives a release as a marker (`releasedAt`, no `until`): a `reached` generated
    before the last reset is then refused, so any delivery order ends in the same state."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def current(self) -> Throttle | None:
        item = self._client.get_item(
            TableName=self._table, Key={"companyId": {"S": THROTTLE_KEY}}, ConsistentRead=True
        ).get("Item")
        if item is None or "until" not in item:
            return None
        return Throttle(
            until=datetime.fromisoformat(item["until"]["S"]),
            reason=item["reason"]["S"],
            set_at=datetime.fromisoformat(item["setAt"]["S"]),
        )

    def hold(self, throttle: Throttle) -> None:
        # ISO-8601 UTC strings compare in time order, so DynamoDB can compare them for us.
        until = _iso(throttle.until)
        # A longer throttle already held, or a newer reset, wins: the condition fails.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key={"companyId": {"S": THROTTLE_KEY}},
                UpdateExpression="SET #until = :until, reason = :reason, setAt = :setAt",
                ConditionExpression=(
                    "(attribute_not_exists(#until) OR #until < :until)"
                    " AND (attribute_not_exists(releasedAt) OR releasedAt < :setAt)"
                ),
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={
                    ":until": {"S": until},
                    ":reason": {"S": throttle.reason},
                    ":setAt": {"S": _iso(throttle.set_at)},
                },
            )

    def release(self, reset_at: datetime) -> None:
        # Set after this reset was generated, or a newer reset already seen: nothing changes.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key={"companyId": {"S": THROTTLE_KEY}},
                UpdateExpression="SET releasedAt = :reset REMOVE #until, reason, setAt",
                ConditionExpression=(
                    "(attribute_not_exists(setAt) OR setAt <= :reset)"
                    " AND (attribute_not_exists(releasedAt) OR releasedAt < :reset)"
                ),
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":reset": {"S": _iso(reset_at)}},
            )


def _iso(moment: datetime) -> str:
    """Fixed-width UTC, so that string order is time order."""
    if moment.tzinfo is None:
        raise ValueError("throttle times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
