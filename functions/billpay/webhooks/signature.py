"""Standard Webhooks signatures, as Codat (through Svix) signs every webhook: verified on the raw
body, with nothing but the standard library (the ingress function must start fast).

    signature = base64(HMAC-SHA256(key=base64decode(secret after "whsec_"), "{id}.{timestamp}.{body}"))

sent as `webhook-signature: v1,<signature>` (several, space separated, during Codat's own secret
rotation) next to `webhook-id` and `webhook-timestamp`; Svix's older `svix-*` names mean the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
# Codat's libraries reject timestamps further than five minutes from now, either way.
TOLERANCE_SECONDS = 5 * 60
_MAX_ID_LENGTH = 256


class SignatureError(Exception):
    """The request is not a webhook Codat signed: answered 401, never stored. `reason` is safe to
    log and to return (it never contains a secret or a signature)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignedHeaders:
    webhook_id: str
    timestamp: int
    signatures: tuple[str, ...]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for prefix in ("webhook-", "svix-"):
        value = headers.get(prefix + name)
        if value:
            return value.strip()
    return None


def signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """The three signature headers from lower-cased `headers`; SignatureError if one is missing."""
    webhook_id = _header(headers, "id")
    timestamp = _header(headers, "timestamp")
    signature = _header(headers, "signature")
    if not webhook_id or not timestamp or not signature:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if len(webhook_id) > _MAX_ID_LENGTH or not webhook_id.isprintable():
        raise SignatureError("webhook-id is not a valid id")
    try:
        seconds = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    signatures = tuple(
        value.removeprefix("v1,") for value in signature.split() if value.startswith("v1,")
    )
    if not signatures:
        raise SignatureError("webhook-signature holds no v1 signature")
    return SignedHeaders(webhook_id, seconds, signatures)


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_<base64>` secret; ValueError if it is not one."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "==", validate=True)  # Svix sometimes drops padding
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is base64 after its whsec_ prefix") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The base64 signature (without the `v1,` prefix) of one message."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def verify(
    headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float
) -> SignedHeaders:
    """Check that one of `keys` signed exactly `body` under these headers, within the tolerance.

    `headers` are lower-cased. `keys` holds one key, or two while the secret is being rotated.
    Returns the verified headers; raises SignatureError otherwise (fail closed).
    """
    if not keys:
        raise SignatureError("no signing secret is configured")
    signed = signed_headers(headers)
    if abs(now - signed.timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is outside the five-minute tolerance")
    expected = [sign(key, signed.webhook_id, signed.timestamp, body) for key in keys]
    if not _any_match(expected, signed.signatures):
        raise SignatureError("no signature matches the body")
    return signed


def _any_match(expected: Iterable[str], received: Iterable[str]) -> bool:
    received = tuple(received)
    # Compare every pair in constant time, without stopping at the first match.
    matches = [hmac.compare_digest(e.encode(), r.encode()) for e in expected for r in received]
    return any(matches)
