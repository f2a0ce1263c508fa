"""Tasks of the onboarding state machine that call Codat: only these functions import its SDK.

Codat's failures surface as billpay.codat.errors, whose names the state machine's Retry/Catch
match (retry with back-off, wait out a rate limit, or record the failure).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from billpay.codat.client import codat_client
from billpay.companies.models import WaitKind
from billpay.companies.ports import CompanyRepository
from billpay.core.observability import logger
from billpay.events.publisher import EventPublisher
from billpay.onboarding import steps
from billpay.onboarding.handlers import company_repository, event_publisher
from billpay.onboarding.models import CompanyStep, Reconcile
from billpay.onboarding.ports import Codat

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def create_codat_company(
    event: dict[str, Any],
    context: LambdaContext,
    companies: CompanyRepository | None = None,
    codat: Codat | None = None,
) -> dict[str, Any]:
    command = CompanyStep.model_validate(event)
    record = steps.create_codat_company(
        command.company_id, companies or company_repository(), codat or codat_client()
    )
    logger.info(
        "Codat company mapped",
        extra={"company_id": record.company_id, "codat_company_id": record.codat_company_id},
    )
    return {"codatCompanyId": record.codat_company_id}


@logger.inject_lambda_context(clear_state=True)
def create_connection(
    event: dict[str, Any],
    context: LambdaContext,
    companies: CompanyRepository | None = None,
    codat: Codat | None = None,
    events: EventPublisher | None = None,
) -> dict[str, Any]:
    command = CompanyStep.model_validate(event)
    record = steps.create_connection(
        command.company_id,
        command.execution_arn,
        companies or company_repository(),
        codat or codat_client(),
        events or event_publisher(),
    )
    return {
        "connectionId": record.connection_id,
        "linkUrl": record.link_url,
        "linkIssuedAt": record.link_issued_at.isoformat() if record.link_issued_at else None,
    }


@logger.inject_lambda_context(clear_state=True)
def reconcile(
    event: dict[str, Any],
    context: LambdaContext,
    companies: CompanyRepository | None = None,
    codat: Codat | None = None,
) -> dict[str, Any]:
    """A wait got no webhook within the reconcile interval: read Codat once."""
    command = Reconcile.model_validate(event)
    repository = companies or company_repository()
    client = codat or codat_client()
    if command.kind is WaitKind.AUTHORIZATION:
        result = steps.reconcile_authorization(
            command.company_id, command.timings, repository, client
        )
    else:
        if command.authorized_at is None:
            raise ValueError("authorizedAt is required to reconcile the initial read")
        result = steps.reconcile_initial_read(
            command.company_id,
            datetime.fromisoformat(command.authorized_at),
            command.timings,
            repository,
            client,
        )
    logger.info(
        "reconciled",
        extra={"company_id": command.company_id, "kind": command.kind, "detail": result["detail"]},
    )
    return result


@logger.inject_lambda_context(clear_state=True)
def load_company_data(
    event: dict[str, Any],
    context: LambdaContext,
    companies: CompanyRepository | None = None,
    codat: Codat | None = None,
) -> dict[str, Any]:
    command = CompanyStep.model_validate(event)
    data = steps.load_company_data(
        command.company_id, companies or company_repository(), codat or codat_client()
    )
    return data.model_dump(by_alias=True)
