"""The product API's OpenAPI 3 document, generated from its handlers (`python -m ops openapi`).

Powertools' event handler writes the document from the resolver's routes (`billpay.api.handler.app`
with the payables router): paths, path parameters, operation ids, request bodies and response
schemas from the pydantic models the handlers parse and answer with. What a handler's signature
cannot say (the handlers parse their bodies themselves, `billpay.api.bodies`, so that a body that is
not JSON is a 415 and money is read as Decimal) is declared here, route by route: the body and
query models each handler parses, what it answers and which errors it can give. A test
(tests/unit/ops/test_openapi.py) fails when a route has no entry or docs/openapi.json differs from
what this generates; the schemathesis run (tests/localcloud/test_api_contract.py) checks the
running API against it.

Why not `APIGatewayRestResolver(enable_validation=True)`: the Lambda would import Powertools'
OpenAPI modules at every cold start (issue 6) and answer bad input with Powertools' 422 shape instead
of the API's own 400/415 errors. The document is built in this process only; the handler is unchanged.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Route
from aws_lambda_powertools.event_handler.openapi.dependant import get_dependant
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from billpay.api.handler import app
from billpay.api.models import CompanyView
from billpay.bills import queries, writes
from billpay.bills.models import Attachment, BillRecord, PaymentAccount, SupplierRecord
from billpay.onboarding.models import OnboardingStarted, StartOnboarding
from billpay.payments.models import PaymentRequest, PaymentView

TITLE = "Codat Bill Pay integration: product API"
VERSION = "1.0.0"
SIGV4 = "sigv4"
DESCRIPTION = """\
The product backend's API: onboard an SMB through Codat, read its bills, suppliers and payment
accounts, write them through Codat, and pay bills exactly once.

**Auth**: every operation is authorized by API Gateway with AWS IAM (`AWS_IAM`): sign each request
with Signature Version 4 (service `execute-api`) using credentials allowed `execute-api:Invoke` on
the API. Unsigned or denied requests are answered 403 by API Gateway before any handler runs.

**Errors**: the handlers answer `{"error": {"code", "message", "details"?}}`; API Gateway's own
answers (a request its validators reject, 403) are `{"message": ...}`.

Generated from the handlers by `python -m ops openapi` (ops/openapi.py); do not edit by hand.
"""


# --- what the API answers that no single model in functions/ describes ---------------------------


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable: NotFound, ValidationError, ...")
    message: str
    details: list[ErrorDetail] | None = Field(
        default=None, description="Per field, when the error names fields"
    )


class Error(BaseModel):
    """What a handler answers when it does not do what was asked (billpay.api.handler._error)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


class GatewayError(BaseModel):
    """What API Gateway answers itself: a request its validators reject, or IAM denies."""

    message: str


class BillPage(BaseModel):
    items: list[BillRecord]
    next_page_token: str | None = Field(
        default=None, alias="nextPageToken", description="Absent on the last page"
    )


class SupplierPage(BaseModel):
    items: list[SupplierRecord]
    next_page_token: str | None = Field(
        default=None, alias="nextPageToken", description="Absent on the last page"
    )


class PaymentAccounts(BaseModel):
    items: list[PaymentAccount]


# --- the routes ----------------------------------------------------------------------------------

# Every route: a bad id or body (400; API Gateway's validators answer 400 too), a body that is not
# JSON (415), a company the product does not know (404).
COMMON = (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
# Routes that call Codat: its refusal (422 for writes), rate limit (429), outage (502/503).
CODAT = (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.BAD_GATEWAY, HTTPStatus.SERVICE_UNAVAILABLE)
WRITE = (HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY, *CODAT)


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    status: HTTPStatus
    answer: type[BaseModel]
    errors: tuple[HTTPStatus, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # Writes through Codat say whether the answer is a replay of an earlier, identical request.
    replayable: bool = False


OPERATIONS: dict[str, Operation] = {
    # billpay.api.handler
    "start_onboarding": Operation(
        "Start onboarding an SMB: a Codat company, a connection and a Link URL",
        "companies", HTTPStatus.ACCEPTED, OnboardingStarted, body=StartOnboarding,
        errors=(HTTPStatus.CONFLICT,),
    ),
    "get_company": Operation(
        "The company's onboarding state", "companies", HTTPStatus.OK, CompanyView
    ),
    "relink": Operation(
        "A new Link for a disconnected, expired or failed company",
        "companies", HTTPStatus.ACCEPTED, OnboardingStarted, errors=(HTTPStatus.CONFLICT,),
    ),
    "offboard": Operation(
        "Offboard: unlink at Codat, keep the data readable",
        "companies", HTTPStatus.OK, CompanyView, errors=(HTTPStatus.CONFLICT, *CODAT),
    ),
    "pay_bill": Operation(
        "Pay the bill, exactly once per paymentId", "payments", HTTPStatus.ACCEPTED, PaymentView,
        body=PaymentRequest, errors=(HTTPStatus.CONFLICT,),
    ),
    "get_payment": Operation(
        "The payment's state and history", "payments", HTTPStatus.OK, PaymentView
    ),
    # billpay.api.payables
    "list_bills": Operation(
        "Bills in due date order", "bills", HTTPStatus.OK, BillPage,
        query=queries.BillListParams, errors=(HTTPStatus.CONFLICT,),
    ),
    "get_bill": Operation(
        "One bill", "bills", HTTPStatus.OK, BillRecord, errors=(HTTPStatus.CONFLICT,)
    ),
    "create_bill": Operation(
        "Create a bill through Codat", "bills", HTTPStatus.CREATED, BillRecord,
        body=writes.CreateBill, errors=WRITE, replayable=True,
    ),
    "update_bill": Operation(
        "Update an Open bill through Codat", "bills", HTTPStatus.OK, BillRecord,
        body=writes.UpdateBill, errors=WRITE, replayable=True,
    ),
    "upload_attachment": Operation(
        "Attach a file to a bill (base64 in JSON)", "bills", HTTPStatus.CREATED, Attachment,
        body=writes.UploadAttachment, errors=WRITE, replayable=True,
    ),
    "list_suppliers": Operation(
        "Suppliers", "suppliers", HTTPStatus.OK, SupplierPage,
        query=queries.SupplierListParams, errors=(HTTPStatus.CONFLICT,),
    ),
    "get_supplier": Operation(
        "One supplier", "suppliers", HTTPStatus.OK, SupplierRecord, errors=(HTTPStatus.CONFLICT,)
    ),
    "create_supplier": Operation(
        "Create a supplier through Codat", "suppliers", HTTPStatus.CREATED, SupplierRecord,
        body=writes.CreateSupplier, errors=WRITE, replayable=True,
    ),
    "replace_supplier": Operation(
        "Replace a supplier (every field) through Codat", "suppliers", HTTPStatus.OK,
        SupplierRecord, body=writes.ReplaceSupplier, errors=WRITE, replayable=True,
    ),
    "list_payment_accounts": Operation(
        "The accounts bills can be paid from", "payment-accounts", HTTPStatus.OK,
        PaymentAccounts, errors=(HTTPStatus.CONFLICT,),
    ),
    "create_bank_account": Operation(
        "Create a bank account through Codat", "payment-accounts", HTTPStatus.CREATED,
        PaymentAccount, body=writes.CreateBankAccount, errors=WRITE, replayable=True,
    ),
}  # fmt: skip

ERROR_MEANINGS = {
    HTTPStatus.BAD_REQUEST: "The request is invalid; `details` names the fields",
    HTTPStatus.FORBIDDEN: "API Gateway: the request is not signed, or the caller may not invoke",
    HTTPStatus.NOT_FOUND: "No such company (or bill, supplier, payment) in the product",
    HTTPStatus.CONFLICT: "Not now: the company is not READY, or the request clashes with an earlier one",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "The body is not application/json",
    HTTPStatus.UNPROCESSABLE_ENTITY: "Codat refused the write; nothing was written",
    HTTPStatus.TOO_MANY_REQUESTS: "Codat's rate limit; try again after Retry-After seconds",
    HTTPStatus.BAD_GATEWAY: "Codat rejected the call; nothing was changed",
    HTTPStatus.SERVICE_UNAVAILABLE: "Codat is unavailable; nothing was changed, retrying is safe",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(operation: Operation) -> dict[int, Any]:
    success: dict[str, Any] = {
        "description": operation.summary,
        "content": {"application/json": {"model": operation.answer}},
    }
    if operation.replayable:
        success["headers"] = {
            "Idempotent-Replayed": {
                "description": "true when this is the stored answer to an earlier request with "
                "the same requestId",
                "schema": {"type": "string", "enum": ["true", "false"]},
            }
        }
    answers: dict[int, Any] = {int(operation.status): success}
    for status in sorted({*COMMON, HTTPStatus.FORBIDDEN, *operation.errors}):
        if status is HTTPStatus.FORBIDDEN:
            schema: dict[str, Any] = _schema_ref("GatewayError")
        elif status is HTTPStatus.BAD_REQUEST:
            schema = {"anyOf": [_schema_ref("Error"), _schema_ref("GatewayError")]}
        else:
            schema = _schema_ref("Error")
        answer: dict[str, Any] = {
            "description": ERROR_MEANINGS[status],
            "content": {"application/json": {"schema": schema}},
        }
        if status is HTTPStatus.TOO_MANY_REQUESTS:
            answer["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        answers[int(status)] = answer
    return answers


def _documented(route: Route, operation: Operation) -> Route:
    """A copy of `route` that says what the handler parses and answers (the app's stays as is)."""
    documented = copy.copy(route)
    documented.summary = operation.summary
    documented.operation_id = _camel(route.func.__name__)
    documented.tags = [operation.tag]
    documented.security = [{SIGV4: []}]
    documented.responses = _responses(operation)
    # Path parameters named as API Gateway names them: {company_id} -> {companyId}.
    documented.openapi_path = re.sub(
        r"{(\w+)}", lambda m: "{" + _camel(m.group(1)) + "}", route.openapi_path
    )
    parameters = [
        inspect.Parameter(_camel(name), inspect.Parameter.KEYWORD_ONLY, annotation=str)
        for name in inspect.signature(route.func).parameters
    ]
    if operation.body is not None:
        parameters.append(
            inspect.Parameter(
                "body", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[operation.body, Body()]
            )
        )

    def handler(**_: Any) -> None:
        raise NotImplementedError("only documents the route")

    handler.__name__ = route.func.__name__
    handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    documented._dependant = get_dependant(
        path=documented.openapi_path, call=handler, responses=documented.responses
    )
    documented._body_field = None
    return documented


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _present(field)}
        for name, field in schema["properties"].items()
    ]


def _present(field: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter's schema without pydantic's `null`: absent is how it is left
    out (`?status=null` is a status named "null", a 400)."""
    field = {k: v for k, v in field.items() if k != "default" or v is not None}
    options = [o for o in field.pop("anyOf", ()) if o != {"type": "null"}]
    if len(options) == 1:
        field.update(options[0])
    elif options:
        field["anyOf"] = options
    return field


def routes() -> list[Route]:
    return [*app._dynamic_routes, *app._static_routes]


def document() -> dict[str, Any]:
    """The OpenAPI 3 document of every route the API handler serves."""
    missing = sorted({r.func.__name__ for r in routes()} - set(OPERATIONS))
    if missing:
        raise LookupError(f"routes without an entry in ops/openapi.py OPERATIONS: {missing}")
    resolver = APIGatewayRestResolver()
    documented = [_documented(r, OPERATIONS[r.func.__name__]) for r in routes()]
    # Powertools documents the routes a resolver holds; this one holds the documented copies.
    resolver._dynamic_routes = documented
    resolver._static_routes = []
    sigv4 = APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (service execute-api), checked by API Gateway "
        "(AWS_IAM authorization)",
    )
    schema = resolver.get_openapi_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        openapi_version="3.1.0",
        security_schemes={SIGV4: sigv4},
        security=[{SIGV4: []}],
    )
    doc: dict[str, Any] = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    schemas = doc["components"]["schemas"]
    # Powertools' own validation errors (422) are not answered by a resolver without validation.
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    for model in (Error, GatewayError):
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in definition.pop("$defs", {}).items():
            schemas.setdefault(name, nested)
        schemas[model.__name__] = definition
    doc["components"]["securitySchemes"][SIGV4]["x-amazon-apigateway-authtype"] = "awsSigv4"
    for route in documented:
        query = OPERATIONS[route.func.__name__].query
        if query is not None:
            operation = doc["paths"][route.openapi_path][route.method.lower()]
            operation.setdefault("parameters", []).extend(_query_parameters(query, schemas))
    for definition in schemas.values():
        _closed_maps(definition)
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    return doc


def _closed_maps(schema: Any) -> None:
    """pydantic writes a dict with constrained keys as `patternProperties` alone, which admits any
    other key with any value; the model refuses such keys, so the document does too."""
    if isinstance(schema, dict):
        if "patternProperties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _closed_maps(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed_maps(value)


def render() -> str:
    """docs/openapi.json's text."""
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"
