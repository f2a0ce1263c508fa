"""Webhook consumers and data type sync settings through Codat's platform SDK."""

from __future__ import annotations

import pytest
from codat_platform.models.errors import ErrorMessage


@pytest.fixture(scope="module")
def platform(emulator):
    return emulator.platform_sdk()


def test_webhook_consumers_create_list_delete(emulator, platform):
    created = platform.webhooks.create_consumer(
        request={
            "url": "http://127.0.0.1:9/hooks",
            "event_types": ["read.completed", "bills.write.successful"],
            "company_tags": ["region:uk"],
        }
    )
    assert created.id
    assert created.event_types == ["read.completed", "bills.write.successful"]
    assert created.disabled is False
    listed = platform.webhooks.list_consumers()
    assert created.id in [c.id for c in listed.results]
    # The signing secret is the emulator's to use for delivery, never part of the API's answer
    secret = next(c.secret for c in emulator.store.webhook_consumers() if c.id == created.id)
    assert secret.startswith("whsec_")
    assert secret not in listed.model_dump_json()

    platform.webhooks.delete_consumer(request={"webhook_id": created.id})
    assert created.id not in [c.id for c in platform.webhooks.list_consumers().results]
    with pytest.raises(ErrorMessage) as caught:
        platform.webhooks.delete_consumer(request={"webhook_id": created.id})
    assert caught.value.status_code == 404


def test_client_sync_settings_round_trip(platform):
    before = platform.settings.get_sync_settings()
    assert {s.data_type.value for s in before.settings} >= {"bills", "suppliers", "bankAccounts"}
    platform.settings.update_sync_settings(
        request={
            "client_id": before.client_id,
            "overrides_defaults": True,
            "settings": [
                {
                    "data_type": "bills",
                    "fetch_on_first_link": True,
                    "sync_schedule": 24,
                    "sync_order": 0,
                },
                {
                    "data_type": "suppliers",
                    "fetch_on_first_link": True,
                    "sync_schedule": 720,
                    "sync_order": 1,
                },
            ],
        }
    )
    after = platform.settings.get_sync_settings()
    assert [(s.data_type.value, s.sync_schedule) for s in after.settings] == [
        ("bills", 24),
        ("suppliers", 720),
    ]
    # restore for other tests
    platform.settings.update_sync_settings(
        request={
            "client_id": before.client_id,
            "overrides_defaults": True,
            "settings": [s.model_dump(by_alias=False, exclude_none=True) for s in before.settings],
        }
    )


def test_company_sync_settings_round_trip(emulator, platform):
    company = emulator.store.create_company("Sync settings Ltd", emulator.base_url)
    inherited = platform.companies.get_company_sync_settings(request={"company_id": company["id"]})
    assert inherited.company_id == company["id"]
    assert inherited.overrides_defaults is False
    platform.companies.set_company_sync_settings(
        request={
            "company_id": company["id"],
            "request_body": {
                "company_id": company["id"],
                "overrides_defaults": True,
                "settings": [
                    {
                        "data_type": "bills",
                        "fetch_on_first_link": True,
                        "sync_schedule": 1,
                        "sync_order": 0,
                    }
                ],
            },
        }
    )
    stored = platform.companies.get_company_sync_settings(request={"company_id": company["id"]})
    assert stored.overrides_defaults is True
    assert [(s.data_type.value, s.sync_schedule) for s in stored.settings] == [("bills", 1)]
