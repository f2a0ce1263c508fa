"""Codat's side of the integration, as code: the webhook consumer and the data type sync settings.

Both are set through Codat's platform API with the stage's API key, idempotently: a consumer for
the stage's webhook URL is created once and left alone after (creating another would give it a new
signing secret); sync settings are written only when they differ from what Codat holds.

A command, not a deploy-time custom resource: the API key is put in Secrets Manager by the operator
after the first deploy, so a custom resource would run before the key exists (and would call Codat
on every deploy). docs/operations.md has the order of steps.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

# The events the processor acts on (billpay.webhooks.logic). Codat's catalogue spells write events
# `bills.write.*`; the Bill Pay setup page's `bill.write.*` arrive under the same names.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "connection.created",
    "connection.connected",
    "connection.reconnected",
    "connection.failed",
    "connection.disconnected",
    "connection.deleted",
    "read.completed.initial",
    "read.completed",
    "bills.write.successful",
    "bills.write.unsuccessful",
    # billpay.bills acts on supplier write outcomes too (a sync run; a refused update fails the
    # product's pending request): without these Codat would never send them.
    "suppliers.write.successful",
    "suppliers.write.unsuccessful",
    "billPayments.write.successful",
    "billPayments.write.unsuccessful",
    "client.rateLimit.reached",
    "client.rateLimit.reset",
)

# Codat's Bill Pay setup: these data types fetched on first link and refreshed daily.
SYNC_DATA_TYPES: tuple[str, ...] = (
    "bankAccounts",
    "bills",
    "billPayments",
    "chartOfAccounts",
    "company",
    "paymentMethods",
    "suppliers",
)
DAILY_HOURS = 24


class CodatSetupError(RuntimeError):
    pass


def sync_settings() -> list[dict[str, Any]]:
    return [
        {
            "dataType": data_type,
            "fetchOnFirstLink": True,
            "syncSchedule": DAILY_HOURS,
            "syncOrder": order,
            "isLocked": True,
        }
        for order, data_type in enumerate(SYNC_DATA_TYPES)
    ]


@dataclass(frozen=True)
class ConsumerResult:
    consumer: dict[str, Any]
    created: bool
    # Event types the existing consumer lacks (it is left as is: say so, never recreate silently).
    missing_event_types: tuple[str, ...] = ()


def _ok(response: httpx.Response, what: str) -> httpx.Response:
    if response.is_error:
        raise CodatSetupError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return response


def ensure_webhook_consumer(
    codat: httpx.Client, url: str, event_types: tuple[str, ...] = WEBHOOK_EVENT_TYPES
) -> ConsumerResult:
    """The consumer posting to `url`: the existing one, or a new one for `event_types`."""
    existing = _ok(codat.get("/webhooks"), "listing webhook consumers").json().get("results", [])
    for consumer in existing:
        if consumer.get("url") == url:
            have = set(consumer.get("eventTypes") or [])
            missing = tuple(t for t in event_types if have and t not in have)
            return ConsumerResult(consumer, created=False, missing_event_types=missing)
    body = {"url": url, "eventTypes": list(event_types), "disabled": False}
    created = _ok(codat.post("/webhooks", json=body), "creating the webhook consumer").json()
    return ConsumerResult(created, created=True)


def ensure_sync_settings(codat: httpx.Client) -> bool:
    """Write the client's sync settings if they differ; True when they were written."""
    wanted = {s["dataType"]: s for s in sync_settings()}
    current = _ok(codat.get("/profile/syncSettings"), "reading sync settings").json()
    have = {s.get("dataType"): s for s in current.get("settings", [])}
    if all(
        data_type in have and all(have[data_type].get(k) == v for k, v in setting.items())
        for data_type, setting in wanted.items()
    ):
        return False
    # Keep settings for other data types as Codat holds them; ours replace their namesakes.
    merged = [s for t, s in have.items() if t not in wanted] + list(wanted.values())
    _ok(
        codat.post("/profile/syncSettings", json={"settings": merged, "overridesDefaults": True}),
        "writing sync settings",
    )
    return True


def codat_client(base_url: str, api_key: str, timeout: float = 30.0) -> httpx.Client:
    """Codat's API with the key as Codat wants it (Basic, the key base64-encoded)."""

    token = base64.b64encode(api_key.encode()).decode()
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Basic {token}"}, timeout=timeout
    )
