"""Receiving one webhook: check it, verify it, make it durable, hand it on. Then, and only then, 2xx.

The rules, in the order they are applied (cheapest first, nothing stored before the signature):
1. `content-type` is JSON, else 415; the body is at most MAX_BODY_BYTES, else 413.
2. The Standard Webhooks signature verifies on the raw body with a current signing key, within
   five minutes; else 401 (fail closed: no key configured is a 401 too). Metric counted.
3. The body is a Codat event envelope `{id, eventType, generatedDate, payload}`, else 400.
4. The event is stored under its webhook-id (conditional put: a redelivery finds the first copy),
   then its id is sent to the processing queue, and the answer is 200. An event already APPLIED
   is only acknowledged. If storing or sending fails the answer is 503, so Codat retries; the
   retry finds the stored event and sends it again (the processor applies it once).
Every event type is accepted, also those the project does not act on: Codat disables an endpoint
that keeps failing, and the processor decides what an event means.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from billpay.webhooks.signature import SignatureError, verify
from billpay.webhooks.signing_secret import SecretUnavailable
from billpay.webhooks.store import EventStatus, StoredWebhook

# Codat's webhook bodies are a few KiB; a DynamoDB item holds at most 400 KB.
MAX_BODY_BYTES = 256 * 1024
# The tag the onboarding sets on each Codat company (billpay.companies.models.PRODUCT_COMPANY_ID_TAG;
# not imported: that module pulls in pydantic, which this function does without).
PRODUCT_COMPANY_ID_TAG = "billpayCompanyId"
_MAX_ID = 128

log = logging.getLogger(__name__)


class Metric:
    """Names of the metrics the ingress counts (infra/constructs/monitoring.py alarms on them)."""

    ACCEPTED = "WebhookAccepted"
    DUPLICATE = "WebhookDuplicate"
    UNAUTHORIZED = "WebhookUnauthorized"
    SECRET_UNAVAILABLE = "WebhookSecretUnavailable"  # noqa: S105 - a metric name
    INVALID = "WebhookInvalid"
    FAILED = "WebhookIngressFailed"


class SigningKeys(Protocol):
    def keys(self) -> list[bytes]: ...


class EventStore(Protocol):
    def add(self, event: StoredWebhook) -> StoredWebhook | None: ...


class EventQueue(Protocol):
    def send(self, webhook_id: str) -> None: ...


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    metrics: tuple[str, ...] = ()


def _error(status: int, code: str, message: str, *metrics: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}}, metrics)


@dataclass(frozen=True)
class Envelope:
    """The parts of Codat's envelope the ingress needs; the processor parses the rest."""

    id: str
    event_type: str
    generated_date: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def codat_company_id(self) -> str | None:
        reference = self.payload.get("referenceCompany")
        value = reference.get("id") if isinstance(reference, dict) else None
        return value if isinstance(value, str) and 0 < len(value) <= _MAX_ID else None

    @property
    def product_company_id(self) -> str | None:
        reference = self.payload.get("referenceCompany")
        tags = reference.get("tags") if isinstance(reference, dict) else None
        value = tags.get(PRODUCT_COMPANY_ID_TAG) if isinstance(tags, dict) else None
        return value if isinstance(value, str) and 0 < len(value) <= _MAX_ID else None


class InvalidEnvelope(ValueError):
    pass


def parse_envelope(body: bytes) -> Envelope:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # RecursionError: nested deeper than Python's parser goes (not a ValueError).
        raise InvalidEnvelope("the body is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidEnvelope("the body is not a JSON object")
    values = {name: document.get(name) for name in ("id", "eventType", "generatedDate")}
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID:
            raise InvalidEnvelope(f"{name} must be a non-empty string")
    try:
        datetime.fromisoformat(str(values["generatedDate"]))
    except ValueError:
        raise InvalidEnvelope("generatedDate is not an ISO 8601 date-time") from None
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise InvalidEnvelope("payload must be a JSON object")
    return Envelope(
        id=str(values["id"]),
        event_type=str(values["eventType"]),
        generated_date=str(values["generatedDate"]),
        payload=payload,
    )


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def receive(
    headers: Mapping[str, str],
    body: bytes,
    *,
    signing: SigningKeys,
    store: EventStore,
    queue: EventQueue,
    now: datetime,
) -> Answer:
    """Answer one POST from Codat. `headers` are lower-cased; `body` is exactly what was sent."""
    if not _is_json(headers.get("content-type")):
        return _error(415, "UnsupportedMediaType", "send application/json", Metric.INVALID)
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "PayloadTooLarge", "the body is too large", Metric.INVALID)
    try:
        signed = verify(headers, body, signing.keys(), now.timestamp())
    except SecretUnavailable as exc:
        log.error("no usable webhook signing secret: %s", exc)
        return _error(
            401, "Unauthorized", "the signature cannot be verified",
            Metric.UNAUTHORIZED, Metric.SECRET_UNAVAILABLE,
        )  # fmt: skip
    except SignatureError as exc:
        log.warning("webhook rejected: %s", exc.reason)
        return _error(401, "Unauthorized", exc.reason, Metric.UNAUTHORIZED)
    try:
        envelope = parse_envelope(body)
    except InvalidEnvelope as exc:
        log.warning("signed webhook %s is not an event: %s", signed.webhook_id, exc)
        return _error(400, "InvalidEvent", str(exc), Metric.INVALID)

    event = StoredWebhook(
        webhook_id=signed.webhook_id,
        event_type=envelope.event_type,
        generated_date=envelope.generated_date,
        received_at=now,
        body=body.decode("utf-8"),
        company_id=envelope.product_company_id,
        codat_company_id=envelope.codat_company_id,
    )
    context = {"webhook_id": event.webhook_id, "event_type": event.event_type}
    try:
        existing = store.add(event)
        if existing is not None and existing.status == EventStatus.APPLIED:
            log.info("duplicate of an applied webhook", extra=context)
            return Answer(200, {"webhookId": event.webhook_id, "status": "duplicate"},
                          (Metric.DUPLICATE,))  # fmt: skip
        queue.send(event.webhook_id)
    except Exception:
        log.exception("webhook could not be made durable", extra=context)
        return _error(503, "Unavailable", "try again later", Metric.FAILED)
    if existing is not None:
        log.info("redelivered webhook sent to processing again", extra=context)
        return Answer(200, {"webhookId": event.webhook_id, "status": "duplicate"},
                      (Metric.DUPLICATE,))  # fmt: skip
    log.info("webhook accepted", extra=context)
    return Answer(200, {"webhookId": event.webhook_id, "status": "accepted"}, (Metric.ACCEPTED,))
