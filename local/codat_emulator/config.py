"""The emulator's settings: where it listens, the API key it accepts, and the limits it enforces."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from codat_emulator.redirects import check_redirect_template
from codat_emulator.seed import DEFAULT_BILLS, MAX_BILLS

ENV_PREFIX = "CODAT_EMULATOR_"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4010
# Codat's documented webhook retry schedule (seconds after the previous attempt).
CODAT_RETRY_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


class Limits(BaseModel):
    """Codat's documented limits, adjustable so tests can reach them quickly."""

    model_config = ConfigDict(frozen=True)

    daily_quota_base: int = Field(1000, ge=0)  # x (1 + companies with a Linked connection)
    max_concurrent_per_company: int = Field(10, ge=1)
    max_json_body_bytes: int = Field(1_000_000, ge=1)
    max_upload_bytes: int = Field(10_000_000, ge=1)
    bills_page_size: int = Field(100, ge=1)
    suppliers_page_size: int = Field(100, ge=1)
    companies_max_page_size: int = Field(5000, ge=1)
    idempotency_ttl_seconds: int = Field(90 * 60, ge=1)


class DeliveryOptions(BaseModel):
    """How webhooks are delivered; every field can also be changed at run time (control route)."""

    model_config = ConfigDict(extra="forbid")

    # Multiplies the retry schedule: 0.001 makes Codat's 5 s retry 5 ms in a test.
    time_scale: float = Field(1.0, ge=0, le=1000)
    timeout_seconds: float = Field(15.0, gt=0, le=120)
    retry_schedule: tuple[float, ...] = Field(CODAT_RETRY_SCHEDULE, min_length=1, max_length=20)
    # Send every message twice (same webhook-id), as an at-least-once system does.
    duplicate: bool = False
    duplicate_after_seconds: float = Field(0.05, ge=0, le=3600)
    # Hold each message until the next one for the same consumer, then send the later first.
    out_of_order: bool = False
    # How long a held message waits for a successor before it goes anyway.
    out_of_order_hold_seconds: float = Field(1.0, ge=0, le=3600)
    # Deliver every message this late.
    delay_seconds: float = Field(0.0, ge=0, le=3600)
    # Post to non-loopback URLs too (off: a local emulator must not reach the internet).
    allow_remote: bool = False


class LinkSettings(BaseModel):
    """How Link behaves: where it redirects and how big the SMB's seeded books are."""

    model_config = ConfigDict(extra="forbid")

    # Where to send the user after Authorize/Cancel when the link carries no ?redirect=.
    redirect_template: str | None = None
    bills: int = Field(DEFAULT_BILLS, ge=0, le=MAX_BILLS)
    seed: str = "codat-emulator"

    @field_validator("redirect_template")
    @classmethod
    def _absolute_http(cls, value: str | None) -> str | None:
        return None if value is None else check_redirect_template(value)


# Environment variable -> (section, field). Only these are read, and only by EmulatorConfig.from_env.
_ENVIRONMENT: dict[str, tuple[str | None, str]] = {
    **{
        f"{ENV_PREFIX}{name.upper()}": (None, name)
        for name in ("host", "port", "api_key", "base_url")
    },
    **{
        f"{ENV_PREFIX}WEBHOOK_{name.upper()}": ("webhooks", name)
        for name in DeliveryOptions.model_fields
        if name != "retry_schedule"
    },
    f"{ENV_PREFIX}LINK_REDIRECT": ("link", "redirect_template"),
    f"{ENV_PREFIX}SEED_BILLS": ("link", "bills"),
    f"{ENV_PREFIX}SEED": ("link", "seed"),
}


class ConfigError(ValueError):
    """A CODAT_EMULATOR_* variable holds a value the emulator cannot use."""


class EmulatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    # Never a default value in code: from_env() takes it from the environment or generates one.
    api_key: str = Field(min_length=8)
    # What the emulator puts in redirect and linkUrl; defaults to http://host:port.
    base_url: str = ""
    limits: Limits = Limits()
    # How long an applied_then_timeout fault holds the answer when its rule sets no hang_seconds.
    fault_hang_seconds: float = Field(30.0, ge=0)
    webhooks: DeliveryOptions = DeliveryOptions()
    link: LinkSettings = LinkSettings()

    @model_validator(mode="after")
    def _default_base_url(self) -> EmulatorConfig:
        if not self.base_url:
            object.__setattr__(self, "base_url", f"http://{self.host}:{self.port}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        return self

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> tuple[EmulatorConfig, bool]:
        """Build from ``CODAT_EMULATOR_*`` variables; returns (config, api_key_was_generated).

        The one place the emulator reads its environment. A bad value is a ConfigError that names
        the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"webhooks": {}, "link": {}}
        for variable, (section, name) in _ENVIRONMENT.items():
            raw = env.get(variable)
            if raw:
                (values if section is None else values[section])[name] = raw
        values.update(overrides)
        generated = "api_key" not in values
        if generated:
            values["api_key"] = secrets.token_urlsafe(24)
        try:
            return cls.model_validate(values), generated
        except ValidationError as error:
            first = error.errors()[0]
            loc = [str(part) for part in first["loc"]]
            key: tuple[str | None, str] = (loc[0], loc[1]) if len(loc) > 1 else (None, loc[0])
            culprit = _VARIABLE_OF.get(key)
            source = f"{culprit}: " if culprit and env.get(culprit) else ""
            raise ConfigError(f"{source}{'.'.join(loc)}: {first['msg']}") from None


_VARIABLE_OF: dict[tuple[str | None, str], str] = {
    (section, name): variable for variable, (section, name) in _ENVIRONMENT.items()
}
