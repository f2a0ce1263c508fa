"""Codat's rate limiting as a client sees it: a daily quota per company (counted by the store),
at most N concurrent requests per company, ``X-Rate-Limit-*`` headers on every response and
``Retry-After`` on a 429."""

from __future__ import annotations

import math
import re
import threading
from datetime import datetime

from codat_emulator.store import QuotaState, iso

_COMPANY_PATH = re.compile(r"^/companies/([^/]+)")


def company_from_path(path: str) -> str:
    """The company a request counts against; "" for client-level calls (companies, webhooks)."""
    match = _COMPANY_PATH.match(path)
    return match.group(1) if match else ""


def rate_limit_headers(state: QuotaState) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-rate-limit-limit", str(state.limit).encode()),
        (b"x-rate-limit-remaining", str(state.remaining).encode()),
        (b"x-rate-limit-reset", iso(state.resets_at).encode()),
    ]


def seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


class ConcurrencyLimiter:
    """Counts requests in flight per company; the one over the limit gets a 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    def try_acquire(self, key: str) -> bool:
        with self._lock:
            current = self._in_flight.get(key, 0)
            if current >= self.limit:
                return False
            self._in_flight[key] = current + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            current = self._in_flight.get(key, 0) - 1
            if current <= 0:
                self._in_flight.pop(key, None)
            else:
                self._in_flight[key] = current
