"""Codat's ``Idempotency-Key``: the same key and body replay the stored response for 90 minutes,
the same key with another request is a 422, a key whose first request is still running is a 409.

Every answer is stored, 4xx and 5xx included (Codat's idempotency page): a retry after a 500
gets the same 500 back and learns nothing about whether the write landed. Only a 429 is released,
so the client can retry with the same key once the limit allows."""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from codat_emulator.store import utc_now


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...] = ()


class Outcome(Enum):
    PROCEED = "proceed"  # first request with this key: run it, then complete() or abandon()
    REPLAY = "replay"  # same key and request: answer with the stored response
    IN_FLIGHT = "in_flight"  # the first request with this key has not finished: 409
    MISMATCH = "mismatch"  # same key, another request: 422


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    stored: StoredResponse | None = None


@dataclass
class _Entry:
    fingerprint: str
    started_at: datetime
    response: StoredResponse | None = None
    stored_at: datetime | None = None


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyCache:
    def __init__(
        self, ttl: timedelta = timedelta(minutes=90), clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        # Stored responses in the order they were stored, so expiry never scans the whole cache.
        self._expiry: deque[tuple[datetime, str]] = deque()

    def begin(self, key: str, request_fingerprint: str) -> Decision:
        now = self.clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(request_fingerprint, now)
                return Decision(Outcome.PROCEED)
            if entry.fingerprint != request_fingerprint:
                return Decision(Outcome.MISMATCH)
            if entry.response is None:
                return Decision(Outcome.IN_FLIGHT)
            return Decision(Outcome.REPLAY, entry.response)

    def complete(self, key: str, response: StoredResponse) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.response is not None:
                return
            if response.status == 429:
                del self._entries[key]
                return
            entry.response = response
            entry.stored_at = self.clock()
            self._expiry.append((entry.stored_at, key))

    def abandon(self, key: str) -> None:
        """The request never produced an answer (the server stopping under it): forget the key."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.response is None:
                del self._entries[key]

    def _expire(self, now: datetime) -> None:
        while self._expiry and now - self._expiry[0][0] >= self.ttl:
            stored_at, key = self._expiry.popleft()
            entry = self._entries.get(key)
            if entry is not None and entry.stored_at == stored_at:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
