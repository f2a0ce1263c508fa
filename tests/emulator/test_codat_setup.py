"""ops.codat_setup against the emulator's platform API: idempotent consumer and sync settings."""

from __future__ import annotations

import uuid

import pytest

from codat_emulator.testing import running_emulator
from ops.codat_setup import (
    SYNC_DATA_TYPES,
    WEBHOOK_EVENT_TYPES,
    CodatSetupError,
    codat_client,
    ensure_sync_settings,
    ensure_webhook_consumer,
)


def test_the_webhook_consumer_is_created_once_for_the_url():
    with running_emulator() as emulator, codat_client(emulator.base_url, emulator.api_key) as codat:
        url = f"http://127.0.0.1:9/{uuid.uuid4().hex}/webhooks/codat"
        first = ensure_webhook_consumer(codat, url)
        again = ensure_webhook_consumer(codat, url)
        assert first.created
        assert not again.created
        assert again.consumer["id"] == first.consumer["id"]
        consumers = codat.get("/webhooks").json()["results"]
        (mine,) = [c for c in consumers if c["url"] == url]
        assert mine["eventTypes"] == list(WEBHOOK_EVENT_TYPES)
        assert again.missing_event_types == ()


def test_a_consumer_lacking_event_types_is_reported_not_recreated():
    with running_emulator() as emulator, codat_client(emulator.base_url, emulator.api_key) as codat:
        url = "http://127.0.0.1:9/old/webhooks/codat"
        codat.post("/webhooks", json={"url": url, "eventTypes": ["read.completed"]})
        result = ensure_webhook_consumer(codat, url)
        assert not result.created
        assert "connection.connected" in result.missing_event_types


def test_sync_settings_are_written_once_and_keep_other_data_types():
    with running_emulator() as emulator, codat_client(emulator.base_url, emulator.api_key) as codat:
        other = {"dataType": "invoices", "fetchOnFirstLink": False, "syncSchedule": 720,
                 "syncOrder": 40}  # fmt: skip
        codat.post("/profile/syncSettings", json={"settings": [other], "overridesDefaults": True})
        assert ensure_sync_settings(codat) is True
        assert ensure_sync_settings(codat) is False
        settings = {s["dataType"]: s for s in codat.get("/profile/syncSettings").json()["settings"]}
        assert settings["invoices"]["syncSchedule"] == 720
        for data_type in SYNC_DATA_TYPES:
            assert settings[data_type]["fetchOnFirstLink"] is True
            assert settings[data_type]["syncSchedule"] == 24


def test_a_wrong_api_key_is_a_clear_error():
    with (
        running_emulator() as emulator,
        codat_client(emulator.base_url, "wrong-key") as codat,
        pytest.raises(CodatSetupError, match="HTTP 401"),
    ):
        ensure_webhook_consumer(codat, "http://127.0.0.1:9/x")
