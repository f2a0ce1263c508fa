"""The emulator's control surface under ``/_emulator/`` (same API key as the Codat routes): make the
SMB's accounting platform do what it does on its own, and watch the webhooks that follow.

Link (JSON, for scripts and tests)
  POST /_emulator/link/{companyId}/connections/{connectionId}   {"action": "authorize"|"cancel"|
       "fail", "size"?: bills, "message"?: why it failed, "readErrors"?: {dataType: status}}
Companies and their books
  GET  /_emulator/companies/{companyId}                          summary (the webhooks' portal link)
  PUT  /_emulator/companies/{companyId}/dataset                  {"bills"?, "seed"?} for Link
  GET|PUT /_emulator/companies/{companyId}/read-errors           {"readErrors": {dataType: status}}
  POST …/connections/{connectionId}/bills                        {"count"?, "status"?,
       "supplierId"?} new bills
  PATCH …/connections/{connectionId}/bills/{billId}              {"amount"?, "dueDate"?,
       "issueDate"?, "reference"?, "supplierId"?} edited in the platform
  POST …/connections/{connectionId}/suppliers                    {"count"?, "name"?, "status"?,
       "currency"?} new suppliers
  POST …/connections/{connectionId}/bills/{billId}/pay           {"amount"?} paid outside
  POST …/connections/{connectionId}/bills/{billId}/void          voided in the platform
  POST …/connections/{connectionId}/read                         {"dataTypes"?, "readErrors"?}
       -> read.completed
  POST …/connections/{connectionId}/deauthorize                  -> connection.disconnected
  POST …/connections/{connectionId}/write-results                {"dataType","type","successful",
       "status"?: Failed|TimedOut, "recordId"?, "attachmentId"?} a write's late outcome
       -> {dataType}.write.successful|unsuccessful
Quota
  POST /_emulator/quota                                          {"action": "exhaust"|"reset",
       "companyId"?} -> client.rateLimit.reached|reset
Webhook delivery
  GET|PATCH /_emulator/webhooks/options                          duplicate, out_of_order, …
  GET|DELETE /_emulator/webhooks/deliveries                      the delivery log (attempts, codes)
  GET  /_emulator/webhooks/events                                every webhook generated
  POST /_emulator/webhooks/wait                                  {"timeoutSeconds"} until idle
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from codat_emulator.api_common import (
    correlation_id,
    json_response,
    parse_json_model,
    read_body,
    store_error,
)
from codat_emulator.config import EmulatorConfig
from codat_emulator.errors import ApiError, error_response
from codat_emulator.link import LinkService, link_service_for
from codat_emulator.redirects import BadRedirect, redirect_url
from codat_emulator.seed import (
    MAX_BILLS,
    DatasetSpec,
    base_currency_for,
    generate_bills,
)
from codat_emulator.store import (
    BILL_STATUSES,
    Account,
    Bill,
    BillLine,
    Store,
    StoreError,
    Supplier,
    TaxRate,
    ValidationFailed,
    ValidationItem,
    money,
    new_id,
)
from codat_emulator.webhooks import (
    READ_ERROR_STATUSES,
    READABLE_DATA_TYPES,
    WebhookDispatcher,
    build_write_webhook,
    dispatcher_for,
)

MAX_CONTROL_BODY = 64_000
Handler = Callable[[Request], Awaitable[Response]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _ReadErrors(_Body):
    # data type -> the status its read ends in (checked against Codat's lists by _check_read)
    read_errors: dict[str, str] | None = Field(None, alias="readErrors")

    @model_validator(mode="after")
    def _known(self) -> _ReadErrors:
        for data_type, status in (self.read_errors or {}).items():
            if data_type not in READABLE_DATA_TYPES:
                raise ValueError(f"'{data_type}' is not one of {', '.join(READABLE_DATA_TYPES)}")
            if status not in READ_ERROR_STATUSES:
                raise ValueError(
                    f"'{status}' is not a read error status: {', '.join(READ_ERROR_STATUSES)}"
                )
        return self


class LinkAction(_ReadErrors):
    action: Literal["authorize", "cancel", "fail"]
    size: int | None = Field(None, ge=0, le=MAX_BILLS)
    message: str = Field(
        "The user's accounting platform refused the authorization.", max_length=500
    )
    redirect: str | None = None


class ReadErrorsChoice(_ReadErrors):
    pass


class DatasetChoice(_Body):
    bills: int | None = Field(None, ge=0, le=MAX_BILLS)
    seed: str | None = Field(None, min_length=1, max_length=200)


class NewBills(_Body):
    count: int = Field(1, ge=1, le=10_000)
    status: Literal["Open", "Draft", "PartiallyPaid", "Paid", "Void"] = "Open"
    supplier_id: str | None = Field(None, alias="supplierId")


class NewSuppliers(_Body):
    count: int = Field(1, ge=1, le=1_000)
    name: str | None = Field(None, min_length=1, max_length=200)
    status: Literal["Active", "Archived"] = "Active"
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")


class BillChange(_Body):
    """A bill edited in the accounting platform; fields left out stay as they are."""

    amount: Decimal | None = Field(None, gt=0, max_digits=14, decimal_places=2)
    due_date: str | None = Field(None, alias="dueDate", pattern=r"^\d{4}-\d{2}-\d{2}$")
    issue_date: str | None = Field(None, alias="issueDate", pattern=r"^\d{4}-\d{2}-\d{2}$")
    reference: str | None = Field(None, max_length=255)
    supplier_id: str | None = Field(None, alias="supplierId")


class ExternalPayment(_Body):
    amount: Decimal | None = Field(None, gt=0)
    date: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class ReadRequest(_ReadErrors):
    data_types: list[str] | None = Field(None, alias="dataTypes", min_length=1)


class WriteResult(_Body):
    data_type: Literal["bills", "suppliers", "bankAccounts", "billPayments"] = Field(
        "bills", alias="dataType"
    )
    type: Literal["Create", "Update", "Delete", "UploadAttachment"] = "Create"
    successful: bool = False
    # An unsuccessful write Failed, or TimedOut (the platform never answered).
    status: Literal["Failed", "TimedOut"] = "Failed"
    record_id: str | None = Field(None, alias="recordId")
    attachment_id: str | None = Field(None, alias="attachmentId")

    @model_validator(mode="after")
    def _consistent(self) -> WriteResult:
        if self.successful and "status" in self.model_fields_set:
            raise ValueError("status is for unsuccessful writes (Failed or TimedOut)")
        if self.attachment_id is not None and self.type != "UploadAttachment":
            raise ValueError("attachmentId is for UploadAttachment writes")
        return self


class QuotaAction(_Body):
    action: Literal["exhaust", "reset"]
    company_id: str = Field("", alias="companyId")


class WaitRequest(_Body):
    timeout_seconds: float = Field(10.0, gt=0, le=120, alias="timeoutSeconds")


async def _parse(request: Request, model: type[Any]) -> Any:
    raw = await read_body(request, MAX_CONTROL_BODY)
    if not raw.strip():
        try:
            return model()  # every field optional: an empty body means the defaults
        except ValidationError as error:
            raise ApiError(400, "A JSON request body is required.", [
                ValidationItem(e["msg"], ".".join(str(p) for p in e["loc"]) or None, e["type"])
                for e in error.errors()
            ]) from error  # fmt: skip
    return parse_json_model(raw, model)


def bill_from_json(body: dict[str, Any]) -> Bill:
    """A store record from a bill's Codat JSON (to rewrite it as the platform would)."""

    def dec(value: Any) -> Decimal:
        return Decimal(str(value)) if value is not None else Decimal(0)

    return Bill(
        id=body["id"],
        supplier_id=body["supplierRef"]["id"],
        supplier_name=body["supplierRef"].get("supplierName"),
        issue_date=body["issueDate"],
        due_date=body["dueDate"],
        currency=body["currency"],
        currency_rate=dec(body["currencyRate"]) if body.get("currencyRate") is not None else None,
        status=body["status"],
        total_amount=money(dec(body["totalAmount"])),
        amount_due=money(dec(body["amountDue"])),
        reference=body.get("reference"),
        line_items=[
            BillLine(
                description=line.get("description"),
                unit_amount=dec(line.get("unitAmount")),
                quantity=dec(line.get("quantity", 1)),
                tax_amount=dec(line.get("taxAmount")),
                total_amount=dec(line["totalAmount"])
                if line.get("totalAmount") is not None
                else None,
                account_id=(line.get("accountRef") or {}).get("id"),
                tax_rate_id=(line.get("taxRateRef") or {}).get("id"),
            )
            for line in body.get("lineItems", [])
        ],
    )


class PlatformChanges:
    """Changes the accounting platform makes on its own: no write webhooks, seen by the next
    read."""

    def __init__(self, store: Store, dispatcher: WebhookDispatcher, link: LinkService) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.link = link
        self._batches = itertools.count(1)

    def _all_suppliers(self, company_id: str, connection_id: str) -> list[Supplier]:
        suppliers: list[Supplier] = []
        after = 0
        while True:
            page = self.store.list_suppliers(company_id, connection_id, after, 1000)
            suppliers.extend(
                Supplier(
                    id=s["id"],
                    supplier_name=s["supplierName"],
                    status=s["status"],
                    default_currency=s.get("defaultCurrency"),
                )
                for s in page.items
            )
            if page.next_after is None:
                return suppliers
            after = page.next_after

    def add_bills(
        self,
        company_id: str,
        connection_id: str,
        count: int,
        status: str,
        supplier_id: str | None = None,
    ) -> list[dict[str, Any]]:
        connection = self.store.get_connection(company_id, connection_id)
        suppliers = self._all_suppliers(company_id, connection_id)
        if supplier_id is not None:
            suppliers = [s for s in suppliers if s.id == supplier_id and s.status == "Active"]
            if not suppliers:
                raise ValidationFailed([ValidationItem(
                    f"Supplier '{supplier_id}' is not an active supplier of this connection.",
                    "supplierId",
                )])  # fmt: skip
        if not any(s.status == "Active" for s in suppliers):
            raise ValidationFailed([ValidationItem(
                "The connection has no active suppliers yet: authorize it through Link first.",
                "connectionId",
            )])  # fmt: skip
        options = self.store.bill_mapping_options(company_id, connection_id)
        accounts = [
            Account(id=a["id"], name=a.get("name") or "", type=a.get("type") or "Expense")
            for a in options["accounts"]
        ]
        tax_rates = [
            TaxRate(
                id=t["id"],
                name=t.get("name") or "",
                effective_tax_rate=Decimal(str(t.get("effectiveTaxRate") or 0)),
            )
            for t in options["taxRates"]
        ]
        base = self.store.company_info(company_id, connection_id).get("baseCurrency")
        platform = str(connection["integrationKey"])
        spec = DatasetSpec(
            seed=self.link.company_dataset(company_id)["seed"],
            company_id=company_id,
            platform_key=platform,
            bills=0,
            as_of=self.store.clock().date(),
        )
        existing = sum(self.store.count_bills(company_id, connection_id).values())
        bills = generate_bills(
            spec,
            base or base_currency_for(platform),
            suppliers,
            accounts,
            tax_rates,
            count,
            purpose=f"control-batch-{next(self._batches)}-{existing}",
            first_number=existing + 1,
            status=status,
        )
        created = []
        with self.dispatcher.translator.outside_api():
            for bill in bills:
                bill.source_modified_date = None  # new in the platform now
                created.append(self.store.put_bill(company_id, connection_id, bill))
        return created

    def add_suppliers(
        self, company_id: str, connection_id: str, new: NewSuppliers
    ) -> list[dict[str, Any]]:
        existing = len(self._all_suppliers(company_id, connection_id))
        base = self.store.company_info(company_id, connection_id).get("baseCurrency")
        created = []
        with self.dispatcher.translator.outside_api():
            for offset in range(new.count):
                number = existing + offset + 1
                name = new.name if new.count == 1 and new.name else None
                supplier = Supplier(
                    id=new_id(),
                    supplier_name=name or f"{new.name or 'New Supplier'} {number}",
                    status=new.status,
                    email_address=f"accounts@supplier{number}.example",
                    default_currency=new.currency or base,
                )
                created.append(self.store.put_supplier(company_id, connection_id, supplier))
        return created

    def change_bill(
        self, company_id: str, connection_id: str, bill_id: str, change: BillChange
    ) -> dict[str, Any]:
        current = self.store.get_bill(company_id, connection_id, bill_id)
        if not change.model_fields_set:
            raise ValidationFailed([ValidationItem(
                "Nothing to change: give amount, dueDate, issueDate, reference or supplierId.",
            )])  # fmt: skip
        bill = bill_from_json(current)
        if change.amount is not None:
            paid = bill.total_amount - bill.amount_due
            total = money(change.amount)
            if bill.status in ("Paid", "Void"):
                raise ValidationFailed([ValidationItem(
                    f"Bill '{bill_id}' is {bill.status}: its amount cannot change.", "amount"
                )])  # fmt: skip
            if total <= paid:
                raise ValidationFailed([ValidationItem(
                    f"The amount must stay above the {paid} already paid.", "amount"
                )])  # fmt: skip
            first = bill.line_items[0] if bill.line_items else BillLine()
            bill.line_items = [
                BillLine(
                    description=first.description,
                    unit_amount=total,
                    quantity=Decimal(1),
                    account_id=first.account_id,
                )
            ]
            bill.total_amount, bill.amount_due = total, money(total - paid)
        if change.supplier_id is not None:
            supplier = self.store.get_supplier(company_id, connection_id, change.supplier_id)
            bill.supplier_id, bill.supplier_name = supplier["id"], supplier["supplierName"]
        if change.due_date is not None:
            bill.due_date = change.due_date
        if change.issue_date is not None:
            bill.issue_date = change.issue_date
        if "reference" in change.model_fields_set:
            bill.reference = change.reference
        bill.source_modified_date = None  # changed in the platform now
        with self.dispatcher.translator.outside_api():
            return self.store.put_bill(company_id, connection_id, bill)

    def pay(
        self, company_id: str, connection_id: str, bill_id: str, payment: ExternalPayment
    ) -> dict[str, Any]:
        with self.dispatcher.translator.outside_api():
            return self.store.record_external_payment(
                company_id, connection_id, bill_id, payment.amount, payment.date
            )

    def void(self, company_id: str, connection_id: str, bill_id: str) -> dict[str, Any]:
        current = self.store.get_bill(company_id, connection_id, bill_id)
        if current["status"] not in ("Open", "Draft"):
            raise ValidationFailed([ValidationItem(
                f"Only Open or Draft bills can be voided; bill '{bill_id}' is"
                f" {current['status']} (remove its payments in the platform first).",
                "status",
            )])  # fmt: skip
        bill = bill_from_json(current)
        bill.status = "Void"
        bill.amount_due = Decimal("0.00")
        bill.source_modified_date = None
        with self.dispatcher.translator.outside_api():
            return self.store.put_bill(company_id, connection_id, bill)


def routes(store: Store, config: EmulatorConfig) -> list[BaseRoute]:
    link = link_service_for(store, config)
    dispatcher = dispatcher_for(store, config)
    platform = PlatformChanges(store, dispatcher, link)

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            cid = correlation_id(request)
            try:
                return await handler(request)
            except ApiError as error:
                return error_response(error, cid)
            except StoreError as error:
                return error_response(store_error(error), cid)
            except (ValueError, BadRedirect) as error:
                return error_response(ApiError(400, str(error)), cid)

        return endpoint

    def ids(request: Request) -> tuple[str, str]:
        return request.path_params["company_id"], request.path_params["connection_id"]

    async def link_action(request: Request) -> Response:
        company_id, connection_id = ids(request)
        body: LinkAction = await _parse(request, LinkAction)
        if body.action == "authorize":
            outcome = await run_in_threadpool(
                link.authorize, company_id, connection_id, body.size, body.read_errors
            )
        elif body.action == "cancel":
            outcome = link.cancel(company_id, connection_id)
        else:
            outcome = link.fail(company_id, connection_id, body.message)
        template = body.redirect or link.settings.redirect_template
        return json_response(
            {
                "connection": outcome.connection,
                "statusCode": outcome.status_code,
                "recordsLoaded": outcome.records_loaded,
                "readEvent": outcome.read_event,
                "redirectUrl": redirect_url(
                    template, company_id, connection_id, outcome.status_code
                )
                if template
                else None,
            }
        )

    async def company_summary(request: Request) -> Response:
        company_id = request.path_params["company_id"]
        company = store.get_company(company_id)
        connections = []
        for connection in store.list_connections(company_id):
            counts = store.count_bills(company_id, connection["id"])
            connections.append(
                {
                    "connection": connection,
                    "bills": {status: counts.get(status, 0) for status in BILL_STATUSES},
                    "initialReadDone": dispatcher.translator.has_read(company_id, connection["id"]),
                }
            )
        return json_response(
            {
                "company": company,
                "connections": connections,
                "dataset": link.company_dataset(company_id),
            }
        )

    async def company_dataset(request: Request) -> Response:
        body: DatasetChoice = await _parse(request, DatasetChoice)
        return json_response(
            link.set_company_dataset(request.path_params["company_id"], body.bills, body.seed)
        )

    async def read_errors(request: Request) -> Response:
        company_id = request.path_params["company_id"]
        if request.method == "PUT":
            body: ReadErrorsChoice = await _parse(request, ReadErrorsChoice)
            link.set_company_read_errors(company_id, body.read_errors or {})
        store.get_company(company_id)
        return json_response({"readErrors": link.company_read_errors(company_id)})

    async def add_bills(request: Request) -> Response:
        company_id, connection_id = ids(request)
        body: NewBills = await _parse(request, NewBills)
        bills = await run_in_threadpool(
            platform.add_bills, company_id, connection_id, body.count, body.status, body.supplier_id
        )
        return json_response({"bills": bills}, status=201)

    async def add_suppliers(request: Request) -> Response:
        company_id, connection_id = ids(request)
        body: NewSuppliers = await _parse(request, NewSuppliers)
        suppliers = platform.add_suppliers(company_id, connection_id, body)
        return json_response({"suppliers": suppliers}, status=201)

    async def change_bill(request: Request) -> Response:
        company_id, connection_id = ids(request)
        body: BillChange = await _parse(request, BillChange)
        bill_id = request.path_params["bill_id"]
        return json_response(platform.change_bill(company_id, connection_id, bill_id, body))

    async def pay_bill(request: Request) -> Response:
        company_id, connection_id = ids(request)
        body: ExternalPayment = await _parse(request, ExternalPayment)
        return json_response(
            platform.pay(company_id, connection_id, request.path_params["bill_id"], body)
        )

    async def void_bill(request: Request) -> Response:
        company_id, connection_id = ids(request)
        return json_response(
            platform.void(company_id, connection_id, request.path_params["bill_id"])
        )

    async def read(request: Request) -> Response:
        company_id, connection_id = ids(request)
        body: ReadRequest = await _parse(request, ReadRequest)
        unknown = [d for d in body.data_types or [] if d not in READABLE_DATA_TYPES]
        if unknown:
            raise ApiError(400, "Unknown data types.", [
                ValidationItem(f"'{d}' is not one of {', '.join(READABLE_DATA_TYPES)}.",
                               "dataTypes")
                for d in unknown
            ])  # fmt: skip
        store.get_connection(company_id, connection_id)
        errors = body.read_errors
        if errors is None:
            errors = link.company_read_errors(company_id)
        result = dispatcher.complete_read(company_id, connection_id, body.data_types, None, errors)
        statuses = result.statuses
        return json_response(
            {
                "eventType": result.webhook.event_type,
                "webhookId": result.webhook.id,
                "recordsModified": result.records_modified,
                "statuses": statuses,
                # the read's status: Complete, or the first error among its data types
                "status": next((v for v in statuses.values() if v != "Complete"), "Complete")
                if statuses
                else None,
            }
        )

    async def deauthorize(request: Request) -> Response:
        company_id, connection_id = ids(request)
        return json_response(store.deauthorize_connection(company_id, connection_id))

    async def write_result(request: Request) -> Response:
        company_id, connection_id = ids(request)
        body: WriteResult = await _parse(request, WriteResult)
        store.get_connection(company_id, connection_id)
        now = store.clock()
        webhook = build_write_webhook(
            data_type=body.data_type,
            successful=body.successful,
            write_type=body.type,
            reference=dispatcher.translator.reference(company_id),
            connection_id=connection_id,
            requested=now,
            completed=now,
            record_id=body.record_id,
            attachment_id=body.attachment_id,
            failed_status=body.status,
        )
        dispatcher.publish(webhook)
        return json_response(webhook.envelope(), status=201)

    async def quota(request: Request) -> Response:
        body: QuotaAction = await _parse(request, QuotaAction)
        if body.company_id:
            store.get_company(body.company_id)
        if body.action == "exhaust":
            state = store.set_quota(body.company_id, remaining=0)
        else:
            state = store.reset_quota(body.company_id)
        return json_response(
            {
                "dailyQuota": state.limit,
                "quotaRemaining": state.remaining,
                "expiryDate": state.resets_at.isoformat(),
            }
        )

    async def webhook_options(request: Request) -> Response:
        if request.method == "PATCH":
            raw = await read_body(request, MAX_CONTROL_BODY)
            changes = parse_json_model(raw, _OptionsPatch).model_dump(exclude_unset=True)
            try:
                dispatcher.update_options(changes)
            except ValidationError as error:
                raise ApiError(400, "Invalid webhook delivery options.", [
                    ValidationItem(e["msg"], ".".join(str(p) for p in e["loc"]) or None, e["type"])
                    for e in error.errors()
                ]) from error  # fmt: skip
        return json_response(dispatcher.options.model_dump(mode="json"))

    async def deliveries(request: Request) -> Response:
        if request.method == "DELETE":
            dispatcher.clear_logs()
            return Response(status_code=204)
        return json_response(
            {"pending": dispatcher.pending_count(), "deliveries": dispatcher.deliveries()}
        )

    async def events(request: Request) -> Response:
        return json_response({"events": dispatcher.events()})

    async def wait(request: Request) -> Response:
        body: WaitRequest = await _parse(request, WaitRequest)
        idle = await run_in_threadpool(dispatcher.wait_until_idle, body.timeout_seconds)
        return json_response({"idle": idle, "pending": dispatcher.pending_count()})

    connection = "/_emulator/companies/{company_id}/connections/{connection_id}"
    table: list[tuple[str, Handler, list[str]]] = [
        ("/_emulator/link/{company_id}/connections/{connection_id}", link_action, ["POST"]),
        ("/_emulator/companies/{company_id}", company_summary, ["GET"]),
        ("/_emulator/companies/{company_id}/dataset", company_dataset, ["PUT"]),
        ("/_emulator/companies/{company_id}/read-errors", read_errors, ["GET", "PUT"]),
        (connection + "/bills", add_bills, ["POST"]),
        (connection + "/bills/{bill_id}", change_bill, ["PATCH"]),
        (connection + "/suppliers", add_suppliers, ["POST"]),
        (connection + "/bills/{bill_id}/pay", pay_bill, ["POST"]),
        (connection + "/bills/{bill_id}/void", void_bill, ["POST"]),
        (connection + "/read", read, ["POST"]),
        (connection + "/deauthorize", deauthorize, ["POST"]),
        (connection + "/write-results", write_result, ["POST"]),
        ("/_emulator/quota", quota, ["POST"]),
        ("/_emulator/webhooks/options", webhook_options, ["GET", "PATCH"]),
        ("/_emulator/webhooks/deliveries", deliveries, ["GET", "DELETE"]),
        ("/_emulator/webhooks/events", events, ["GET"]),
        ("/_emulator/webhooks/wait", wait, ["POST"]),
    ]
    return [Route(path, guarded(handler), methods=methods) for path, handler, methods in table]


class _OptionsPatch(_Body):
    """Any subset of the delivery options; validated again as a whole by the dispatcher."""

    time_scale: float | None = None
    timeout_seconds: float | None = None
    retry_schedule: list[float] | None = None
    duplicate: bool | None = None
    duplicate_after_seconds: float | None = None
    out_of_order: bool | None = None
    out_of_order_hold_seconds: float | None = None
    delay_seconds: float | None = None
    allow_remote: bool | None = None
