"""Domain events on the bus: source, detail-type, versioned detail; refusals are errors."""

import json
from datetime import UTC, datetime

import pytest

from billpay.events.models import DomainEvent
from billpay.events.publisher import EventBridgePublisher, EventPublisherError


class Pinged(DomainEvent):
    DETAIL_TYPE = "Pinged"
    SCHEMA_VERSION = 2


def _event(n: int) -> Pinged:
    return Pinged(
        event_id=f"e-{n}",
        occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
        company_id="smb-1",
        codat_company_id="c-1",
    )


def test_detail_carries_the_schema_version_and_both_company_ids():
    assert _event(1).detail() == {
        "schemaVersion": 2,
        "eventId": "e-1",
        "occurredAt": "2026-11-25T00:00:00Z",
        "companyId": "smb-1",
        "codatCompanyId": "c-1",
    }


class RecordingEvents:
    def __init__(self, fail_ids=()):
        self.calls = []
        self.fail_ids = set(fail_ids)

    def put_events(self, Entries):
        self.calls.append(Entries)
        results = [
            {"ErrorCode": "InternalFailure"}
            if json.loads(e["Detail"])["eventId"] in self.fail_ids
            else {"EventId": "x"}
            for e in Entries
        ]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_events_go_out_in_batches_of_ten_on_the_named_bus():
    events = RecordingEvents()
    EventBridgePublisher(events, "bus").publish([_event(n) for n in range(23)])
    assert [len(call) for call in events.calls] == [10, 10, 3]
    entry = events.calls[0][0]
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == (
        "bus",
        "billpay",
        "Pinged",
    )


def test_a_refused_entry_raises_naming_the_event():
    with pytest.raises(EventPublisherError, match="Pinged e-3: InternalFailure"):
        EventBridgePublisher(RecordingEvents(fail_ids={"e-3"}), "bus").publish([_event(3)])


def test_publishing_through_eventbridge(aws):
    client = aws("events")
    client.create_event_bus(Name="bus")
    EventBridgePublisher(client, "bus").publish([_event(1)])  # accepted: no error
