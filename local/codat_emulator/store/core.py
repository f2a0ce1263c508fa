"""What every part of the store shares: time and money helpers, the errors the HTTP layer maps to
Codat's error body, the events the store publishes, and ``StoreCore``: the one lock and the event
machinery every aggregate changes state through."""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
JsonDict = dict[str, Any]
# How a change announces what it did: emit(kind, company_id, data).
Emit = Callable[[str, str, JsonDict], None]

CENT = Decimal("0.01")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Codat's date-time shape: ISO 8601 in UTC with a Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def money_json(value: Decimal | None) -> float | None:
    # JSON numbers, as Codat sends them; 2-place decimals round-trip exactly through float repr.
    return None if value is None else float(value)


def new_id() -> str:
    return str(uuid.uuid4())


def copy_json(value: JsonDict) -> JsonDict:
    return dict(_copy_value(value))


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_value(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Errors


class StoreError(Exception):
    """A request the store refuses; the message is safe to show to the API client."""


class NotFound(StoreError):
    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"{kind} with id '{record_id}' was not found.")
        self.kind = kind
        self.record_id = record_id


@dataclass(frozen=True)
class ValidationItem:
    message: str
    item_id: str | None = None
    validator_name: str | None = None


class ValidationFailed(StoreError):
    def __init__(self, errors: list[ValidationItem], message: str | None = None) -> None:
        super().__init__(message or "; ".join(e.message for e in errors))
        self.errors = errors


class NotLinked(StoreError):
    """A write on a connection that is not Linked."""


class Conflict(StoreError):
    pass


class NotYetRead(Conflict):
    """A listing before the connection's data set has ever been read (Codat's 409)."""

    def __init__(self) -> None:
        super().__init__("The data set has not been requested.")


# ---------------------------------------------------------------------------------------------
# Events and paging


@dataclass(frozen=True)
class DomainEvent:
    kind: str
    company_id: str
    data: dict[str, Any]
    occurred_at: datetime


EventCallback = Callable[[DomainEvent], None]


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_after: int | None  # the seq to continue after, None when this is the last page


# ---------------------------------------------------------------------------------------------
# The core every aggregate builds on


class StoreCore:
    """The clock, one re-entrant lock for the whole store (a change may span aggregates, e.g.
    deleting a company drops its ledgers, quota and settings), a sequence shared by every ordered
    index, and events published after the lock is released."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._local = threading.local()
        self._subscribers: list[EventCallback] = []
        self._seq = itertools.count(1)

    def subscribe(self, callback: EventCallback) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: EventCallback) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    @contextmanager
    def _change(self) -> Iterator[Emit]:
        """Hold the lock for one change; publish its events once the outermost change is done.

        Callbacks run outside the lock so they may call back into the store or block on I/O."""
        depth: int = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.pending = []
        self._local.depth = depth + 1
        try:
            with self._lock:
                yield self._emit
        finally:
            self._local.depth = depth
        if depth == 0:
            self._publish(self._local.pending)

    def _emit(self, kind: str, company_id: str, data: JsonDict) -> None:
        self._local.pending.append(DomainEvent(kind, company_id, data, self.clock()))

    def _publish(self, events: list[DomainEvent]) -> None:
        self._local.pending = []
        if not events:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for event in events:
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    log.exception("store subscriber failed on %s", event.kind)
