"""What each Codat webhook does to the product, applied once per webhook-id.

`process` claims the stored event (a lease, so concurrent duplicates apply it once), applies it,
and marks it APPLIED with what it did; a failure gives the lease back and raises, so the queue
retries it and, after MAX_RECEIVE_COUNT failures, parks it in the dead-letter queue.

Each effect is also safe to repeat, because a crash between the effect and the APPLIED mark makes
the next delivery apply it again: company changes are version-conditional and keep the newest
Codat `generatedDate`, signals keep the newest per kind, domain events carry the webhook id as
their `eventId` (consumers dedupe on it), and the throttle keeps the longest hold. The same rules
make out-of-order delivery converge: whatever the order, the newest fact wins.

Effects, by event type (contracts in docs/events.md and docs/architecture.md):
- connection.*: the company's connection status (newest wins); `connected`, `reconnected` and
  `failed` are also the AUTHORIZATION signal for a waiting onboarding; losing the connection
  (`disconnected`, `deleted`, status Deauthorized/Unlinked) moves a READY company to
  NEEDS_RELINK and publishes CompanyNeedsRelink; the newest event saying Linked again moves a
  NEEDS_RELINK company back to READY.
- read.completed.initial: each data type's status on the company, and the INITIAL_READ signal.
- read.completed: each data type's status, and CompanyDataRead (bills refresh: issue #9).
- bills.write.* / bill.write.*, suppliers.write.* / supplier.write.*, billPayments.write.*:
  Bill/Supplier/BillPaymentWriteSucceeded/Failed. billpay.bills applies the bill and supplier
  outcomes (a sync run; a refused write fails the product's pending request). A billPayments
  write is attached to the one product payment awaiting Codat's answer, as evidence
  (billpay.payments.logic.apply_codat_write: never a status change; a reported success stops a
  new Idempotency-Key for that payment).
- client.rateLimit.reached / reset: hold / release the Codat throttle.
- anything else, or a company the product does not know: kept and acknowledged, no effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billpay.codat.throttle import Throttle, ThrottleStore
from billpay.companies.logic import record_signal, update_company
from billpay.companies.models import (
    PRODUCT_COMPANY_ID_TAG,
    CompanyRecord,
    CompanyStatus,
    Signal,
    WaitKind,
)
from billpay.companies.ports import CompanyRepository, TaskResumer
from billpay.core.errors import NotFoundError
from billpay.events import models as events
from billpay.events.publisher import EventPublisher
from billpay.payments.logic import apply_codat_write
from billpay.payments.models import CodatWrite, PaymentPolicy
from billpay.payments.ports import PaymentStore
from billpay.webhooks.models import (
    AUTHORIZATION_EVENTS,
    LINKED,
    LOST_CONNECTION_EVENTS,
    LOST_CONNECTION_STATUSES,
    CompanyReference,
    ConnectionPayload,
    Envelope,
    EventKind,
    RateLimitPayload,
    ReadCompletedPayload,
    WritePayload,
    kind_of,
    write_succeeded,
)
from billpay.webhooks.store import ClaimResult, DynamoWebhookStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentWrites:
    """Where billPayments.write.* webhooks are attached: the payments table, and the policy
    (Codat's idempotency window) that says which attempt a write can be."""

    payments: PaymentStore
    policy: PaymentPolicy


@dataclass(frozen=True)
class Effects:
    """Where the effects land (adapters in production, fakes in unit tests)."""

    companies: CompanyRepository
    resumer: TaskResumer
    publisher: EventPublisher
    throttle: ThrottleStore
    # None where the stack has no payments (the write events are still published).
    payment_writes: PaymentWrites | None = None


@dataclass(frozen=True)
class Outcome:
    """What applying one event did; stored on the event (`outcome`) for operators and replays."""

    effect: str
    company_id: str | None = None
    facts: dict[str, Any] | None = None

    def as_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"effect": self.effect}
        if self.facts:
            item["facts"] = self.facts
        return item


# --- processing one stored event ----------------------------------------------------------------


def process(
    webhook_id: str,
    store: DynamoWebhookStore,
    effects: Effects,
    *,
    now: Callable[[], datetime],
    lease: timedelta,
) -> Outcome | None:
    """Apply the stored event once. Returns its outcome, or None when there was nothing to do."""
    claim = store.claim(webhook_id, now(), lease)
    if claim.result is not ClaimResult.CLAIMED or claim.event is None:
        # APPLIED: a duplicate or a replay. BUSY: another processor holds it (its own message
        # is retried if it fails). MISSING: expired, or never stored.
        log.info("nothing to do for webhook %s: %s", webhook_id, claim.result.value)
        return None
    event = claim.event
    try:
        outcome = apply(Envelope.model_validate_json(event.body), webhook_id, effects)
    except Exception as exc:
        store.release(webhook_id, f"{type(exc).__name__}: {exc}")
        raise
    store.complete(webhook_id, outcome.as_item(), outcome.company_id, now())
    return outcome


def apply(envelope: Envelope, webhook_id: str, effects: Effects) -> Outcome:
    kind = kind_of(envelope.event_type)
    if kind is EventKind.IGNORED:
        return Outcome("ignored")
    if kind is EventKind.RATE_LIMIT_REACHED:
        return _rate_limit_reached(envelope, effects)
    if kind is EventKind.RATE_LIMIT_RESET:
        effects.throttle.release(reset_at=envelope.generated_date)
        return Outcome("throttleReleased")
    reference = CompanyReference.model_validate(envelope.payload.get("referenceCompany"))
    company_id = find_company(reference, effects.companies)
    if company_id is None:
        log.warning(
            "webhook for a company the product does not know",
            extra={"codat_company_id": reference.id, "event_type": envelope.event_type},
        )
        return Outcome("unknownCompany", facts={"codatCompanyId": reference.id})
    try:
        if kind is EventKind.CONNECTION:
            return _connection(envelope, webhook_id, company_id, effects)
        if kind in (EventKind.INITIAL_READ, EventKind.READ):
            return _read_completed(envelope, webhook_id, company_id, kind, effects)
        return _write_result(envelope, webhook_id, company_id, kind, effects)
    except NotFoundError:  # the tag named a company that is gone
        log.warning("webhook for a deleted company", extra={"company_id": company_id})
        return Outcome("unknownCompany", facts={"codatCompanyId": reference.id})


def find_company(reference: CompanyReference, companies: CompanyRepository) -> str | None:
    """The product's company id: the tag set on the Codat company, else a lookup by Codat's id."""
    tagged = reference.tags.get(PRODUCT_COMPANY_ID_TAG)
    if tagged:
        return tagged
    return companies.find_by_codat_company_id(reference.id)


# --- effects ------------------------------------------------------------------------------------


def _connection(envelope: Envelope, webhook_id: str, company_id: str, fx: Effects) -> Outcome:
    payload = ConnectionPayload.model_validate(envelope.payload)
    connection, at = payload.connection, envelope.generated_date
    lost = (
        envelope.event_type in LOST_CONNECTION_EVENTS
        or connection.status in LOST_CONNECTION_STATUSES
    )
    # The newest event says the connection works again: a company that lost it is READY again
    # (so any delivery order of a loss and its recovery ends in the same state).
    restored = not lost and connection.status == LINKED

    def change(record: CompanyRecord) -> CompanyRecord | None:
        if record.connection_id not in (None, connection.id):
            return None  # another (older) connection of this company
        if record.connection_event_at is not None and record.connection_event_at > at:
            return None  # a newer connection event already applied
        updated = record.model_copy(
            update={
                "connection_id": connection.id,
                "connection_status": connection.status,
                "connection_event_at": at,
            }
        )
        if lost and record.status is CompanyStatus.READY:
            updated = updated.moved_to(CompanyStatus.NEEDS_RELINK)
        elif restored and record.status is CompanyStatus.NEEDS_RELINK:
            updated = updated.moved_to(CompanyStatus.READY)
        return updated

    record = update_company(fx.companies, company_id, change)
    facts: dict[str, Any] = {"connectionId": connection.id, "connectionStatus": connection.status}
    # Published whenever this event is what the company's status rests on, so that a retry after
    # a failed publish publishes again (same eventId).
    if (
        lost
        and record.status is CompanyStatus.NEEDS_RELINK
        and record.connection_event_at == at
        and record.connection_id == connection.id
    ):
        fx.publisher.publish(
            [
                events.CompanyNeedsRelink(
                    event_id=webhook_id,
                    occurred_at=at,
                    company_id=company_id,
                    codat_company_id=payload.reference_company.id,
                    connection_id=connection.id,
                    connection_status=connection.status,
                    reason=envelope.event_type,
                )
            ]
        )
        facts["needsRelink"] = True
    if envelope.event_type in AUTHORIZATION_EVENTS:
        failed = envelope.event_type == "connection.failed"
        signal = Signal(
            kind=WaitKind.AUTHORIZATION,
            event_type=envelope.event_type,
            occurred_at=at,
            webhook_id=webhook_id,
            detail={
                "connectionId": connection.id,
                "connectionStatus": connection.status,
                "outcome": "failed" if failed else "linked",
                "reason": connection.error_reason() if failed else None,
            },
        )
        facts["resumedWait"] = _signal(fx, company_id, signal)
    return Outcome("connection", company_id, facts)


def _read_completed(
    envelope: Envelope, webhook_id: str, company_id: str, kind: EventKind, fx: Effects
) -> Outcome:
    payload = ReadCompletedPayload.model_validate(envelope.payload)
    at = envelope.generated_date
    statuses = {read.data_type: read.status for read in payload.data_types}

    def change(record: CompanyRecord) -> CompanyRecord | None:
        newer = {
            data_type: status
            for data_type, status in statuses.items()
            if (seen := record.data_types_read_at.get(data_type)) is None or seen <= at
        }
        if not newer:
            return None
        return record.model_copy(
            update={
                "data_types": {**record.data_types, **newer},
                "data_types_read_at": {
                    **record.data_types_read_at,
                    **dict.fromkeys(newer, at),
                },
                "last_read_at": max(at, record.last_read_at or at),
            }
        )

    update_company(fx.companies, company_id, change)
    facts: dict[str, Any] = {"dataTypes": statuses}
    if kind is EventKind.INITIAL_READ:
        connection_ids = [r.connection_id for r in payload.data_types if r.connection_id]
        signal = Signal(
            kind=WaitKind.INITIAL_READ,
            event_type=envelope.event_type,
            occurred_at=at,
            webhook_id=webhook_id,
            detail={
                "connectionId": connection_ids[0] if connection_ids else None,
                "dataTypes": statuses,
            },
        )
        facts["resumedWait"] = _signal(fx, company_id, signal)
        return Outcome("initialRead", company_id, facts)
    fx.publisher.publish(
        [
            events.CompanyDataRead(
                event_id=webhook_id,
                occurred_at=at,
                company_id=company_id,
                codat_company_id=payload.reference_company.id,
                data_types=tuple(
                    events.DataTypeRead(
                        data_type=r.data_type, status=r.status, records_modified=r.records_modified
                    )
                    for r in payload.data_types
                ),
                modified_from=payload.modified_from_date,
            )
        ]
    )
    return Outcome("read", company_id, facts)


_WRITE_EVENTS: dict[tuple[EventKind, bool], type[events.WriteOutcome]] = {
    (EventKind.BILL_WRITE, True): events.BillWriteSucceeded,
    (EventKind.BILL_WRITE, False): events.BillWriteFailed,
    (EventKind.SUPPLIER_WRITE, True): events.SupplierWriteSucceeded,
    (EventKind.SUPPLIER_WRITE, False): events.SupplierWriteFailed,
    (EventKind.BILL_PAYMENT_WRITE, True): events.BillPaymentWriteSucceeded,
    (EventKind.BILL_PAYMENT_WRITE, False): events.BillPaymentWriteFailed,
}


def _write_result(
    envelope: Envelope, webhook_id: str, company_id: str, kind: EventKind, fx: Effects
) -> Outcome:
    payload = WritePayload.model_validate(envelope.payload)
    record_id = payload.record.id if payload.record else None
    event_class = _WRITE_EVENTS[(kind, write_succeeded(envelope.event_type))]
    fx.publisher.publish(
        [
            event_class(
                event_id=webhook_id,
                occurred_at=envelope.generated_date,
                company_id=company_id,
                codat_company_id=payload.reference_company.id,
                push_id=payload.id,
                record_id=record_id,
                write_type=payload.type,
                status=payload.status,
                connection_id=payload.connection_id,
            )
        ]
    )
    facts: dict[str, Any] = {"pushId": payload.id, "recordId": record_id, "status": payload.status}
    if kind is EventKind.BILL_PAYMENT_WRITE and fx.payment_writes is not None:
        write = CodatWrite(
            write_id=payload.id,
            webhook_id=webhook_id,
            successful=write_succeeded(envelope.event_type),
            status=payload.status,
            record_id=record_id,
            requested_at=payload.requested_on,
            completed_at=payload.completed_on,
        )
        applied = apply_codat_write(
            company_id, write, fx.payment_writes.payments, fx.payment_writes.policy
        )
        facts["payment"] = applied.facts()
    return Outcome(event_class.DETAIL_TYPE, company_id, {k: v for k, v in facts.items() if v})


def _rate_limit_reached(envelope: Envelope, fx: Effects) -> Outcome:
    payload = RateLimitPayload.model_validate(envelope.payload)
    fx.throttle.hold(
        Throttle(
            until=payload.expiry_date,
            reason="client.rateLimit.reached",
            set_at=envelope.generated_date,
        )
    )
    return Outcome("throttleHeld", facts={"until": payload.expiry_date.isoformat()})


def _signal(fx: Effects, company_id: str, signal: Signal) -> bool:
    """Record the signal for the company's wait; True when it resumed a waiting onboarding."""
    return record_signal(fx.companies, fx.resumer, company_id, signal).delivered is not None
