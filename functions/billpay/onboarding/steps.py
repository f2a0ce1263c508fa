"""The onboarding state machine's steps (infra/constructs/onboarding.py), as plain functions.

Each step reads the company, changes it through `update_company` (conditional on its version,
along ALLOWED_TRANSITIONS) and, where it must, calls Codat through the `Codat` port. Every step is
safe to run again: Step Functions retries a step whose Lambda failed, and a retried step finds
what its earlier attempt did and carries on from there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from billpay.codat.errors import codat_error_detail
from billpay.codat.models import CodatConnection, CompanyData
from billpay.companies.logic import WaitOutcome, arm_wait, signal_output, update_company
from billpay.companies.models import (
    PRODUCT_COMPANY_ID_TAG,
    CompanyRecord,
    CompanyStatus,
    InvalidTransitionError,
    LastError,
    Signal,
    Wait,
    WaitKind,
)
from billpay.companies.ports import CompanyRepository, TaskResumer
from billpay.core.errors import BillPayError
from billpay.core.observability import logger
from billpay.events.publisher import EventPublisher
from billpay.onboarding.events import CompanyReady, LinkReady, OnboardingFailed
from billpay.onboarding.logic import get_company
from billpay.onboarding.models import OnboardingTimings, RecordFailure, codat_company_name
from billpay.onboarding.ports import Codat

Clock = Callable[[], datetime]

# The data types Bill Pay works from: one of these ending the initial read in anything but
# Complete (AuthError, FetchError, ...) fails onboarding. Others are recorded, not required.
REQUIRED_DATA_TYPES = ("bankAccounts", "bills", "suppliers")
COMPLETE = "Complete"

# What a reconcile step answers, in the shape of a resumed wait (signal_output), so the state
# machine reads `detail.outcome` the same way whichever woke it.
RECONCILE_EVENT_TYPE = "reconcile"


class OnboardingStepError(BillPayError):
    """A step cannot run on the company as it is (e.g. no Link issued yet)."""

    code = "OnboardingStepError"


class RequiredDataTypeFailed(BillPayError):
    code = "RequiredDataTypeFailed"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


# --- Codat company and connection ----------------------------------------------------------


def create_codat_company(
    company_id: str, companies: CompanyRepository, codat: Codat, now: Clock = _utcnow
) -> CompanyRecord:
    """Create the company at Codat, tagged with the product's id, or find the one created before.

    Create-company takes no Idempotency-Key: an attempt that failed after Codat applied it (a 500,
    a timeout) leaves a company behind. So once an attempt has been made, the company is looked up
    by its tag before creating again: exactly one Codat company per product company.
    """
    record = get_company(company_id, companies)
    if record.codat_company_id:
        return record
    if record.codat_company_requested_at is not None:
        found = codat.find_company_by_tag(PRODUCT_COMPANY_ID_TAG, company_id)
        if found is not None:
            logger.info("found the Codat company an earlier attempt created")
            return _store_codat_company(companies, company_id, found.id)
    requested_at = now()
    update_company(
        companies,
        company_id,
        lambda r: r.model_copy(update={"codat_company_requested_at": requested_at}),
    )
    created = codat.create_company(
        codat_company_name(record.name), {**record.tags, PRODUCT_COMPANY_ID_TAG: company_id}
    )
    return _store_codat_company(companies, company_id, created.id)


def _store_codat_company(
    companies: CompanyRepository, company_id: str, codat_company_id: str
) -> CompanyRecord:
    def store(record: CompanyRecord) -> CompanyRecord:
        if record.codat_company_id not in (None, codat_company_id):
            raise OnboardingStepError(
                f"company {company_id!r} already maps to Codat company {record.codat_company_id}"
            )
        return record.model_copy(update={"codat_company_id": codat_company_id})

    return update_company(companies, company_id, store)


def create_connection(
    company_id: str,
    execution_arn: str,
    companies: CompanyRepository,
    codat: Codat,
    events: EventPublisher,
    now: Clock = _utcnow,
) -> CompanyRecord:
    """Create the connection for the SMB's platform, keep its Link URL, publish LinkReady.

    Creating a connection takes no Idempotency-Key either: a retry within the same execution
    reuses a pending connection on the platform rather than creating a second one.
    """
    record = get_company(company_id, companies)
    if record.codat_company_id is None or record.platform_key is None:
        raise OnboardingStepError(f"company {company_id!r} has no Codat company or platform yet")
    if record.connection_requested_by == execution_arn and record.link_url is not None:
        _publish_link_ready(events, record, execution_arn)  # again: consumers dedupe on eventId
        return record
    connection: CodatConnection | None = None
    if record.connection_requested_by == execution_arn:
        connection = _pending_connection(codat, record.codat_company_id, record.platform_key)
    if connection is None:
        update_company(
            companies,
            company_id,
            lambda r: r.model_copy(update={"connection_requested_by": execution_arn}),
        )
        connection = codat.create_connection(record.codat_company_id, record.platform_key)
    issued_at = now()

    def link_issued(current: CompanyRecord) -> CompanyRecord:
        return current.moved_to(CompanyStatus.PENDING_LINK).model_copy(
            update={
                "connection_id": connection.id,
                "connection_status": connection.status,
                "link_url": connection.link_url,
                "link_issued_at": issued_at,
                "onboarding_execution_arn": execution_arn,
                "data_types": {},
            }
        )

    record = update_company(companies, company_id, link_issued)
    _publish_link_ready(events, record, execution_arn)
    return record


def _pending_connection(
    codat: Codat, codat_company_id: str, platform_key: str
) -> CodatConnection | None:
    pending = [
        c
        for c in codat.list_connections(codat_company_id)
        if c.status == "PendingAuth" and c.platform_key == platform_key
    ]
    return pending[-1] if pending else None


def _publish_link_ready(events: EventPublisher, record: CompanyRecord, execution_arn: str) -> None:
    if not (record.connection_id and record.link_url and record.link_issued_at):
        raise OnboardingStepError(f"company {record.company_id!r} has no Link to announce")
    events.publish(
        [
            LinkReady(
                event_id=f"{execution_name(execution_arn)}:link-ready:{record.connection_id}",
                occurred_at=record.link_issued_at,
                company_id=record.company_id,
                codat_company_id=record.codat_company_id,
                connection_id=record.connection_id,
                platform_key=record.platform_key or "",
                link_url=record.link_url,
                link_issued_at=record.link_issued_at,
                redirect_url=record.redirect_url,
            )
        ]
    )


# --- waits ---------------------------------------------------------------------------------


def wait_for(
    company_id: str,
    kind: WaitKind,
    token: str,
    companies: CompanyRepository,
    resumer: TaskResumer,
    now: Clock = _utcnow,
) -> WaitOutcome:
    """Park the task token on the company until the webhook of `kind` for this Link arrives.

    A signal that arrived before (an early webhook) resumes the execution at once.
    """
    record = get_company(company_id, companies)
    if record.link_issued_at is None or record.connection_id is None:
        raise OnboardingStepError(f"company {company_id!r} has no Link to wait for")
    wait = Wait(
        kind=kind,
        token=token,
        not_before=record.link_issued_at,
        armed_at=now(),
        connection_id=record.connection_id,
    )
    return arm_wait(companies, resumer, company_id, wait)


def reconcile_authorization(
    company_id: str,
    timings: OnboardingTimings,
    companies: CompanyRepository,
    codat: Codat,
    now: Clock = _utcnow,
) -> dict[str, Any]:
    """No webhook within the interval: read the connection once and say where it stands.

    `detail.outcome` is "linked", "failed", "expired" (pending past the Link expiry) or
    "pending" (keep waiting).
    """
    record = get_company(company_id, companies)
    if record.codat_company_id is None or record.connection_id is None:
        raise OnboardingStepError(f"company {company_id!r} has no connection to reconcile")
    connection = codat.get_connection(record.codat_company_id, record.connection_id)
    update_company(
        companies,
        company_id,
        lambda r: r.model_copy(update={"connection_status": connection.status}),
    )
    at = now()
    reason = None
    if connection.status == "Linked":
        outcome = "linked"
    elif connection.status == "PendingAuth":
        expires_at = (record.link_issued_at or at) + timedelta(seconds=timings.link_expiry_seconds)
        outcome = "expired" if at >= expires_at else "pending"
        if outcome == "expired":
            reason = f"the Link URL was not used within {timings.link_expiry_seconds} s"
    else:
        outcome = "failed"
        reason = f"the connection is {connection.status}"
    return _reconciled(
        WaitKind.AUTHORIZATION,
        at,
        {
            "connectionId": connection.id,
            "connectionStatus": connection.status,
            "outcome": outcome,
            "reason": reason,
        },
    )


def reconcile_initial_read(
    company_id: str,
    authorized_at: datetime,
    timings: OnboardingTimings,
    companies: CompanyRepository,
    codat: Codat,
    now: Clock = _utcnow,
) -> dict[str, Any]:
    """No read.completed.initial within the interval: ask Codat whether the books are readable.

    `detail.outcome` is "complete", "pending" or "timedOut" (still not readable after the
    initial-read timeout, counted from the authorization).
    """
    record = get_company(company_id, companies)
    if record.codat_company_id is None or record.connection_id is None:
        raise OnboardingStepError(f"company {company_id!r} has no connection to reconcile")
    at = now()
    reason = None
    if codat.has_read_data(record.codat_company_id, record.connection_id):
        outcome = "complete"
    elif at >= authorized_at + timedelta(seconds=timings.initial_read_timeout_seconds):
        outcome = "timedOut"
        reason = (
            f"Codat's initial read did not complete within "
            f"{timings.initial_read_timeout_seconds} s of the authorization"
        )
    else:
        outcome = "pending"
    detail = {"connectionId": record.connection_id, "dataTypes": {}, "outcome": outcome}
    if reason:
        detail["reason"] = reason
    return _reconciled(WaitKind.INITIAL_READ, at, detail)


def _reconciled(kind: WaitKind, at: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    return signal_output(
        Signal(
            kind=kind,
            event_type=RECONCILE_EVENT_TYPE,
            occurred_at=at,
            webhook_id=f"{RECONCILE_EVENT_TYPE}:{kind}:{at.isoformat()}",
            detail=detail,
        )
    )


# --- what the waits brought ----------------------------------------------------------------


def record_authorization(
    company_id: str, signal: dict[str, Any], companies: CompanyRepository
) -> CompanyRecord:
    """The SMB authorized: LINKED, with Codat's connection status."""
    received = Signal.model_validate(signal)
    status = str(received.detail.get("connectionStatus") or "Linked")

    def linked(record: CompanyRecord) -> CompanyRecord:
        return record.moved_to(CompanyStatus.LINKED).model_copy(
            update={"connection_status": status}
        )

    return update_company(companies, company_id, linked)


def record_initial_read(
    company_id: str, signal: dict[str, Any], companies: CompanyRepository
) -> CompanyRecord:
    """Codat's first read finished: INITIAL_READ, with each data type's status.

    Raises RequiredDataTypeFailed (after recording the statuses) when a data type Bill Pay needs
    did not complete.
    """
    received = Signal.model_validate(signal)
    raw = received.detail.get("dataTypes") or {}
    if not isinstance(raw, dict):
        raise OnboardingStepError(f"dataTypes must be an object, got {type(raw).__name__}")
    data_types = {str(k): str(v) for k, v in raw.items()}

    def read(record: CompanyRecord) -> CompanyRecord:
        return record.moved_to(CompanyStatus.INITIAL_READ).model_copy(
            update={"data_types": {**record.data_types, **data_types}}
        )

    record = update_company(companies, company_id, read)
    failed = {t: s for t, s in data_types.items() if t in REQUIRED_DATA_TYPES and s != COMPLETE}
    if failed:
        listed = ", ".join(f"{t} ({s})" for t, s in sorted(failed.items()))
        raise RequiredDataTypeFailed(f"Codat's initial read failed for {listed}")
    return record


def load_company_data(company_id: str, companies: CompanyRepository, codat: Codat) -> CompanyData:
    """Read the suppliers, open bills and accounts to pay from (what exists; the bills sync is
    issue #9). A 409 while Codat is still syncing raises CodatStillSyncingError: retried."""
    record = get_company(company_id, companies)
    if record.codat_company_id is None or record.connection_id is None:
        raise OnboardingStepError(f"company {company_id!r} has no connection to read from")
    data = codat.read_company_data(record.codat_company_id, record.connection_id)
    logger.info("company data readable", extra={"company_data": data.model_dump(by_alias=True)})
    return data


def mark_ready(
    company_id: str,
    execution_arn: str,
    company_data: dict[str, Any],
    companies: CompanyRepository,
    events: EventPublisher,
    now: Clock = _utcnow,
) -> CompanyRecord:
    def ready(record: CompanyRecord) -> CompanyRecord:
        return record.moved_to(CompanyStatus.READY).model_copy(
            update={"wait": None, "last_error": None}
        )

    record = update_company(companies, company_id, ready)
    events.publish(
        [
            CompanyReady(
                event_id=f"{execution_name(execution_arn)}:ready",
                occurred_at=now(),
                company_id=company_id,
                codat_company_id=record.codat_company_id,
                connection_id=record.connection_id or "",
                data_types=record.data_types,
                company_data=company_data,
            )
        ]
    )
    return record


# --- failure -------------------------------------------------------------------------------


def record_failure(
    command: RecordFailure,
    companies: CompanyRepository,
    events: EventPublisher,
    now: Clock = _utcnow,
) -> CompanyRecord:
    """Move the company to the failed status with what went wrong (Codat's correlationId
    included), and publish OnboardingFailed. An offboarded company stays offboarded. A READY
    company stays READY with no lastError: its onboarding is done, and a step that failed after
    MarkReady (say its task timed out once READY was written) fails the execution for the
    operator, not the company."""
    at = now()
    error = failure_of(command, at)
    status = CompanyStatus(command.status)

    def failed(record: CompanyRecord) -> CompanyRecord | None:
        if record.status is CompanyStatus.OFFBOARDED:
            return None
        if record.status is CompanyStatus.READY:
            logger.warning(
                "failure after READY not recorded on the company",
                extra={"code": error.code, "error_message": error.message},
            )
            return None
        try:
            moved = record.moved_to(status)
        except InvalidTransitionError:
            logger.warning("failure not applied", extra={"from": record.status, "to": status})
            moved = record
        return moved.model_copy(update={"last_error": error, "wait": None})

    record = update_company(companies, command.company_id, failed)
    if record.status is status:
        events.publish(
            [
                OnboardingFailed(
                    event_id=f"{execution_name(command.execution_arn)}:failed",
                    occurred_at=at,
                    company_id=record.company_id,
                    codat_company_id=record.codat_company_id,
                    status=status,
                    code=error.code,
                    message=error.message,
                    correlation_id=error.correlation_id,
                )
            ]
        )
    return record


# The code recorded for each outcome a wait or reconcile can end onboarding with.
_OUTCOME_CODES = {
    "failed": "LinkFailed",
    "expired": "LinkExpired",
    "timedOut": "InitialReadTimedOut",
}


def failure_of(command: RecordFailure, at: datetime) -> LastError:
    """What to record: a caught task error ({Error, Cause}) or the reason the workflow gave."""
    if command.error is None:
        outcome = command.detail or {}
        return LastError(
            code=_OUTCOME_CODES.get(str(outcome.get("outcome")), "OnboardingFailed"),
            message=str(outcome.get("reason") or command.status),
            at=at,
        )
    code = str(command.error.get("Error") or "Error")
    cause = str(command.error.get("Cause") or "")
    message = cause
    try:
        payload = json.loads(cause)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "errorMessage" in payload:
        message = str(payload["errorMessage"])
    codat = codat_error_detail(message)
    if codat is not None:
        return LastError(
            code=code,
            message=str(codat["message"]),
            correlation_id=codat.get("correlationId"),
            at=at,
        )
    return LastError(code=code, message=message[:1000] or code, at=at)
