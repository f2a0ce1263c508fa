"""The emulator's settings: where it listens, the API key it accepts, and the limits it enforces."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

ENV_PREFIX = "CODAT_EMULATOR_"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4010


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


class EmulatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    # Never a default value in code: from_env() takes it from the environment or generates one.
    api_key: str = Field(min_length=8)
    # What the emulator puts in redirect and linkUrl; defaults to http://host:port.
    base_url: str = ""
    limits: Limits = Limits()
    # How long an "ambiguous failure: hang" fault holds a request before answering 500.
    fault_hang_seconds: float = Field(30.0, ge=0)

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
        """Build from ``CODAT_EMULATOR_*`` variables; returns (config, api_key_was_generated)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in ("host", "port", "api_key", "base_url"):
            raw = env.get(ENV_PREFIX + name.upper())
            if raw:
                values[name] = raw
        values.update(overrides)
        generated = "api_key" not in values
        if generated:
            values["api_key"] = secrets.token_urlsafe(24)
        return cls.model_validate(values), generated
