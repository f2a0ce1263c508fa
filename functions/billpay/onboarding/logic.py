"""Onboarding as the product backend drives it: start, relink, offboard, read.

Starting is idempotent by the product's id (one execution name per company); relinking starts the
same state machine for a company that is registered already; offboarding unlinks at Codat and
keeps the company readable. The workflow's own steps are in billpay.onboarding.steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from billpay.codat.errors import CodatNotFoundError
from billpay.companies.logic import update_company
from billpay.companies.models import CompanyRecord, CompanyStatus
from billpay.companies.ports import CompanyRepository
from billpay.core.errors import ConflictError, NotFoundError
from billpay.onboarding.models import (
    OnboardingInput,
    OnboardingStarted,
    OnboardingTimings,
    RegisterCompany,
    RelinkInput,
    StartOnboarding,
)
from billpay.onboarding.ports import Codat, WorkflowStarter

Clock = Callable[[], datetime]

# A relink may start from these: the connection is gone, never came, or onboarding failed.
RELINKABLE = frozenset(
    {
        CompanyStatus.NEEDS_RELINK,
        CompanyStatus.LINK_EXPIRED,
        CompanyStatus.LINK_FAILED,
        CompanyStatus.FAILED,
    }
)
# An execution may be running (parked on a wait, or between steps) in these.
ONBOARDING_UNDER_WAY = frozenset(
    {
        CompanyStatus.REGISTERED,
        CompanyStatus.PENDING_LINK,
        CompanyStatus.LINKED,
        CompanyStatus.INITIAL_READ,
    }
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def onboarding_execution_name(company_id: str) -> str:
    """One onboarding execution per company: the name makes a repeated start a no-op."""
    return f"onboard-{company_id}"


def relink_execution_name(record: CompanyRecord) -> str:
    """One relink execution per company version: two relink requests that read the same record
    start one execution. (At most 80 characters: 7 + 64 + 1 + up to 8 digits.)"""
    return f"relink-{record.company_id}-{record.version}"


def status_path(company_id: str) -> str:
    return f"/companies/{company_id}"


def start_onboarding(request: StartOnboarding, workflows: WorkflowStarter) -> OnboardingStarted:
    """Start onboarding, or answer as before when the same request was already accepted.

    Step Functions keeps execution names unique per state machine, so concurrent or retried starts
    for one company cannot create two executions. A start for the same company with other data is
    a conflict, not a silent overwrite.
    """
    name = onboarding_execution_name(request.company_id)
    payload = request.execution_input()
    started = workflows.start(name, payload)
    if started is None:
        existing = workflows.describe(name)
        if existing.input != payload:
            raise ConflictError(
                f"company {request.company_id!r} is already onboarding with different details"
            )
        started = existing
    return OnboardingStarted(
        company_id=request.company_id,
        execution_arn=started.arn,
        status_path=status_path(request.company_id),
    )


def register_company(
    command: RegisterCompany,
    companies: CompanyRepository,
    defaults: OnboardingTimings,
    now: Clock = _utcnow,
) -> tuple[CompanyRecord, OnboardingTimings]:
    """The first step: record the company (or, for a relink, claim it for this execution).

    Returns the record and the timings this execution waits by. Invalid input raises a
    pydantic ValidationError before anything is written or Codat is called. A start that finds the
    company past registration returns its record as it is (`started_earlier`); one that finds
    another execution registering it is a conflict.
    """
    if command.input.get("relink") is not None:
        relink = RelinkInput.model_validate(command.input)
        record = _claim_for_relink(relink.company_id, command.execution_arn, companies)
        return record, defaults.overridden(relink.timings)
    start = OnboardingInput.model_validate(command.input)
    at = now()
    record = CompanyRecord(
        company_id=start.company_id,
        name=start.name,
        status=CompanyStatus.REGISTERED,
        onboarding_execution_arn=command.execution_arn,
        platform_key=start.platform_key,
        redirect_url=start.redirect_url,
        tags=start.tags,
        created_at=at,
        updated_at=at,
    )
    if not companies.create(record):
        existing = companies.get(start.company_id)
        if existing is None:  # deleted between the two calls: nothing sane to return
            raise ConflictError(f"company {start.company_id!r} vanished while registering")
        registering = existing.status is CompanyStatus.REGISTERED
        if registering and existing.onboarding_execution_arn != command.execution_arn:
            raise ConflictError(
                f"company {start.company_id!r} was registered by another onboarding execution"
            )
        record = existing
    return record, defaults.overridden(start.timings)


def started_earlier(command: RegisterCompany, record: CompanyRecord) -> bool:
    """A start (not a relink) for a company that an earlier start already took past registration.

    Step Functions keeps an execution's name unique only for 90 days after it ends, so
    `POST /companies` repeated later runs a second execution for the same company, as does a
    `StartExecution` under another name. That execution must end at once and ask nothing of Codat:
    the company stays where its onboarding is or left it (READY, waiting for Link, failed: a relink
    is what moves a failed one on, `request_relink`).
    """
    return command.input.get("relink") is None and record.status is not CompanyStatus.REGISTERED


def _claim_for_relink(
    company_id: str, execution_arn: str, companies: CompanyRepository
) -> CompanyRecord:
    """Move the company back to PENDING_LINK for this execution, with the old Link forgotten.

    Only one execution can claim it: a second one finds PENDING_LINK claimed by the first.
    """

    def claim(record: CompanyRecord) -> CompanyRecord:
        if record.onboarding_execution_arn == execution_arn:
            return record  # a retried step: ours already
        if record.status not in RELINKABLE:
            raise ConflictError(
                f"company {company_id!r} is {record.status}: only a company in "
                f"{', '.join(sorted(RELINKABLE))} can relink"
            )
        return record.moved_to(CompanyStatus.PENDING_LINK).model_copy(
            update={
                "onboarding_execution_arn": execution_arn,
                "link_url": None,
                "link_issued_at": None,
                "connection_requested_by": None,
                "wait": None,
                "last_error": None,
            }
        )

    return update_company(companies, company_id, claim)


def request_relink(
    company_id: str, companies: CompanyRepository, workflows: WorkflowStarter
) -> OnboardingStarted:
    """Start a relink: a new connection and Link URL, then the same waits back to READY."""
    record = get_company(company_id, companies)
    if record.status not in RELINKABLE:
        hint = (
            f"; its Link URL is in GET {status_path(company_id)}"
            if record.status is CompanyStatus.PENDING_LINK
            else ""
        )
        raise ConflictError(
            f"company {company_id!r} is {record.status}: only a company in "
            f"{', '.join(sorted(RELINKABLE))} can relink{hint}"
        )
    payload = RelinkInput(company_id=company_id, relink=True).model_dump(
        by_alias=True, exclude_none=True
    )
    name = relink_execution_name(record)
    started = workflows.start(name, payload) or workflows.describe(name)
    return OnboardingStarted(
        company_id=company_id, execution_arn=started.arn, status_path=status_path(company_id)
    )


def offboard(
    company_id: str,
    companies: CompanyRepository,
    codat: Callable[[], Codat],
    workflows: WorkflowStarter,
) -> CompanyRecord:
    """Unlink the connection at Codat and mark the company OFFBOARDED; idempotent.

    Codat first: if it fails, nothing here changed and the caller may simply try again. The
    company's record and its Codat company stay, so its data remains readable.
    """
    record = get_company(company_id, companies)
    if record.status is CompanyStatus.OFFBOARDED:
        return record
    if record.codat_company_id and record.connection_id and record.connection_status != "Unlinked":
        # A connection deleted at Codat already has nothing left to unlink.
        with contextlib.suppress(CodatNotFoundError):
            codat().unlink_connection(record.codat_company_id, record.connection_id)
    if record.status in ONBOARDING_UNDER_WAY:
        workflows.stop(record.onboarding_execution_arn, cause="company offboarded")

    def offboarded(current: CompanyRecord) -> CompanyRecord:
        return current.moved_to(CompanyStatus.OFFBOARDED).model_copy(
            update={
                "connection_status": "Unlinked" if current.connection_id else None,
                "link_url": None,
                "wait": None,
            }
        )

    return update_company(companies, company_id, offboarded)


def get_company(company_id: str, companies: CompanyRepository) -> CompanyRecord:
    record = companies.get(company_id)
    if record is None:
        raise NotFoundError(f"company {company_id!r} is not known")
    return record
