"""Standard Webhooks signatures, as Codat (through Svix) signs every webhook it sends.

signature = base64(HMAC-SHA256(key=b64decode(secret without "whsec_"), f"{id}.{timestamp}.{body}"))
sent as ``webhook-signature: v1,<signature>`` next to ``webhook-id`` and ``webhook-timestamp``.
The receiver verifies the raw body bytes, so this module signs exactly the bytes that are posted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


class InvalidSecret(ValueError):
    pass


def generate_secret(num_bytes: int = 24) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(num_bytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX).rstrip("=")
    try:
        # Svix secrets are sometimes unpadded: pad exactly (Python 3.13 rejects surplus padding).
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidSecret("the signing secret is not base64 after its whsec_ prefix") from error
    if not key:
        raise InvalidSecret("the signing secret is empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature over ``{id}.{timestamp}.{body}``."""
    to_sign = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt.

    Retries keep ``message_id`` (receivers dedupe on it) and carry a fresh timestamp, because a
    receiver rejects timestamps older than its tolerance (five minutes for Codat's libraries)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
