"""Product backend API (API Gateway REST proxy). Thin: parse, call logic, answer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from billpay.companies.models import COMPANY_ID_PATTERN
from billpay.companies.ports import CompanyRepository
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.errors import BillPayError, ConflictError, NotFoundError
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.onboarding import logic as onboarding
from billpay.onboarding.models import StartOnboarding
from billpay.onboarding.ports import WorkflowStarter
from billpay.onboarding.workflow import StepFunctionsWorkflow

app = APIGatewayRestResolver()
_COMPANY_ID = re.compile(COMPANY_ID_PATTERN)


@dataclass(frozen=True)
class ApiDependencies:
    companies: CompanyRepository
    onboarding: WorkflowStarter


def default_dependencies() -> ApiDependencies:
    config = settings()
    if not config.onboarding_state_machine_arn:
        raise RuntimeError("ONBOARDING_STATE_MACHINE_ARN is not set for the API function")
    return ApiDependencies(
        companies=DynamoCompanyRepository(aws.dynamodb(), config.companies_table),
        onboarding=StepFunctionsWorkflow(aws.stepfunctions(), config.onboarding_state_machine_arn),
    )


def _deps() -> ApiDependencies:
    deps = app.context.get("deps")
    assert isinstance(deps, ApiDependencies)
    return deps


@app.post("/companies")
def start_onboarding() -> Response[Any]:
    request = StartOnboarding.model_validate(app.current_event.json_body or {})
    started = onboarding.start_onboarding(request, _deps().onboarding)
    logger.info("onboarding accepted", extra={"company_id": started.company_id})
    return _json(HTTPStatus.ACCEPTED, started.model_dump(by_alias=True))


@app.get("/companies/<company_id>")
def get_company(company_id: str) -> Response[Any]:
    if not _COMPANY_ID.fullmatch(company_id):
        return _error(HTTPStatus.BAD_REQUEST, "ValidationError", "companyId is not a valid id")
    record = onboarding.get_company(company_id, _deps().companies)
    if record is None:
        raise NotFoundError(f"company {company_id!r} is not known")
    return _json(HTTPStatus.OK, record.model_dump(mode="json", by_alias=True))


@app.exception_handler(ValidationError)
def _invalid(error: ValidationError) -> Response[Any]:
    details = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in error.errors()
    ]
    return _error(HTTPStatus.BAD_REQUEST, "ValidationError", "the request is invalid", details)


@app.exception_handler(ValueError)
def _malformed(error: ValueError) -> Response[Any]:
    # Powertools raises a plain ValueError (JSONDecodeError) for a body that is not JSON.
    return _error(HTTPStatus.BAD_REQUEST, "MalformedRequest", "the body is not valid JSON")


@app.exception_handler(BillPayError)
def _domain(error: BillPayError) -> Response[Any]:
    status = {
        NotFoundError: HTTPStatus.NOT_FOUND,
        ConflictError: HTTPStatus.CONFLICT,
    }.get(type(error), HTTPStatus.BAD_REQUEST)
    return _error(status, error.code, str(error))


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, str]] | None = None
) -> Response[Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return _json(status, {"error": error})


@logger.inject_lambda_context(clear_state=True)
def handler(
    event: dict[str, Any], context: LambdaContext, deps: ApiDependencies | None = None
) -> dict[str, Any]:
    app.append_context(deps=deps or default_dependencies())
    return app.resolve(event, context)
