"""Product backend API (API Gateway REST proxy). Thin: parse, call logic, answer.

| route | does |
| POST /companies | start onboarding (202) |
| GET /companies/{companyId} | the company's state |
| POST /companies/{companyId}/relink | a new Link for a disconnected, expired or failed company (202) |
| DELETE /companies/{companyId} | offboard: unlink at Codat, keep the data readable (200) |
| .../bills, .../suppliers, .../payment-accounts | billpay.api.payables |
| POST /companies/{companyId}/bills/{billId}/payments | pay the bill, exactly once (202) |
| GET /companies/{companyId}/bills/{billId}/payments/{paymentId} | the payment's state |

Every route parses its body the same way (`billpay.api.bodies`): a body the API cannot parse is a
400, a content type other than JSON a 415. Codat is called only by DELETE and the payables writes:
API Gateway sends those routes to a function of their own (billpay.api.codat_handler, the same
resolver with Codat's client), so only that function imports Codat's SDK and the other routes
never pay for it at cold start. Here Codat is `no_codat`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from pydantic import ValidationError

from billpay.api.bodies import BadRequest, Body, UnsupportedMediaType, parse_body
from billpay.api.models import CompanyView
from billpay.api.payables import PayablesApi, default_payables
from billpay.api.payables import router as payables_routes
from billpay.bills.models import RECORD_ID_PATTERN, CompanyNotReadyError
from billpay.bills.repository import DynamoPayablesRepository
from billpay.bills.writes import PayablesWriter
from billpay.codat.errors import CodatError, CodatRateLimitedError, CodatUnavailableError
from billpay.companies.models import COMPANY_ID_PATTERN
from billpay.companies.ports import CompanyRepository
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.errors import BillPayError, ConflictError, NotFoundError
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.onboarding import logic as onboarding
from billpay.onboarding.models import StartOnboarding
from billpay.onboarding.ports import Codat, WorkflowStarter
from billpay.onboarding.workflow import StepFunctionsWorkflow
from billpay.payments import logic as payments
from billpay.payments.models import PAYMENT_ID_PATTERN, PaymentRequest, PaymentView
from billpay.payments.repository import DynamoPaymentStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayRestResolver()
app.include_router(payables_routes)
_COMPANY_ID = re.compile(COMPANY_ID_PATTERN)
_BILL_ID = re.compile(RECORD_ID_PATTERN)
_PAYMENT_ID = re.compile(PAYMENT_ID_PATTERN)


@dataclass(frozen=True)
class ApiDependencies:
    companies: CompanyRepository
    onboarding: WorkflowStarter
    # Built on first use: only offboarding calls Codat.
    codat: Callable[[], Codat]
    # The bills, suppliers and payment accounts routes (billpay.api.payables).
    payables: PayablesApi | None = None
    payments: payments.Intake | None = None


class CodatForApi(Codat, PayablesWriter, Protocol):
    """What the API's Codat routes call: offboarding's unlink and the payables writes."""


def no_codat() -> CodatForApi:
    """Codat in the function that serves the routes which do not call it: reaching this means API
    Gateway sent a Codat route to the wrong function (infra/constructs/api.py)."""
    raise RuntimeError(
        "this route calls Codat and is served by the API's Codat function "
        "(billpay.api.codat_handler), not by billpay.api.handler"
    )


def default_dependencies(codat: Callable[[], CodatForApi] = no_codat) -> ApiDependencies:
    config = settings()
    if not config.onboarding_state_machine_arn:
        raise RuntimeError("ONBOARDING_STATE_MACHINE_ARN is not set for the API function")
    companies = DynamoCompanyRepository(aws.dynamodb(), config.companies_table)
    return ApiDependencies(
        companies=companies,
        onboarding=StepFunctionsWorkflow(aws.stepfunctions(), config.onboarding_state_machine_arn),
        codat=codat,
        payables=default_payables(companies, codat),
        payments=_payments(companies),
    )


def _payments(companies: CompanyRepository) -> payments.Intake | None:
    config = settings()
    if not (config.payments_table and config.payables_table and config.payment_state_machine_arn):
        return None
    payables = DynamoPayablesRepository(aws.dynamodb(), config.payables_table)
    return payments.Intake(
        payments=DynamoPaymentStore(aws.dynamodb(), config.payments_table),
        companies=companies,
        payables=payables,
        bill_payments=payables,
        workflows=StepFunctionsWorkflow(aws.stepfunctions(), config.payment_state_machine_arn),
    )


def _deps() -> ApiDependencies:
    deps = app.context.get("deps")
    assert isinstance(deps, ApiDependencies)
    return deps


def _body(model: type[Body] | None) -> Body | None:
    return parse_body(app.current_event, model)


def _company_id(company_id: str) -> str:
    if not _COMPANY_ID.fullmatch(company_id):
        raise BadRequest("companyId is not a valid id")
    return company_id


@app.post("/companies")
def start_onboarding() -> Response[Any]:
    request = _body(StartOnboarding)
    assert request is not None
    started = onboarding.start_onboarding(request, _deps().onboarding)
    logger.info("onboarding accepted", extra={"company_id": started.company_id})
    return _json(HTTPStatus.ACCEPTED, started.model_dump(by_alias=True))


@app.get("/companies/<company_id>")
def get_company(company_id: str) -> Response[Any]:
    _body(None)
    record = onboarding.get_company(_company_id(company_id), _deps().companies)
    return _json(HTTPStatus.OK, CompanyView.of(record).model_dump(mode="json", by_alias=True))


@app.post("/companies/<company_id>/relink")
def relink(company_id: str) -> Response[Any]:
    _body(None)
    deps = _deps()
    started = onboarding.request_relink(_company_id(company_id), deps.companies, deps.onboarding)
    logger.info("relink accepted", extra={"company_id": company_id})
    return _json(HTTPStatus.ACCEPTED, started.model_dump(by_alias=True))


@app.delete("/companies/<company_id>")
def offboard(company_id: str) -> Response[Any]:
    _body(None)
    deps = _deps()
    record = onboarding.offboard(
        _company_id(company_id), deps.companies, deps.codat, deps.onboarding
    )
    logger.info("company offboarded", extra={"company_id": company_id})
    return _json(HTTPStatus.OK, CompanyView.of(record).model_dump(mode="json", by_alias=True))


@app.post("/companies/<company_id>/bills/<bill_id>/payments")
def pay_bill(company_id: str, bill_id: str) -> Response[Any]:
    request = _body(PaymentRequest)
    assert request is not None
    record = payments.accept_payment(
        _company_id(company_id), _id(bill_id, _BILL_ID, "billId"), request, _payments_intake()
    )
    logger.info(
        "payment accepted",
        extra={"company_id": company_id, "payment_id": record.payment_id, "status": record.status},
    )
    return _json(HTTPStatus.ACCEPTED, PaymentView.of(record).to_json())


@app.get("/companies/<company_id>/bills/<bill_id>/payments/<payment_id>")
def get_payment(company_id: str, bill_id: str, payment_id: str) -> Response[Any]:
    _body(None)
    record = payments.get_payment(
        _company_id(company_id),
        _id(bill_id, _BILL_ID, "billId"),
        _id(payment_id, _PAYMENT_ID, "paymentId"),
        _payments_intake().payments,
    )
    return _json(HTTPStatus.OK, PaymentView.of(record).to_json())


def _payments_intake() -> payments.Intake:
    intake = _deps().payments
    if intake is None:
        raise RuntimeError("payments are not configured for the API function")
    return intake


def _id(value: str, pattern: re.Pattern[str], name: str) -> str:
    if not pattern.fullmatch(value):
        raise BadRequest(f"{name} is not a valid id")
    return value


@app.not_found
def _no_route(_: Exception) -> Response[Any]:
    """A path no route matches (an id with characters no route takes: API Gateway passes it on):
    the API's own 404, not Powertools' `{"statusCode", "message"}`."""
    event = app.current_event
    return _error(
        HTTPStatus.NOT_FOUND, "NotFound", f"no route for {event.http_method} {event.path}"
    )


@app.exception_handler(ValidationError)
def _invalid(error: ValidationError) -> Response[Any]:
    details = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in error.errors()
    ]
    return _error(HTTPStatus.BAD_REQUEST, "ValidationError", "the request is invalid", details)


@app.exception_handler(BillPayError)
def _domain(error: BillPayError) -> Response[Any]:
    status = {
        NotFoundError: HTTPStatus.NOT_FOUND,
        ConflictError: HTTPStatus.CONFLICT,
        CompanyNotReadyError: HTTPStatus.CONFLICT,
        UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    }.get(type(error), error.http_status)
    # Errors that name several fields (a payment the bill does not allow) list them.
    return _error(status, error.code, str(error), getattr(error, "details", None))


@app.exception_handler(CodatError)
def _codat_failed(error: CodatError) -> Response[Any]:
    """Codat could not do what the route needed; nothing was changed here, so trying again is
    safe. Codat's correlationId is in the details for its support."""
    details = [{"field": "correlationId", "message": error.correlation_id or ""}]
    if isinstance(error, CodatRateLimitedError):
        response = _error(HTTPStatus.TOO_MANY_REQUESTS, "CodatRateLimited", error.message, details)
        response.headers["Retry-After"] = str(error.retry_after_seconds or 60)
        return response
    if isinstance(error, CodatUnavailableError):
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, "CodatUnavailable", error.message, details)
    return _error(HTTPStatus.BAD_GATEWAY, "CodatRejected", error.message, details)


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, str]] | None = None
) -> Response[Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return _json(status, {"error": error})


def serve(event: dict[str, Any], context: LambdaContext, deps: ApiDependencies) -> dict[str, Any]:
    app.append_context(deps=deps, payables=deps.payables)
    return app.resolve(event, context)


@logger.inject_lambda_context(clear_state=True)
def handler(
    event: dict[str, Any], context: LambdaContext, deps: ApiDependencies | None = None
) -> dict[str, Any]:
    """Every route but the ones that call Codat (billpay.api.codat_handler)."""
    return serve(event, context, deps or default_dependencies())
