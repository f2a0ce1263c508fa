"""POST /webhooks/codat: the Lambda behind Codat's webhook endpoint (API Gateway REST proxy).

Thin: take the raw body and headers from the proxy event, let `intake.receive` decide, count the
metrics it names, answer. Imports only the standard library and botocore (no boto3, pydantic,
Powertools or Codat SDK), so a cold start stays short: docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from botocore.config import Config

from billpay.core import aws
from billpay.core.metrics import emit
from billpay.webhooks import intake
from billpay.webhooks.queue import SqsWebhookQueue
from billpay.webhooks.signing_secret import CachedSigningKeys
from billpay.webhooks.store import DynamoWebhookStore

log = logging.getLogger("billpay.webhooks")
log.setLevel(logging.INFO)

# Codat waits 15 s for the answer: a slow AWS call must fail well before that (and answer 503).
_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


@dataclass(frozen=True)
class IngressDependencies:
    stage: str
    signing: intake.SigningKeys
    store: intake.EventStore
    queue: intake.EventQueue
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@cache
def default_dependencies() -> IngressDependencies:
    """Built once per cold start; the secret cache lives as long as the container."""
    env = os.environ
    return IngressDependencies(
        stage=env["STAGE"],
        signing=CachedSigningKeys(
            aws.client("secretsmanager", config=_CONFIG), env["WEBHOOK_SECRET_ARN"]
        ),
        store=DynamoWebhookStore(
            aws.client("dynamodb", config=_CONFIG), env["WEBHOOK_EVENTS_TABLE"]
        ),
        queue=SqsWebhookQueue(aws.client("sqs", config=_CONFIG), env["WEBHOOK_QUEUE_URL"]),
    )


def request_headers(event: dict[str, Any]) -> dict[str, str]:
    """Lower-cased headers; a header sent several times is joined with spaces (as signatures are)."""
    multi = event.get("multiValueHeaders") or {}
    if multi:
        return {name.lower(): " ".join(values) for name, values in multi.items() if values}
    return {name.lower(): value for name, value in (event.get("headers") or {}).items()}


def raw_body(event: dict[str, Any]) -> bytes:
    """The bytes Codat sent: API Gateway passes text as a str and binary media base64-encoded."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return str(body).encode("utf-8")


def handler(
    event: dict[str, Any], context: Any, deps: IngressDependencies | None = None
) -> dict[str, Any]:
    deps = deps or default_dependencies()
    answer = intake.receive(
        request_headers(event),
        raw_body(event),
        signing=deps.signing,
        store=deps.store,
        queue=deps.queue,
        now=deps.clock(),
    )
    emit(deps.stage, *answer.metrics)
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(answer.body),
    }
