"""Starting an SMB's onboarding and registering the company: idempotent by the product's id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billpay.companies.models import CompanyRecord, CompanyStatus
from billpay.companies.ports import CompanyRepository
from billpay.core.errors import ConflictError
from billpay.onboarding.models import OnboardingStarted, RegisterCompany, StartOnboarding
from billpay.onboarding.ports import WorkflowStarter


def onboarding_execution_name(company_id: str) -> str:
    """One onboarding execution per company: the name makes a repeated start a no-op."""
    return f"onboard-{company_id}"


def start_onboarding(request: StartOnboarding, workflows: WorkflowStarter) -> OnboardingStarted:
    """Start onboarding, or answer as before when the same request was already accepted.

    Step Functions keeps execution names unique per state machine, so concurrent or retried starts
    for one company cannot create two executions. A start for the same company with other data is
    a conflict, not a silent overwrite.
    """
    name = onboarding_execution_name(request.company_id)
    payload: dict[str, Any] = {"companyId": request.company_id, "name": request.name}
    started = workflows.start(name, payload)
    if started is not None:
        return OnboardingStarted(company_id=request.company_id, execution_arn=started.arn)
    existing = workflows.describe(name)
    if existing.input != payload:
        raise ConflictError(
            f"company {request.company_id!r} is already onboarding with different details"
        )
    return OnboardingStarted(company_id=request.company_id, execution_arn=existing.arn)


def register_company(
    command: RegisterCompany, companies: CompanyRepository, now: datetime | None = None
) -> CompanyRecord:
    """Record the company; a retried step finds the record it wrote and returns it unchanged."""
    at = now or datetime.now(UTC)
    record = CompanyRecord(
        company_id=command.company_id,
        name=command.name,
        status=CompanyStatus.REGISTERED,
        onboarding_execution_arn=command.execution_arn,
        created_at=at,
        updated_at=at,
    )
    if companies.create(record):
        return record
    existing = companies.get(command.company_id)
    if existing is None:  # deleted between the two calls: nothing sane to return
        raise ConflictError(f"company {command.company_id!r} vanished while registering")
    if existing.onboarding_execution_arn != command.execution_arn:
        raise ConflictError(
            f"company {command.company_id!r} was registered by another onboarding execution"
        )
    return existing


def get_company(company_id: str, companies: CompanyRepository) -> CompanyRecord | None:
    return companies.get(company_id)
