"""The Codat webhook signing secret(s), read from Secrets Manager and cached for a bounded time.

The secret's value is either one `whsec_...` secret, or, while the operator rotates it,
`{"current": "whsec_...", "previous": "whsec_..."}`: both verify until `previous` is removed
(docs/operations.md). The cache is short, so a rotation reaches every warm function within
`CACHE_SECONDS`. A value that cannot be read or parsed gives no keys at all: the ingress then
rejects every webhook (fail closed) and counts it, and Codat retries later.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from billpay.webhooks.signature import SECRET_PREFIX, secret_key

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CACHE_SECONDS = 300.0
# After a failed read, ask Secrets Manager again this soon (not on every request).
RETRY_SECONDS = 10.0

log = logging.getLogger(__name__)


class SecretUnavailable(Exception):
    """No usable signing secret: unset, unreadable, or not a whsec_ value."""


def parse_secret_value(value: str) -> list[bytes]:
    """The HMAC keys in a secret value (one, or two during a rotation); SecretUnavailable if none."""
    text = value.strip()
    secrets: list[str]
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise SecretUnavailable("the secret value is not valid JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("current"), str):
            raise SecretUnavailable('the secret JSON needs a "current" whsec_ value')
        secrets = [document["current"]]
        if isinstance(document.get("previous"), str) and document["previous"]:
            secrets.append(document["previous"])
    else:
        secrets = [text]
    if not all(secret.strip().startswith(SECRET_PREFIX) for secret in secrets):
        # Also what an unset secret looks like (the deploy's generated placeholder).
        raise SecretUnavailable("the secret value is not a whsec_ signing secret")
    try:
        return [secret_key(secret) for secret in secrets]
    except ValueError as exc:
        raise SecretUnavailable(str(exc)) from None


class CachedSigningKeys:
    """Keys from Secrets Manager, re-read every CACHE_SECONDS (RETRY_SECONDS after a failure)."""

    def __init__(
        self,
        client: SecretsManagerClient,
        secret_arn: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._arn = secret_arn
        self._clock = clock
        self._keys: list[bytes] = []
        self._error: str | None = "not read yet"
        self._expires = 0.0

    def keys(self) -> list[bytes]:
        """The current keys; SecretUnavailable when none can be had."""
        if self._clock() >= self._expires:
            self._refresh()
        if self._error is not None:
            raise SecretUnavailable(self._error)
        return self._keys

    def _refresh(self) -> None:
        try:
            value = self._client.get_secret_value(SecretId=self._arn)["SecretString"]
            self._keys, self._error = parse_secret_value(value), None
            self._expires = self._clock() + CACHE_SECONDS
        except SecretUnavailable as exc:
            self._keys, self._error = [], str(exc)
            self._expires = self._clock() + RETRY_SECONDS
        except Exception as exc:  # throttled, missing, no permission: fail closed, retry soon
            log.warning("reading the webhook signing secret failed: %s", type(exc).__name__)
            self._keys, self._error = [], f"the secret could not be read ({type(exc).__name__})"
            self._expires = self._clock() + RETRY_SECONDS
