"""Codat's webhooks: built from the store's events, signed the Standard Webhooks way, delivered to
the consumers registered through the API, retried on Codat's schedule.

- ``build_*`` functions are pure: they shape one webhook exactly as ``Codat-Platform.json`` does
  (envelope ``{id, eventType, generatedDate, payload}``).
- ``EventTranslator`` maps a store ``DomainEvent`` to the webhooks Codat would send for it, and
  keeps what reads need: which data types changed since a connection's last read.
- ``WebhookDispatcher`` fans webhooks out to consumers and posts them from one background thread
  with httpx. A 2xx within the timeout is a success; anything else is retried after 0 s, 5 s,
  5 min, 30 min, 2 h, 5 h, 10 h, 10 h (x ``time_scale``). Options reproduce what Codat's delivery
  really does to receivers: the same message twice, messages out of order, messages late.
- ``dispatcher_for(store, config)`` gives the one dispatcher of an app's store; ``lifespan`` starts
  and stops it with the ASGI app.

Only loopback receivers are posted to unless ``allow_remote`` is set: the emulator runs offline.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import json
import logging
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from codat_emulator.config import DeliveryOptions, EmulatorConfig
from codat_emulator.signing import signature_headers
from codat_emulator.store import DomainEvent, NotFound, Store, iso, utc_now

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

# Svix's schedule, which Codat uses: the delay before each attempt (so 8 attempts in all).
MAX_LOGGED_EVENTS = 5000
MAX_LOGGED_DELIVERIES = 20000

# Data types a read can report: those an accounting Bill Pay connection syncs (the enum of
# codat-platform's DataTypeReadSummary holds more; these are the ones this emulator has).
READABLE_DATA_TYPES: tuple[str, ...] = (
    "bankAccounts",
    "billPayments",
    "bills",
    "chartOfAccounts",
    "company",
    "paymentMethods",
    "suppliers",
    "taxRates",
)
# The statuses a data type's read can end in besides Complete (Codat's PullOperation status).
READ_ERROR_STATUSES: tuple[str, ...] = (
    "FetchError",
    "MapError",
    "InternalError",
    "ProcessingError",
    "ValidationError",
    "AuthError",
    "Cancelled",
    "NotSupported",
    "RateLimitError",
    "PermissionsError",
    "PrerequisiteNotMet",
)
# Store event kind -> (data type it changes, write type when it came through the API).
_RECORD_EVENTS: dict[str, tuple[str, str]] = {
    "bill.created": ("bills", "Create"),
    "bill.updated": ("bills", "Update"),
    "supplier.created": ("suppliers", "Create"),
    "supplier.updated": ("suppliers", "Update"),
    "bank_account.created": ("bankAccounts", "Create"),
    "payment.created": ("billPayments", "Create"),
}


# ---------------------------------------------------------------------------------------------
# Payload builders (pure)


@dataclass(frozen=True)
class Webhook:
    id: str
    event_type: str
    generated_date: str
    payload: JsonDict
    company_id: str | None = None

    def envelope(self) -> JsonDict:
        return {
            "id": self.id,
            "eventType": self.event_type,
            "generatedDate": self.generated_date,
            "payload": self.payload,
        }

    def body(self) -> bytes:
        return json.dumps(self.envelope(), separators=(",", ":")).encode()


def _webhook(
    event_type: str, payload: JsonDict, generated: datetime, company_id: str | None
) -> Webhook:
    return Webhook(str(uuid.uuid4()), event_type, iso(generated), payload, company_id)


def company_reference(company: Mapping[str, Any], base_url: str) -> JsonDict:
    """``referenceCompany``: the company as the webhook names it, with a portal link (here, the
    emulator's own company summary page)."""
    reference: JsonDict = {
        "id": company["id"],
        "name": company.get("name"),
        "links": {"portal": f"{base_url.rstrip('/')}/_emulator/companies/{company['id']}"},
    }
    if company.get("description") is not None:
        reference["description"] = company["description"]
    if company.get("tags"):
        reference["tags"] = dict(company["tags"])
    return reference


def build_connection_webhook(
    event_type: Literal[
        "connection.created",
        "connection.connected",
        "connection.failed",
        "connection.disconnected",
        "connection.reconnected",
        "connection.deleted",
    ],
    reference: JsonDict,
    connection: Mapping[str, Any],
    generated: datetime,
) -> Webhook:
    payload = {"referenceCompany": reference, "connection": dict(connection)}
    return _webhook(event_type, payload, generated, reference["id"])


def build_read_completed_webhook(
    *,
    initial: bool,
    reference: JsonDict,
    connection_id: str,
    modified_from: datetime | None,
    records_modified: Mapping[str, bool],
    statuses: Mapping[str, str],
    generated: datetime,
) -> Webhook:
    """``statuses`` per data type: ``Complete``, or the error the read of it ended in."""
    data_types = [
        {
            "connectionId": connection_id,
            "dataType": data_type,
            "recordsModified": modified,
            "status": statuses[data_type],
            "issues": [],
        }
        for data_type, modified in records_modified.items()
    ]
    payload: JsonDict = {"referenceCompany": reference, "dataTypes": data_types}
    if modified_from is not None:
        payload["modifiedFromDate"] = iso(modified_from)
    event_type = "read.completed.initial" if initial else "read.completed"
    return _webhook(event_type, payload, generated, reference["id"])


def build_write_webhook(
    *,
    data_type: str,
    successful: bool,
    write_type: Literal["Create", "Update", "Delete", "UploadAttachment"],
    reference: JsonDict,
    connection_id: str,
    requested: datetime,
    completed: datetime,
    record_id: str | None,
    write_id: str | None = None,
    attachment_id: str | None = None,
    failed_status: Literal["Failed", "TimedOut"] = "Failed",
) -> Webhook:
    """``record`` is the record written (for an upload, the bill); ``attachmentId`` only for a
    successful upload, as in Codat's examples."""
    payload: JsonDict = {
        "id": write_id or str(uuid.uuid4()),
        "type": write_type,
        "referenceCompany": reference,
        "connectionId": connection_id,
        "requestedOnDate": iso(requested),
        "completedOnDate": iso(completed),
        "status": "Success" if successful else failed_status,
        "record": {"id": record_id} if record_id is not None else None,
    }
    if attachment_id is not None:
        payload["attachmentId"] = attachment_id
    outcome = "successful" if successful else "unsuccessful"
    return _webhook(f"{data_type}.write.{outcome}", payload, completed, reference["id"])


def build_rate_limit_webhook(
    *, reached: bool, daily_quota: int, quota_remaining: int, expiry: str, generated: datetime
) -> Webhook:
    payload = {"dailyQuota": daily_quota, "quotaRemaining": quota_remaining, "expiryDate": expiry}
    event_type = "client.rateLimit.reached" if reached else "client.rateLimit.reset"
    return _webhook(event_type, payload, generated, None)


def event_type_aliases(event_type: str) -> set[str]:
    """Names a consumer may have subscribed with: Codat's catalogue says ``bills.write.*``, its
    Bill Pay setup page says ``bill.write.*``; both get the webhook."""
    names = {event_type}
    data_type, dot, rest = event_type.partition(".write.")
    if dot and data_type.endswith("s"):
        names.add(f"{data_type[:-1]}.write.{rest}")
    return names


def company_tag_channels(webhook: Webhook) -> set[str]:
    """The ``tagKey:tagValue`` strings a consumer's ``companyTags`` match against: the tags of
    the webhook's company (case-sensitive). A consumer with ``companyTags`` gets only webhooks of
    companies holding one of them, so none without a company (``client.rateLimit.*``), as Svix
    channels behave."""
    reference = webhook.payload.get("referenceCompany") or {}
    return {f"{key}:{value}" for key, value in (reference.get("tags") or {}).items()}


# ---------------------------------------------------------------------------------------------
# From store events to webhooks


@dataclass
class _ReadState:
    initial_done: bool = False
    last_read: datetime | None = None
    changes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadResult:
    webhook: Webhook
    records_modified: dict[str, int]
    statuses: dict[str, str]


class EventTranslator:
    """Turns store events into Codat webhooks and remembers what changed for the next read.

    Changes made by the accounting platform itself (Link's data set, control routes) run inside
    ``outside_api()``: Codat sends no ``*.write.*`` webhook for those, only the next read reports
    them. A payment's consequence (its bill's ``bill.updated``) is not a separate bill write."""

    def __init__(self, store: Store, base_url: str) -> None:
        self.store = store
        self.base_url = base_url
        self._lock = threading.Lock()
        self._references: dict[str, JsonDict] = {}
        self._reads: dict[tuple[str, str], _ReadState] = {}
        self._local = threading.local()

    @contextlib.contextmanager
    def outside_api(self) -> Iterator[None]:
        previous = getattr(self._local, "outside_api", False)
        self._local.outside_api = True
        try:
            yield
        finally:
            self._local.outside_api = previous

    def reference(self, company_id: str) -> JsonDict:
        try:
            reference = company_reference(self.store.get_company(company_id), self.base_url)
        except NotFound:
            with self._lock:
                cached = self._references.get(company_id)
            return cached or {"id": company_id}
        with self._lock:
            self._references[company_id] = reference
        return reference

    def translate(self, event: DomainEvent) -> list[Webhook]:
        kind, data = event.kind, event.data
        if kind in _RECORD_EVENTS:
            return self._record_event(event)
        if kind == "connection.created":
            return [self._connection(event, "connection.created")]
        if kind == "connection.deleted":
            with self._lock:
                self._reads.pop((event.company_id, data["connection"]["id"]), None)
            return [self._connection(event, "connection.deleted")]
        if kind == "connection.status_changed":
            return self._status_changed(event)
        if kind in ("quota.exhausted", "quota.reset"):
            return [
                build_rate_limit_webhook(
                    reached=kind == "quota.exhausted",
                    daily_quota=int(data["dailyQuota"]),
                    quota_remaining=int(data["quotaRemaining"]),
                    expiry=str(data["expiryDate"]),
                    generated=event.occurred_at,
                )
            ]
        if kind == "attachment.created":
            return [self._attachment_uploaded(event)]
        if kind == "write.failed":
            return [self._write_refused(event)]
        if kind == "company.created":
            self.reference(event.company_id)  # cached for connection.deleted after the company
        return []

    def _attachment_uploaded(self, event: DomainEvent) -> Webhook:
        return build_write_webhook(
            data_type="bills",
            successful=True,
            write_type="UploadAttachment",
            reference=self.reference(event.company_id),
            connection_id=str(event.data["connection_id"]),
            requested=event.occurred_at,
            completed=event.occurred_at,
            record_id=str(event.data["bill_id"]),
            attachment_id=str(event.data["attachment"]["id"]),
        )

    def _write_refused(self, event: DomainEvent) -> Webhook:
        """A write the accounting platform refused: ``{dataType}.write.unsuccessful``. The record
        is the one the write was for (the bill or supplier updated, the bill an upload was for);
        a refused create made no record."""
        data = event.data
        write_type = data["write_type"]
        return build_write_webhook(
            data_type=str(data["data_type"]),
            successful=False,
            write_type=write_type,
            reference=self.reference(event.company_id),
            connection_id=str(data["connection_id"]),
            requested=event.occurred_at,
            completed=event.occurred_at,
            record_id=None if write_type == "Create" else data.get("record_id"),
        )

    def _connection(self, event: DomainEvent, event_type: Any) -> Webhook:
        return build_connection_webhook(
            event_type,
            self.reference(event.company_id),
            event.data["connection"],
            event.occurred_at,
        )

    def _status_changed(self, event: DomainEvent) -> list[Webhook]:
        data = event.data
        if "error" in data:
            return [self._connection(event, "connection.failed")]
        status, previous = data["connection"]["status"], data.get("previous_status")
        if status == "Linked":
            returning = previous in ("Deauthorized", "Unlinked")
            return [
                self._connection(
                    event, "connection.reconnected" if returning else "connection.connected"
                )
            ]
        if status in ("Deauthorized", "Unlinked") and previous == "Linked":
            return [self._connection(event, "connection.disconnected")]
        return []

    def _record_event(self, event: DomainEvent) -> list[Webhook]:
        data_type, write_type = _RECORD_EVENTS[event.kind]
        connection_id = str(event.data.get("connection_id", ""))
        noun = event.kind.split(".")[0]
        record: Mapping[str, Any] = event.data.get(noun, {})
        with self._lock:
            state = self._reads.setdefault((event.company_id, connection_id), _ReadState())
            state.changes[data_type] = state.changes.get(data_type, 0) + 1
        if getattr(self._local, "outside_api", False):
            return []
        if event.kind == "payment.created":
            if record.get("external"):
                return []
            self._local.paid_bill = record.get("billId")
        elif event.kind == "bill.updated" and getattr(self._local, "paid_bill", None) == record.get(
            "id"
        ):
            self._local.paid_bill = None
            return []  # the bill a payment just settled: the payment is the write
        return [
            build_write_webhook(
                data_type=data_type,
                successful=True,
                write_type=write_type,  # type: ignore[arg-type]
                reference=self.reference(event.company_id),
                connection_id=connection_id,
                requested=event.occurred_at,
                completed=event.occurred_at,
                record_id=record.get("id"),
            )
        ]

    def has_read(self, company_id: str, connection_id: str) -> bool:
        with self._lock:
            state = self._reads.get((company_id, connection_id))
            return state is not None and state.initial_done

    def complete_read(
        self,
        company_id: str,
        connection_id: str,
        data_types: list[str],
        now: datetime,
        loaded: Mapping[str, int] | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> ReadResult:
        """A read of ``data_types`` finishing now: the first one after linking is
        ``read.completed.initial``. ``loaded`` counts what the read brought in beyond the changes
        seen since the last read (a data set loaded by Link). ``errors`` maps a data type to the
        status its read ends in (``FetchError``, ``AuthError``, ...); a read of a connection that
        is not Linked is ``AuthError`` for every data type."""
        connection = self.store.get_connection(company_id, connection_id)
        linked = connection["status"] == "Linked"
        statuses = {
            data_type: (errors or {}).get(data_type, "Complete") if linked else "AuthError"
            for data_type in data_types
        }
        with self._lock:
            state = self._reads.setdefault((company_id, connection_id), _ReadState())
            counts = {
                data_type: (
                    state.changes.get(data_type, 0) + (loaded or {}).get(data_type, 0)
                    if statuses[data_type] == "Complete"
                    else 0
                )
                for data_type in data_types
            }
            initial = not state.initial_done
            modified_from = state.last_read or _parse_iso(connection.get("created"))
            if linked:
                for data_type in data_types:
                    if statuses[data_type] == "Complete":
                        state.changes.pop(data_type, None)
                    elif loaded and loaded.get(data_type):
                        # A failed read fetched nothing: the next read that works reports it all.
                        state.changes[data_type] = (
                            state.changes.get(data_type, 0) + loaded[data_type]
                        )
                state.initial_done = True
                state.last_read = now
        webhook = build_read_completed_webhook(
            initial=initial and linked,
            reference=self.reference(company_id),
            connection_id=connection_id,
            modified_from=modified_from,
            records_modified={k: v > 0 for k, v in counts.items()},
            statuses=statuses,
            generated=now,
        )
        return ReadResult(webhook, counts, statuses)


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass
class Attempt:
    at: str
    status_code: int | None
    error: str | None
    duration_ms: float

    def to_json(self) -> JsonDict:
        return {
            "at": self.at,
            "statusCode": self.status_code,
            "error": self.error,
            "durationMs": round(self.duration_ms, 1),
        }


DeliveryState = Literal["pending", "delivered", "failed", "abandoned"]


@dataclass
class Delivery:
    id: str
    webhook: Webhook
    body: bytes
    consumer_id: str
    url: str
    secret: str
    duplicate: bool = False
    state: DeliveryState = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    next_attempt_at: float | None = None  # monotonic

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "webhookId": self.webhook.id,
            "eventType": self.webhook.event_type,
            "companyId": self.webhook.company_id,
            "consumerId": self.consumer_id,
            "url": self.url,
            "duplicate": self.duplicate,
            "state": self.state,
            "attempts": [a.to_json() for a in self.attempts],
        }


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name would need DNS; only literal loopback addresses count


Sender = Callable[[str, bytes, Mapping[str, str], float], int]


class WebhookDispatcher:
    """Subscribed to a store: translates its events, queues one delivery per matching consumer,
    and posts them from a worker thread. ``stop()`` never hangs: what is still queued is marked
    abandoned and returned."""

    def __init__(
        self,
        store: Store,
        base_url: str,
        options: DeliveryOptions | None = None,
        clock: Callable[[], datetime] = utc_now,
        sender: Sender | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.translator = EventTranslator(store, base_url)
        self._options = options or DeliveryOptions()
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._held: dict[str, tuple[float, Delivery]] = {}
        self._seq = itertools.count()
        self._events: deque[JsonDict] = deque(maxlen=MAX_LOGGED_EVENTS)
        self._deliveries: deque[Delivery] = deque(maxlen=MAX_LOGGED_DELIVERIES)
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._client: httpx.Client | None = None
        self._sender = sender or self._post
        self._subscribed = False

    # -- wiring ---------------------------------------------------------------------------------

    def subscribe(self) -> None:
        if not self._subscribed:
            self.store.subscribe(self.notify)
            self._subscribed = True

    def start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._client = httpx.Client(follow_redirects=False, trust_env=False)
            self._thread = threading.Thread(
                target=self._run, name="codat-emulator-webhooks", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = None) -> list[JsonDict]:
        """Stop the worker; returns the deliveries that were still pending (now abandoned)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout if timeout is not None else self._options.timeout_seconds + 2)
        with self._cond:
            pending = [d for _, _, d in self._queue] + [d for _, d in self._held.values()]
            self._queue.clear()
            self._held.clear()
            for delivery in pending:
                delivery.state = "abandoned"
                delivery.next_attempt_at = None
            self._thread = None
            client, self._client = self._client, None
        if client is not None:
            client.close()
        if pending:
            log.warning("webhook dispatcher stopped with %d deliveries pending", len(pending))
        return [d.to_json() for d in pending]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- options and logs -----------------------------------------------------------------------

    @property
    def options(self) -> DeliveryOptions:
        return self._options

    def update_options(self, changes: Mapping[str, Any]) -> DeliveryOptions:
        """Validated as a whole; a bad value changes nothing."""
        merged = self._options.model_dump() | dict(changes)
        options = DeliveryOptions.model_validate(merged)
        with self._cond:
            self._options = options
            self._cond.notify_all()
        return options

    def events(self) -> list[JsonDict]:
        with self._cond:
            return list(self._events)

    def deliveries(self) -> list[JsonDict]:
        with self._cond:
            return [d.to_json() for d in self._deliveries]

    def clear_logs(self) -> None:
        with self._cond:
            self._events.clear()
            self._deliveries = deque(
                (d for d in self._deliveries if d.state == "pending"), maxlen=MAX_LOGGED_DELIVERIES
            )

    def pending_count(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._held) + self._in_flight

    def wait_until_idle(self, timeout: float) -> bool:
        """True once nothing is queued, held or in flight (for tests and demos)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._held or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    # -- producing ------------------------------------------------------------------------------

    def notify(self, event: DomainEvent) -> None:
        """The store subscriber: runs on the thread that changed the store, so it only queues."""
        for webhook in self.translator.translate(event):
            self.publish(webhook)

    def complete_read(
        self,
        company_id: str,
        connection_id: str,
        data_types: list[str] | None = None,
        loaded: Mapping[str, int] | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> ReadResult:
        """Announce a finished read (``read.completed[.initial]``) for a connection; ``errors``
        maps a data type to the error status its read ended in."""
        if data_types is None:
            data_types = self.sync_data_types(company_id, initial=False)
        result = self.translator.complete_read(
            company_id, connection_id, data_types, self.clock(), loaded, errors
        )
        self.publish(result.webhook)
        return result

    def sync_data_types(self, company_id: str, initial: bool) -> list[str]:
        """The data types the company's sync settings fetch (on first link, when ``initial``)."""
        settings = self.store.company_sync_settings(company_id).get("settings", [])
        chosen = [
            str(s["dataType"])
            for s in settings
            if s.get("dataType") in READABLE_DATA_TYPES
            and (not initial or s.get("fetchOnFirstLink", True))
        ]
        return chosen or list(READABLE_DATA_TYPES)

    def publish(self, webhook: Webhook) -> None:
        consumers = self.store.webhook_consumers()  # before our lock: never nest the two
        body = webhook.body()
        channels = company_tag_channels(webhook)
        now = time.monotonic()
        with self._cond:
            self._events.append(webhook.envelope())
            options = self._options
            for consumer in consumers:
                if consumer.disabled:
                    continue
                wanted = set(consumer.event_types)
                if wanted and not wanted & event_type_aliases(webhook.event_type):
                    continue
                if consumer.company_tags and not channels & set(consumer.company_tags):
                    continue
                copies = 2 if options.duplicate else 1
                for copy in range(copies):
                    delivery = Delivery(
                        id=str(uuid.uuid4()),
                        webhook=webhook,
                        body=body,
                        consumer_id=consumer.id,
                        url=consumer.url,
                        secret=consumer.secret,
                        duplicate=copy > 0,
                    )
                    self._deliveries.append(delivery)
                    due = now + options.delay_seconds + copy * options.duplicate_after_seconds
                    if options.out_of_order and copy == 0:
                        self._hold_or_swap(delivery, due, options)
                    else:
                        self._schedule(delivery, due)
            self._cond.notify_all()

    def _hold_or_swap(self, delivery: Delivery, due: float, options: DeliveryOptions) -> None:
        held = self._held.pop(delivery.consumer_id, None)
        if held is None:
            self._held[delivery.consumer_id] = (due + options.out_of_order_hold_seconds, delivery)
            return
        # The newer message first, the held one right behind it (the sequence number orders).
        self._schedule(delivery, due)
        self._schedule(held[1], due)

    def _schedule(self, delivery: Delivery, due: float) -> None:
        delivery.next_attempt_at = due
        heapq.heappush(self._queue, (due, next(self._seq), delivery))

    # -- the worker -----------------------------------------------------------------------------

    def _next_due(self) -> tuple[float, Delivery | None]:
        """(seconds to wait, delivery due now or None); releases held messages past their wait."""
        now = time.monotonic()
        for consumer_id, (release_at, delivery) in list(self._held.items()):
            if release_at <= now:
                del self._held[consumer_id]
                self._schedule(delivery, now)
        if self._queue and self._queue[0][0] <= now:
            return 0.0, heapq.heappop(self._queue)[2]
        waits = [release_at - now for release_at, _ in self._held.values()]
        if self._queue:
            waits.append(self._queue[0][0] - now)
        return (min(waits) if waits else 1.0), None

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    wait, delivery = self._next_due()
                    if delivery is not None:
                        self._in_flight += 1
                        options = self._options
                        break
                    self._cond.wait(max(0.001, wait))
            try:
                self._attempt(delivery, options)
            except Exception:  # a bug here must not kill delivery for everyone else
                log.exception("webhook delivery %s crashed", delivery.id)
                delivery.state = "failed"
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _attempt(self, delivery: Delivery, options: DeliveryOptions) -> None:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        retryable = True
        if not options.allow_remote and not is_loopback_url(delivery.url):
            error = "refused: not a loopback address (set allow_remote to post elsewhere)"
            retryable = False
        else:
            headers = {
                "content-type": "application/json",
                "user-agent": "codat-emulator-webhooks",
                **signature_headers(
                    delivery.secret, delivery.webhook.id, int(time.time()), delivery.body
                ),
            }
            try:
                status = self._sender(delivery.url, delivery.body, headers, options.timeout_seconds)
            except httpx.TimeoutException:
                error = f"no response within {options.timeout_seconds:g} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        attempt = Attempt(iso(self.clock()), status, error, (time.monotonic() - started) * 1000)
        with self._cond:
            delivery.attempts.append(attempt)
            if status is not None and 200 <= status < 300:
                delivery.state = "delivered"
                delivery.next_attempt_at = None
                return
            number = len(delivery.attempts)
            if self._stopping:
                delivery.state = "abandoned"
                delivery.next_attempt_at = None
            elif retryable and number < len(options.retry_schedule):
                delay = options.retry_schedule[number] * options.time_scale
                self._schedule(delivery, time.monotonic() + delay)
            else:
                delivery.state = "failed"
                delivery.next_attempt_at = None

    def _post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        client = self._client
        if client is None:
            raise httpx.TransportError("the webhook dispatcher is stopped")
        response = client.post(url, content=body, headers=dict(headers), timeout=timeout)
        return response.status_code


# ---------------------------------------------------------------------------------------------
# One dispatcher per store, started and stopped with the app

_dispatchers: weakref.WeakKeyDictionary[Store, WebhookDispatcher] = weakref.WeakKeyDictionary()
_dispatchers_lock = threading.Lock()


def dispatcher_for(store: Store, config: EmulatorConfig | None = None) -> WebhookDispatcher:
    """The store's dispatcher, created (and subscribed) on first use with ``config.webhooks``."""
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(store)
        if dispatcher is None:
            if config is None:
                raise LookupError("no webhook dispatcher for this store yet: pass the config")
            dispatcher = WebhookDispatcher(
                store, config.base_url, config.webhooks, clock=store.clock
            )
            dispatcher.subscribe()
            _dispatchers[store] = dispatcher
        return dispatcher


def lifespan(
    store: Store, config: EmulatorConfig
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """For ``Starlette(lifespan=...)``: the delivery worker runs while the app does."""
    dispatcher = dispatcher_for(store, config)

    @contextlib.asynccontextmanager
    async def run(_app: Any) -> AsyncIterator[None]:
        dispatcher.start()
        try:
            yield
        finally:
            dispatcher.stop()

    return run
