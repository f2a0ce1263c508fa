"""Publishing domain events on the integration bus (EventBridge): the only module that does."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from billpay.events.models import SOURCE, DomainEvent

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

# PutEvents takes at most 10 entries a call.
_BATCH = 10


class EventPublisherError(RuntimeError):
    """Some events were not accepted by EventBridge; the caller retries (consumers dedupe)."""


class EventPublisher(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> None: ...


class EventBridgePublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Sequence[DomainEvent]) -> None:
        for start in range(0, len(events), _BATCH):
            batch = events[start : start + _BATCH]
            entries: list[PutEventsRequestEntryTypeDef] = [
                {
                    "EventBusName": self._bus,
                    "Source": SOURCE,
                    "DetailType": event.DETAIL_TYPE,
                    "Detail": json.dumps(event.detail()),
                    "Time": event.occurred_at,
                }
                for event in batch
            ]
            answer = self._client.put_events(Entries=entries)
            if answer.get("FailedEntryCount", 0):
                failed = [
                    f"{event.DETAIL_TYPE} {event.event_id}: {result.get('ErrorCode')}"
                    for event, result in zip(batch, answer["Entries"], strict=True)
                    if result.get("ErrorCode")
                ]
                raise EventPublisherError(f"EventBridge refused {len(failed)} events: {failed}")
