"""Idempotency-Keys for Codat's writes: one per intent, the same on every retry of that intent.

Kept apart from the client so that code which only derives keys (the payment records, the API)
does not import Codat's SDK; `billpay.codat.client` re-exports it.
"""

from __future__ import annotations

import uuid

_IDEMPOTENCY_NAMESPACE = uuid.UUID("5c6f7a52-31e4-4d8c-9a54-8c2f3b1f5e0d")


def idempotency_key(intent_id: str) -> str:
    """The Idempotency-Key for one intent (a GUID, as Codat wants): the same on every retry."""
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, intent_id))
