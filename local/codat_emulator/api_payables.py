"""The Bill Pay data routes under ``/companies/{companyId}/connections/{connectionId}/payables``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from codat_emulator.api_common import (
    ApiContext,
    api_route,
    json_response,
    parse_json_model,
    parse_query,
    read_body,
)
from codat_emulator.api_models import BankAccountBody, BillBody, PaymentBody, SupplierBody
from codat_emulator.errors import ApiError
from codat_emulator.paging import decode_token, encode_token
from codat_emulator.query import Node, evaluate, fields, value_scope
from codat_emulator.store import BILL_STATUSES, Page, ValidationItem

# Codat lists Open and PartiallyPaid bills unless the query says otherwise.
DEFAULT_BILL_STATUSES = frozenset({"Open", "PartiallyPaid"})
BILL_FIELD_TYPES = {
    "totalamount": "number",
    "amountdue": "number",
    "currencyrate": "number",
    "sourcemodifieddate": "date",
    "issuedate": "date",
    "duedate": "date",
}
SUPPLIER_FIELD_TYPES = {"balance": "number", "sourcemodifieddate": "date"}


def _page_body(page: Page[dict[str, Any]], query: str | None) -> dict[str, Any]:
    pagination: dict[str, str] = {}
    if page.next_after is not None:
        pagination["continuationToken"] = encode_token(page.next_after, query)
    return {"results": page.items, "pagination": pagination}


def _predicate(node: Node | None) -> Callable[[Mapping[str, Any]], bool] | None:
    if node is None:
        return None
    return lambda record: evaluate(node, record)


def _filtered(items: list[dict[str, Any]], raw_query: str | None) -> list[dict[str, Any]]:
    node = parse_query(raw_query)
    return items if node is None else [i for i in items if evaluate(node, i)]


def _safe_filename(name: str) -> str:
    # The name came from a client: keep it from breaking (or adding to) the response headers.
    return re.sub(r"[^\w.\- ]", "_", name, flags=re.ASCII)[:200] or "attachment"


def _parse_upload(content_type: str, body: bytes) -> tuple[str, str, bytes]:
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            400,
            "Attachments are uploaded as multipart/form-data with a 'file' part.",
            [ValidationItem(f"Content-Type is '{content_type}'.", "file")],
        )
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if isinstance(message, EmailMessage) and message.is_multipart():
        for part in message.iter_parts():
            if not isinstance(part, EmailMessage):
                continue
            if part.get_param("name", header="content-disposition") != "file":
                continue
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            name = part.get_filename() or "attachment"
            return name, part.get_content_type(), content
    raise ApiError(400, "The upload has no 'file' part.", [ValidationItem("Missing part.", "file")])


def routes(ctx: ApiContext) -> list[BaseRoute]:
    store, limits = ctx.store, ctx.config.limits
    max_body = limits.max_json_body_bytes
    all_statuses = frozenset(BILL_STATUSES)

    def ids(request: Request) -> tuple[str, str]:
        return request.path_params["companyId"], request.path_params["connectionId"]

    async def company_info(request: Request) -> Response:
        return json_response(store.company_info(*ids(request)))

    async def list_suppliers(request: Request) -> Response:
        params = request.query_params
        query = params.get("query")
        node = parse_query(query, SUPPLIER_FIELD_TYPES)
        after = decode_token(params.get("continuationToken"), query)
        page = store.list_suppliers(
            *ids(request), after, limits.suppliers_page_size, _predicate(node)
        )
        return json_response(_page_body(page, query))

    async def create_supplier(request: Request) -> Response:
        store.get_connection(*ids(request))
        body = parse_json_model(await read_body(request, max_body), SupplierBody)
        return json_response(store.create_supplier(*ids(request), body.record()), 201)

    async def update_supplier(request: Request) -> Response:
        store.get_supplier(*ids(request), request.path_params["supplierId"])
        body = parse_json_model(await read_body(request, max_body), SupplierBody)
        supplier_id = request.path_params["supplierId"]
        return json_response(store.replace_supplier(*ids(request), supplier_id, body.record()))

    async def list_bills(request: Request) -> Response:
        params = request.query_params
        query = params.get("query")
        node = parse_query(query, BILL_FIELD_TYPES)
        after = decode_token(params.get("continuationToken"), query)
        if node is None or "status" not in fields(node):
            statuses: frozenset[str] | None = DEFAULT_BILL_STATUSES
        else:
            statuses = value_scope(node, "status", all_statuses)
        page = store.list_bills_json(
            *ids(request), after, limits.bills_page_size, statuses, _predicate(node)
        )
        pagination: dict[str, str] = {}
        if page.next_after is not None:
            pagination["continuationToken"] = encode_token(page.next_after, query)
        # The bills are JSON already (rendered once per change): splice them in.
        body = b'{"results":[' + b",".join(page.items) + b'],"pagination":'
        body += json.dumps(pagination).encode() + b"}"
        return Response(body, media_type="application/json")

    async def create_bill(request: Request) -> Response:
        store.get_connection(*ids(request))
        body = parse_json_model(await read_body(request, max_body), BillBody)
        return json_response(store.create_bill(*ids(request), body.record()), 201)

    async def update_bill(request: Request) -> Response:
        bill_id = request.path_params["billId"]
        store.get_bill(*ids(request), bill_id)
        body = parse_json_model(await read_body(request, max_body), BillBody)
        return json_response(store.update_bill(*ids(request), bill_id, body.record()))

    async def upload_attachment(request: Request) -> Response:
        bill_id = request.path_params["billId"]
        store.get_bill(*ids(request), bill_id)
        raw = await read_body(request, limits.max_upload_bytes)
        name, content_type, content = _parse_upload(request.headers.get("content-type", ""), raw)
        attachment = store.add_attachment(*ids(request), bill_id, name, content_type, content)
        return json_response(attachment, 201)

    async def list_attachments(request: Request) -> Response:
        return json_response(store.list_attachments(*ids(request), request.path_params["billId"]))

    async def download_attachment(request: Request) -> Response:
        p = request.path_params
        attachment = store.get_attachment(*ids(request), p["billId"], p["attachmentId"])
        return Response(
            attachment.content,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{_safe_filename(attachment.name)}"'
            },
        )

    async def bill_mapping_options(request: Request) -> Response:
        options = store.bill_mapping_options(*ids(request))
        status_query = request.query_params.get("statusQuery")
        options["accounts"] = _filtered(options["accounts"], status_query)
        options["taxRates"] = _filtered(options["taxRates"], status_query)
        return json_response(options)

    async def payment_mapping_options(request: Request) -> Response:
        options = store.payment_mapping_options(*ids(request))
        options["bankAccounts"] = _filtered(
            options["bankAccounts"], request.query_params.get("statusQuery")
        )
        return json_response(options)

    async def create_bank_account(request: Request) -> Response:
        store.get_connection(*ids(request))
        body = parse_json_model(await read_body(request, max_body), BankAccountBody)
        return json_response(store.create_bank_account(*ids(request), body.record()), 201)

    async def create_payment(request: Request) -> Response:
        bill_id = request.path_params["billId"]
        store.get_bill(*ids(request), bill_id)
        body = parse_json_model(await read_body(request, max_body), PaymentBody)
        payment = store.create_payment(
            *ids(request),
            bill_id,
            amount=body.amount,
            date=body.date,
            account_id=body.account_ref.id,
            reference=body.reference,
            currency_rate=body.currency_rate,
        )
        return json_response(payment, 201)

    base = "/companies/{companyId}/connections/{connectionId}/payables"
    bill = base + "/bills/{billId}"
    return [
        api_route(ctx, base + "/info", company_info, ["GET"]),
        api_route(ctx, base + "/suppliers", list_suppliers, ["GET"]),
        api_route(
            ctx,
            base + "/suppliers",
            create_supplier,
            ["POST"],
            idempotent=True,
            write=("suppliers", "Create"),
        ),
        api_route(
            ctx,
            base + "/suppliers/{supplierId}",
            update_supplier,
            ["PUT"],
            write=("suppliers", "Update"),
        ),
        api_route(ctx, base + "/bills", list_bills, ["GET"]),
        api_route(
            ctx, base + "/bills", create_bill, ["POST"], idempotent=True, write=("bills", "Create")
        ),
        api_route(ctx, bill, update_bill, ["PUT"], idempotent=True, write=("bills", "Update")),
        api_route(
            ctx,
            bill + "/attachments",
            upload_attachment,
            ["POST"],
            write=("bills", "UploadAttachment"),
        ),
        api_route(ctx, bill + "/attachments", list_attachments, ["GET"]),
        api_route(ctx, bill + "/attachments/{attachmentId}/download", download_attachment, ["GET"]),
        api_route(
            ctx,
            bill + "/payment",
            create_payment,
            ["POST"],
            idempotent=True,
            write=("billPayments", "Create"),
        ),
        api_route(ctx, base + "/mappingOptions/bills", bill_mapping_options, ["GET"]),
        api_route(ctx, base + "/mappingOptions/payments", payment_mapping_options, ["GET"]),
        api_route(
            ctx,
            base + "/bankAccounts",
            create_bank_account,
            ["POST"],
            idempotent=True,
            write=("bankAccounts", "Create"),
        ),
    ]
