"""Environment variables, validated once per cold start (names in infra/constants.py)."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = Field(alias="STAGE", min_length=1)
    companies_table: str = Field(alias="COMPANIES_TABLE", min_length=1)
    onboarding_state_machine_arn: str | None = Field(
        default=None, alias="ONBOARDING_STATE_MACHINE_ARN"
    )
    # Functions that call Codat (billpay.codat.client) need both.
    codat_base_url: str | None = Field(default=None, alias="CODAT_BASE_URL")
    codat_api_key_secret_arn: str | None = Field(default=None, alias="CODAT_API_KEY_SECRET_ARN")
    # Functions that read or write the SMBs' bills, suppliers and payment accounts (billpay.bills).
    payables_table: str | None = Field(default=None, alias="PAYABLES_TABLE")
    # The key that signs the product API's page tokens (billpay.bills.page_token).
    page_token_key_secret_arn: str | None = Field(default=None, alias="PAGE_TOKEN_KEY_SECRET_ARN")
    # The payables sync's state machine (to start runs).
    payables_sync_state_machine_arn: str | None = Field(
        default=None, alias="PAYABLES_SYNC_STATE_MACHINE_ARN"
    )
    # Functions that publish domain events (billpay.events.publisher).
    event_bus_name: str | None = Field(default=None, alias="EVENT_BUS_NAME")
    webhook_events_table: str | None = Field(default=None, alias="WEBHOOK_EVENTS_TABLE")
    # Payments (billpay.payments): their table, their workflow, and how patient it is (JSON of
    # billpay.payments.models.PaymentPolicy, from the stage config).
    payments_table: str | None = Field(default=None, alias="PAYMENTS_TABLE")
    payment_state_machine_arn: str | None = Field(default=None, alias="PAYMENT_STATE_MACHINE_ARN")
    payment_policy: str | None = Field(default=None, alias="PAYMENT_POLICY")


@cache
def settings() -> Settings:
    """Read lazily, so that importing a handler never fails and tests can set the env first."""
    return Settings.model_validate(os.environ)
