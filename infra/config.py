"""Typed stage settings. A stage is chosen at synth time with `-c stage=<name>`."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from billpay.onboarding.models import OnboardingTimings
from billpay.payments.models import PaymentPolicy

StageName = Literal["dev", "prod"]


class StageConfig(BaseModel):
    """Everything that differs between stages, validated before any construct is built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: StageName
    # Stateful resources outlive a `cdk destroy` in prod: customers' money depends on their history.
    retain_data: bool
    log_retention_days: Literal[7, 14, 30, 90, 180, 365]
    lambda_memory_mb: int = Field(ge=128, le=10240)
    lambda_timeout_seconds: int = Field(ge=3, le=900)
    # Base URL of the Codat API; the local cloud points it at the emulator.
    codat_base_url: HttpUrl
    # How long onboarding waits for the SMB and for Codat (a StartExecution input may override
    # them per SMB with `timings`).
    onboarding_timings: OnboardingTimings = OnboardingTimings(
        reconcile_interval_seconds=3_600,  # no webhook for an hour: read Codat once
        link_expiry_seconds=7 * 86_400,  # a Link unused for a week: LINK_EXPIRED
        initial_read_timeout_seconds=86_400,  # big books can take Codat hours to read
    )
    # How patient the payment workflow is: Codat's idempotency window, the reads of an UNKNOWN
    # payment's bill, attempts (billpay.payments.models.PaymentPolicy; the defaults are Codat's).
    payments: PaymentPolicy = PaymentPolicy()
    # Throttling on the public API stage (requests per second, burst).
    api_rate_limit: int = Field(ge=1)
    api_burst_limit: int = Field(ge=1)
    alarm_email: str | None = None
    # Throttling on the public webhook API (Codat's bursts: a read completes many data types).
    webhook_rate_limit: int = Field(default=50, ge=1)
    webhook_burst_limit: int = Field(default=100, ge=1)
    # When set, WAF lets only these CIDRs reach the webhook API (Codat publishes its source IPs:
    # 4.159.114.108/32, 20.117.190.191/32). The signature stays the real check either way.
    webhook_source_cidrs: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return f"BillPay-{self.stage}"


STAGES: dict[str, StageConfig] = {
    "dev": StageConfig(
        stage="dev",
        retain_data=False,
        log_retention_days=14,
        lambda_memory_mb=512,
        lambda_timeout_seconds=29,
        codat_base_url=HttpUrl("https://api.codat.io"),
        api_rate_limit=50,
        api_burst_limit=100,
    ),
    "prod": StageConfig(
        stage="prod",
        retain_data=True,
        log_retention_days=365,
        lambda_memory_mb=1024,
        lambda_timeout_seconds=29,
        codat_base_url=HttpUrl("https://api.codat.io"),
        api_rate_limit=200,
        api_burst_limit=400,
    ),
}


def load_stage(name: str | None, overrides: str | dict[str, Any] | None = None) -> StageConfig:
    """Resolve a stage by name (default dev) and apply overrides from the `config` context
    (a JSON object, e.g. `-c 'config={"alarm_email": "ops@example.com"}'`)."""
    stage = name or "dev"
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: expected one of {sorted(STAGES)}")
    base = STAGES[stage]
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as exc:
            raise ValueError(f"context 'config' is not a JSON object: {exc}") from exc
    if not overrides:
        return base
    if not isinstance(overrides, dict):
        raise ValueError("context 'config' must be a JSON object")
    return StageConfig.model_validate({**base.model_dump(), **overrides})
