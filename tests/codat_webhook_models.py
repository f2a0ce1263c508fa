"""Check a webhook envelope against the codat-platform SDK's strict models (shared by tiers).

Round-tripping through the model and comparing with the envelope catches a field the model does
not know as well as one it types differently.
"""

from __future__ import annotations

from typing import Any

from codat_platform.models.shared import (
    ClientRateLimitWebhook,
    ConnectionWebhook,
    DataTypeWriteWebhook,
    ReadCompletedWebhook,
)

MODELS: dict[str, Any] = {
    "connection.": ConnectionWebhook,
    "read.completed": ReadCompletedWebhook,
    ".write.": DataTypeWriteWebhook,
    "client.rateLimit.": ClientRateLimitWebhook,
}


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def assert_codat_webhook(envelope: dict[str, Any]) -> Any:
    """The parsed model; fails when the envelope is not exactly what the model describes."""
    model = next(m for key, m in MODELS.items() if key in envelope["eventType"])
    parsed = model.from_dict(envelope)
    assert parsed is not None
    assert parsed.to_dict() == _drop_none(envelope), envelope["eventType"]
    assert envelope["generatedDate"].endswith("Z")
    return parsed
