"""Tasks of the onboarding state machine that do not call Codat (they never import its SDK).

Each handler parses its input, calls one step (billpay.onboarding.steps or .logic) and returns
JSON. An exception fails the task; the workflow decides what follows (Retry/Catch).
The steps that call Codat are in billpay.onboarding.codat_handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billpay.companies.ports import CompanyRepository, TaskResumer
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.events.publisher import EventBridgePublisher, EventPublisher
from billpay.onboarding import logic, steps
from billpay.onboarding.models import (
    ApplySignal,
    ArmWait,
    MarkReady,
    OnboardingTimings,
    RecordFailure,
    RegisterCompany,
)
from billpay.onboarding.workflow import StepFunctionsTasks

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def company_repository() -> CompanyRepository:
    return DynamoCompanyRepository(aws.dynamodb(), settings().companies_table)


def event_publisher() -> EventPublisher:
    bus = settings().event_bus_name
    if not bus:
        raise RuntimeError("EVENT_BUS_NAME is not set for a function that publishes events")
    return EventBridgePublisher(aws.eventbridge(), bus)


@logger.inject_lambda_context(clear_state=True)
def register_company(
    event: dict[str, Any], context: LambdaContext, companies: CompanyRepository | None = None
) -> dict[str, Any]:
    """Record the company (a relink: claim it) and answer the timings this execution waits by, and
    whether an earlier start already took the company further (this execution then ends at once,
    its output naming the company's status and its onboarding execution)."""
    command = RegisterCompany.model_validate(event)
    defaults = OnboardingTimings.model_validate(event["defaultTimings"])
    record, timings = logic.register_company(command, companies or company_repository(), defaults)
    earlier = logic.started_earlier(command, record)
    logger.info(
        "company onboarded by an earlier start" if earlier else "company registered",
        extra={"company_id": record.company_id, "status": record.status},
    )
    return {
        "companyId": record.company_id,
        "timings": timings.as_input(),
        "startedEarlier": earlier,
        "status": record.status,
        "onboardingExecutionArn": record.onboarding_execution_arn,
    }


@logger.inject_lambda_context(clear_state=True)
def wait_for_signal(
    event: dict[str, Any],
    context: LambdaContext,
    companies: CompanyRepository | None = None,
    resumer: TaskResumer | None = None,
) -> dict[str, Any]:
    """Park the task token (`.waitForTaskToken`): a webhook, or a signal already here, resumes."""
    command = ArmWait.model_validate(event)
    outcome = steps.wait_for(
        command.company_id,
        command.kind,
        command.token,
        companies or company_repository(),
        resumer or StepFunctionsTasks(aws.stepfunctions()),
    )
    delivered = outcome.delivered is not None
    logger.info(
        "wait armed",
        extra={"company_id": command.company_id, "kind": command.kind, "early": delivered},
    )
    return {"kind": command.kind, "resumedAtOnce": delivered}


@logger.inject_lambda_context(clear_state=True)
def record_authorization(
    event: dict[str, Any], context: LambdaContext, companies: CompanyRepository | None = None
) -> dict[str, Any]:
    command = ApplySignal.model_validate(event)
    record = steps.record_authorization(
        command.company_id, command.signal, companies or company_repository()
    )
    return {"status": record.status}


@logger.inject_lambda_context(clear_state=True)
def record_initial_read(
    event: dict[str, Any], context: LambdaContext, companies: CompanyRepository | None = None
) -> dict[str, Any]:
    command = ApplySignal.model_validate(event)
    record = steps.record_initial_read(
        command.company_id, command.signal, companies or company_repository()
    )
    return {"status": record.status, "dataTypes": record.data_types}


@logger.inject_lambda_context(clear_state=True)
def mark_ready(
    event: dict[str, Any],
    context: LambdaContext,
    companies: CompanyRepository | None = None,
    events: EventPublisher | None = None,
) -> dict[str, Any]:
    command = MarkReady.model_validate(event)
    record = steps.mark_ready(
        command.company_id,
        command.execution_arn,
        command.company_data,
        companies or company_repository(),
        events or event_publisher(),
    )
    logger.info("company ready", extra={"company_id": record.company_id})
    return {"status": record.status}


@logger.inject_lambda_context(clear_state=True)
def record_failure(
    event: dict[str, Any],
    context: LambdaContext,
    companies: CompanyRepository | None = None,
    events: EventPublisher | None = None,
) -> dict[str, Any]:
    command = RecordFailure.model_validate(event)
    record = steps.record_failure(
        command, companies or company_repository(), events or event_publisher()
    )
    logger.warning(
        "onboarding failed" if record.status == command.status else "onboarding failure ignored",
        extra={
            "company_id": record.company_id,
            "status": record.status,
            "error": record.last_error if record.status == command.status else command.error,
        },
    )
    return {
        "status": record.status,
        "lastError": record.last_error.model_dump(mode="json", by_alias=True)
        if record.last_error
        else None,
    }
