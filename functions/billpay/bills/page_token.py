"""Opaque page tokens: where a listing resumes, signed so that only tokens we issued are taken.

A token is `<payload>.<mac>`, both base64url: the payload names the company and the listing
(filters included) it continues and carries DynamoDB's LastEvaluatedKey; the mac is HMAC-SHA256
over the payload with a key kept in Secrets Manager. A token from another company or another
listing, an edited token, or anything else is refused before any read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from billpay.bills.ports import StartKey
from billpay.core.errors import BillPayError

_VERSION = 1
_MAC_BYTES = 16
_MAX_TOKEN_LENGTH = 2048


class InvalidPageTokenError(BillPayError):
    code = "InvalidPageToken"


class PageTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the page token key must be at least 32 bytes")
        self._key = key

    def issue(self, company_id: str, listing: str, start: StartKey) -> str:
        payload = json.dumps(
            {"v": _VERSION, "c": company_id, "l": listing, "k": start},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def read(self, token: str, company_id: str, listing: str) -> StartKey:
        """The start key in `token`, if we issued it for this company and listing."""
        payload = self._verified(token)
        try:
            data: Any = json.loads(payload)
        except ValueError as error:
            raise _invalid() from error
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise _invalid()
        if data.get("c") != company_id or data.get("l") != listing:
            raise InvalidPageTokenError(
                "pageToken belongs to another listing: send the same filters it came with"
            )
        start = data.get("k")
        if not isinstance(start, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in start.items()
        ):
            raise _invalid()
        return start

    def _verified(self, token: str) -> bytes:
        if len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 1:
            raise _invalid()
        encoded_payload, encoded_mac = token.split(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError) as error:
            raise _invalid() from error
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise _invalid()
        return payload

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _invalid() -> InvalidPageTokenError:
    return InvalidPageTokenError("pageToken is not a token this API issued")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or not ASCII")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
