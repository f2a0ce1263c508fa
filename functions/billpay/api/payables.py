"""The product API's routes for an SMB's bills, suppliers and payment accounts. Thin: parse, call
one logic function (`billpay.bills.queries` or `billpay.bills.writes`), answer.

| route | does |
| GET  /companies/{companyId}/bills | bills in due date order; `status`, `dueAfter`, `dueBefore`, `limit`, `pageToken` |
| GET  /companies/{companyId}/bills/{billId} | one bill |
| POST /companies/{companyId}/bills | create a bill through Codat (201) |
| PUT  /companies/{companyId}/bills/{billId} | update an Open bill through Codat |
| POST /companies/{companyId}/bills/{billId}/attachments | attach a file (base64 in JSON) (201) |
| GET  /companies/{companyId}/suppliers | suppliers; `limit`, `pageToken` |
| GET  /companies/{companyId}/suppliers/{supplierId} | one supplier |
| POST /companies/{companyId}/suppliers | create a supplier through Codat (201) |
| PUT  /companies/{companyId}/suppliers/{supplierId} | replace a supplier (every field) |
| GET  /companies/{companyId}/payment-accounts | the accounts bills can be paid from |
| POST /companies/{companyId}/payment-accounts | create a bank account through Codat (201) |

Writes carry `requestId`: the same request sent again is answered as the first time and creates
nothing more. Amounts are strings in answers ("120.50") and strings or numbers in requests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel

from billpay.api.bodies import BadRequest, parse_body
from billpay.bills import queries, writes
from billpay.bills.models import RECORD_ID_PATTERN
from billpay.bills.page_token import PageTokens
from billpay.bills.ports import PayablesReader
from billpay.bills.repository import DynamoPayablesRepository
from billpay.companies.models import COMPANY_ID_PATTERN
from billpay.companies.ports import CompanyRepository
from billpay.core import aws
from billpay.core.settings import settings

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
_COMPANY_ID = re.compile(COMPANY_ID_PATTERN)
_RECORD_ID = re.compile(RECORD_ID_PATTERN)
Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class PayablesApi:
    """What the payables routes work with; tests build it from fakes."""

    companies: CompanyRepository
    reader: PayablesReader
    tokens: Callable[[], PageTokens]
    writes: writes.WriteDependencies


def default_payables(
    companies: CompanyRepository, codat: Callable[[], writes.PayablesWriter]
) -> PayablesApi:
    config = settings()
    if not config.payables_table or not config.page_token_key_secret_arn:
        raise RuntimeError("PAYABLES_TABLE and PAGE_TOKEN_KEY_SECRET_ARN must be set for the API")
    table = DynamoPayablesRepository(aws.dynamodb(), config.payables_table)
    return PayablesApi(
        companies=companies,
        reader=table,
        tokens=_page_tokens,
        writes=writes.WriteDependencies(companies=companies, payables=table, codat=codat),
    )


@cache
def _page_tokens() -> PageTokens:
    # Read once per cold start: rotating the key invalidates the page tokens handed out before.
    arn = settings().page_token_key_secret_arn
    assert arn is not None
    secret = aws.secretsmanager().get_secret_value(SecretId=arn)["SecretString"]
    return PageTokens(secret.encode())


def _api() -> PayablesApi:
    payables = router.context.get("payables")
    assert isinstance(payables, PayablesApi), "the API handler sets `payables` in the context"
    return payables


def _company(company_id: str) -> str:
    if not _COMPANY_ID.fullmatch(company_id):
        raise BadRequest("companyId is not a valid id")
    return company_id


def _record(name: str, record_id: str) -> str:
    if not _RECORD_ID.fullmatch(record_id):
        raise BadRequest(f"{name} is not a valid id")
    return record_id


def _query(model: type[Body]) -> Body:
    return model.model_validate(router.current_event.query_string_parameters or {})


def _body(model: type[Body]) -> Body:
    body = parse_body(router.current_event, model)
    assert body is not None
    return body


def _no_body() -> None:
    parse_body(router.current_event, None)


# -- reads -------------------------------------------------------------------------------------------


@router.get("/companies/<company_id>/bills")
def list_bills(company_id: str) -> Response[Any]:
    _no_body()
    api = _api()
    page = queries.list_bills(
        _company(company_id),
        _query(queries.BillListParams),
        api.companies,
        api.reader,
        api.tokens(),
    )
    return _page(page)


@router.get("/companies/<company_id>/bills/<bill_id>")
def get_bill(company_id: str, bill_id: str) -> Response[Any]:
    _no_body()
    api = _api()
    bill = queries.get_bill(
        _company(company_id), _record("billId", bill_id), api.companies, api.reader
    )
    return _json(HTTPStatus.OK, _view(bill))


@router.get("/companies/<company_id>/suppliers")
def list_suppliers(company_id: str) -> Response[Any]:
    _no_body()
    api = _api()
    page = queries.list_suppliers(
        _company(company_id),
        _query(queries.SupplierListParams),
        api.companies,
        api.reader,
        api.tokens(),
    )
    return _page(page)


@router.get("/companies/<company_id>/suppliers/<supplier_id>")
def get_supplier(company_id: str, supplier_id: str) -> Response[Any]:
    _no_body()
    api = _api()
    supplier = queries.get_supplier(
        _company(company_id), _record("supplierId", supplier_id), api.companies, api.reader
    )
    return _json(HTTPStatus.OK, _view(supplier))


@router.get("/companies/<company_id>/payment-accounts")
def list_payment_accounts(company_id: str) -> Response[Any]:
    _no_body()
    api = _api()
    accounts = queries.list_payment_accounts(_company(company_id), api.companies, api.reader)
    return _json(HTTPStatus.OK, {"items": [_view(a) for a in accounts]})


# -- writes through Codat ----------------------------------------------------------------------------


@router.post("/companies/<company_id>/bills")
def create_bill(company_id: str) -> Response[Any]:
    request = _body(writes.CreateBill)
    return _written(writes.create_bill(_company(company_id), request, _api().writes))


@router.put("/companies/<company_id>/bills/<bill_id>")
def update_bill(company_id: str, bill_id: str) -> Response[Any]:
    request = _body(writes.UpdateBill)
    bill = _record("billId", bill_id)
    return _written(writes.update_bill(_company(company_id), bill, request, _api().writes))


@router.post("/companies/<company_id>/bills/<bill_id>/attachments")
def upload_attachment(company_id: str, bill_id: str) -> Response[Any]:
    request = _body(writes.UploadAttachment)
    bill = _record("billId", bill_id)
    return _written(writes.upload_attachment(_company(company_id), bill, request, _api().writes))


@router.post("/companies/<company_id>/suppliers")
def create_supplier(company_id: str) -> Response[Any]:
    request = _body(writes.CreateSupplier)
    return _written(writes.create_supplier(_company(company_id), request, _api().writes))


@router.put("/companies/<company_id>/suppliers/<supplier_id>")
def replace_supplier(company_id: str, supplier_id: str) -> Response[Any]:
    request = _body(writes.ReplaceSupplier)
    supplier = _record("supplierId", supplier_id)
    outcome = writes.replace_supplier(_company(company_id), supplier, request, _api().writes)
    return _written(outcome)


@router.post("/companies/<company_id>/payment-accounts")
def create_bank_account(company_id: str) -> Response[Any]:
    request = _body(writes.CreateBankAccount)
    return _written(writes.create_bank_account(_company(company_id), request, _api().writes))


# -- answers -----------------------------------------------------------------------------------------


def _view(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(mode="json", by_alias=True)


def _page(page: queries.ResultPage[Any]) -> Response[Any]:
    body: dict[str, Any] = {"items": [_view(item) for item in page.items]}
    if page.next_page_token:
        body["nextPageToken"] = page.next_page_token
    return _json(HTTPStatus.OK, body)


def _written(outcome: writes.WriteOutcome) -> Response[Any]:
    response = _json(outcome.status, outcome.body)
    # Tells a retry apart from the first answer (same status and body).
    response.headers["Idempotent-Replayed"] = "true" if outcome.replayed else "false"
    return response


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)
