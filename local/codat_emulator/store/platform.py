"""From Codat's platform API, what an integrator configures as code: webhook consumers (each with
the signing secret Codat shows only in its portal) and data type sync settings, client-wide and
per company."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field, replace

from codat_emulator.store.companies import CompaniesStore
from codat_emulator.store.core import (
    JsonDict,
    NotFound,
    ValidationFailed,
    ValidationItem,
    copy_json,
    new_id,
)

DEFAULT_SYNC_DATA_TYPES: tuple[str, ...] = (
    "bankAccounts",
    "bills",
    "billPayments",
    "chartOfAccounts",
    "company",
    "paymentMethods",
    "suppliers",
)
MAX_WEBHOOK_CONSUMERS = 50


@dataclass
class WebhookConsumer:
    id: str
    url: str
    event_types: list[str]
    disabled: bool = False
    company_tags: list[str] | None = None
    # The Standard Webhooks signing secret; Codat shows it in its portal, never in the API.
    secret: str = field(
        default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "url": self.url,
            "disabled": self.disabled,
            "eventTypes": list(self.event_types),
            "companyTags": None if self.company_tags is None else list(self.company_tags),
        }


class PlatformStore(CompaniesStore):
    def _init_platform(self) -> None:
        self._webhook_consumers: dict[str, WebhookConsumer] = {}
        self._client_sync_settings: JsonDict = {
            "clientId": new_id(),
            "overridesDefaults": True,
            "settings": [
                {
                    "dataType": data_type,
                    "fetchOnFirstLink": True,
                    "syncSchedule": 24,
                    "syncOrder": order,
                    "syncFromWindow": 24,
                    "monthsToSync": 24,
                    "isLocked": False,
                }
                for order, data_type in enumerate(DEFAULT_SYNC_DATA_TYPES)
            ],
        }
        self._company_sync_settings: dict[str, JsonDict] = {}

    def _on_company_deleted(self, company_id: str) -> None:
        super()._on_company_deleted(company_id)
        self._company_sync_settings.pop(company_id, None)

    def create_webhook_consumer(
        self,
        url: str,
        event_types: list[str],
        disabled: bool = False,
        company_tags: list[str] | None = None,
    ) -> JsonDict:
        with self._lock:
            if len(self._webhook_consumers) >= MAX_WEBHOOK_CONSUMERS:
                raise ValidationFailed(
                    [ValidationItem(f"At most {MAX_WEBHOOK_CONSUMERS} webhook consumers.", "url")]
                )
            consumer = WebhookConsumer(new_id(), url, list(event_types), disabled, company_tags)
            self._webhook_consumers[consumer.id] = consumer
            return consumer.to_json()

    def list_webhook_consumers(self) -> list[JsonDict]:
        with self._lock:
            return [c.to_json() for c in self._webhook_consumers.values()]

    def webhook_consumers(self) -> list[WebhookConsumer]:
        """The records, signing secrets included (for delivery; never sent over the API)."""
        with self._lock:
            return [replace(c) for c in self._webhook_consumers.values()]

    def delete_webhook_consumer(self, consumer_id: str) -> None:
        with self._lock:
            if self._webhook_consumers.pop(consumer_id, None) is None:
                raise NotFound("Webhook consumer", consumer_id)

    def client_sync_settings(self) -> JsonDict:
        with self._lock:
            return copy_json(self._client_sync_settings)

    def set_client_sync_settings(self, settings: list[JsonDict], overrides_defaults: bool) -> None:
        with self._lock:
            self._client_sync_settings["settings"] = [copy_json(x) for x in settings]
            self._client_sync_settings["overridesDefaults"] = overrides_defaults

    def company_sync_settings(self, company_id: str) -> JsonDict:
        with self._lock:
            self._company(company_id)
            stored = self._company_sync_settings.get(company_id)
            if stored is not None:
                return copy_json(stored)
            return {
                "companyId": company_id,
                "settings": [copy_json(x) for x in self._client_sync_settings["settings"]],
                "overridesDefaults": False,
            }

    def set_company_sync_settings(
        self, company_id: str, settings: list[JsonDict], overrides_defaults: bool
    ) -> None:
        with self._lock:
            self._company(company_id)
            self._company_sync_settings[company_id] = {
                "companyId": company_id,
                "settings": [copy_json(x) for x in settings],
                "overridesDefaults": overrides_defaults,
            }
