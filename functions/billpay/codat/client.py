"""The Codat adapter: the only module that imports Codat's SDK, and the one way to call Codat.

`codat_client()` is the one client factory. Every call through `CodatClient`:
- consults the rate-limit throttle first, and raises `CodatRateLimitedError` without calling Codat
  while it holds (Codat's quota is per API key: one 429 holds back every function);
- goes through the official SDK (`codat-sync-for-payables`, pinned) on an httpx client, with the
  SDK's own retries OFF: its default policy re-sends POSTs, which without an Idempotency-Key can
  create twice, and its back-off sleeps inside the Lambda. The workflow retries instead, with
  back-off and honouring Retry-After (see billpay.codat.errors);
- tries a READ again in the Lambda, briefly, when it failed fast with a 5xx or a refused
  connection: at most READ_RETRIES more times, READ_RETRY_PAUSE_SECONDS apart (then doubled),
  and only while READ_RETRY_BUDGET_SECONDS have not passed since the first try. Never a write
  (without an Idempotency-Key it could be applied twice; with one, Codat replays its stored 5xx
  for 90 minutes), a 429 (the throttle holds), a 409 (still syncing: minutes, not seconds) or a
  timeout (another would spend the Lambda's time): those go to the workflow's Retry;
- maps whatever goes wrong to billpay.codat.errors, recording Codat's correlationId; a 429 holds
  the throttle for its Retry-After.

Writes that take an Idempotency-Key (bills, suppliers, bank accounts, payments) must pass
`idempotency_key(intent_id)`, so every retry of one intent sends the same key. None of
onboarding's writes takes one: creating a company or a connection and unlinking have no key in
Codat's API, which is why onboarding finds a company by its tag before creating it again.

Importing the SDK costs 0.5-0.8 s of cold start: only functions that call Codat import this module
(tests/unit/billpay/test_codat_imports.py checks the others).
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from codat_sync_for_payables.exceptions import ApiException
from codat_sync_for_payables.models.errors import (
    CodatSyncPayablesError,
    ErrorMessage,
    NoResponseError,
    ResponseValidationError,
)
from codat_sync_for_payables.models.shared.security import Security
from codat_sync_for_payables.sdk import CodatSyncPayables
from codat_sync_for_payables.types import Unset
from codat_sync_for_payables.utils.retries import RetryConfig

from billpay.bills.models import (
    AccountStatus,
    Address,
    Attachment,
    BankAccountDraft,
    BillDraft,
    BillRecord,
    BillStatus,
    PaymentAccount,
    SupplierDraft,
    SupplierRecord,
    SupplierStatus,
)
from billpay.bills.ports import Page
from billpay.codat.errors import (
    CodatError,
    CodatNotFoundError,
    CodatRateLimitedError,
    CodatRejectedError,
    CodatStillSyncingError,
    CodatUnavailableError,
    CodatUnexpectedResponseError,
)
from billpay.codat.keys import idempotency_key as idempotency_key
from billpay.codat.models import CodatCompany, CodatConnection, CompanyData, Listed
from billpay.codat.throttle import DynamoThrottleStore, Throttle, ThrottleStore
from billpay.core import aws
from billpay.core.money import to_money
from billpay.core.observability import logger
from billpay.core.settings import settings

if TYPE_CHECKING:
    from codat_sync_for_payables.models.shared.connection import Connection

T = TypeVar("T")
Clock = Callable[[], datetime]

# Inside a Lambda that has 29 s: fail fast and let the workflow retry.
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
# The API key is re-read from Secrets Manager this often, so a rotated key is picked up without a
# redeploy while a warm function does not read the secret on every call.
API_KEY_TTL = timedelta(minutes=5)
# A 429 without a usable Retry-After still holds every caller back this long.
DEFAULT_RETRY_AFTER_SECONDS = 60
# Short in-Lambda retries of a read that failed fast (see the module docstring).
READ_RETRIES = 2
READ_RETRY_PAUSE_SECONDS = 0.25
READ_RETRY_BUDGET_SECONDS = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CodatClient:
    """The Codat operations the product uses, each returning billpay.codat.models views."""

    def __init__(
        self,
        sdk: CodatSyncPayables,
        throttle: ThrottleStore,
        clock: Clock = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # Any: the SDK's method groups do not type-check (its api modules define a request model
        # and a method group under the same names); the views below are what is typed.
        self._sdk: Any = sdk
        self._throttle = throttle
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic

    # --- companies -------------------------------------------------------------------------

    def find_company_by_tag(self, key: str, value: str) -> CodatCompany | None:
        """The company tagged `key=value`; the oldest if a failed create left several."""
        page = self._call(
            "GET",
            "list companies",
            lambda: self._sdk.companies.list(request={"tags": f"{key}={value}"}),
        )
        matches = [c for c in page.results or [] if (c.tags or {}).get(key) == value]
        if not matches:
            return None
        oldest = min(matches, key=lambda c: c.created or "")
        return CodatCompany(id=oldest.id, name=oldest.name, tags=oldest.tags or {})

    def create_company(self, name: str, tags: dict[str, str]) -> CodatCompany:
        created = self._call(
            "POST",
            "create company",
            lambda: self._sdk.companies.create(request={"name": name, "tags": tags}),
        )
        return CodatCompany(id=created.id, name=created.name, tags=created.tags or {})

    # --- connections -----------------------------------------------------------------------

    def list_connections(self, company_id: str) -> list[CodatConnection]:
        page = self._call(
            "GET",
            "list connections",
            lambda: self._sdk.connections.list(request={"company_id": company_id}),
        )
        return [_connection(c) for c in page.results or []]

    def create_connection(self, company_id: str, platform_key: str) -> CodatConnection:
        created = self._call(
            "POST",
            "create connection",
            lambda: self._sdk.connections.create(
                request={"company_id": company_id, "request_body": {"platform_key": platform_key}}
            ),
        )
        return _connection(created)

    def get_connection(self, company_id: str, connection_id: str) -> CodatConnection:
        found = self._call(
            "GET",
            "get connection",
            lambda: self._sdk.connections.get(
                request={"company_id": company_id, "connection_id": connection_id}
            ),
        )
        return _connection(found)

    def unlink_connection(self, company_id: str, connection_id: str) -> CodatConnection:
        unlinked = self._call(
            "PATCH",
            "unlink connection",
            lambda: self._sdk.connections.unlink(
                request={
                    "company_id": company_id,
                    "connection_id": connection_id,
                    "request_body": {"status": "Unlinked"},
                }
            ),
        )
        return _connection(unlinked)

    # --- the SMB's books -------------------------------------------------------------------

    def has_read_data(self, company_id: str, connection_id: str) -> bool:
        """True once Codat has read the books: listing suppliers answers instead of a 409."""
        try:
            self._call(
                "GET",
                "list suppliers",
                lambda: self._sdk.suppliers.list(
                    request={"company_id": company_id, "connection_id": connection_id}
                ),
            )
        except CodatStillSyncingError:
            return False
        return True

    def read_company_data(self, company_id: str, connection_id: str) -> CompanyData:
        """The first page of suppliers, open bills and accounts to pay from.

        A 409 while Codat is still syncing is `CodatStillSyncingError`, for the workflow to retry.
        """
        ids = {"company_id": company_id, "connection_id": connection_id}
        suppliers = self._call(
            "GET", "list suppliers", lambda: self._sdk.suppliers.list(request=ids)
        )
        bills = self._call("GET", "list bills", lambda: self._sdk.bills.list(request=ids))
        accounts = self._call(
            "GET",
            "list payment accounts",
            lambda: self._sdk.bill_payments.get_payment_options(request=ids),
        )
        return CompanyData(
            suppliers=_listed(suppliers.results, suppliers.pagination),
            open_bills=_listed(bills.results, bills.pagination),
            payment_accounts=_listed(accounts.bank_accounts, accounts.pagination),
        )

    # --- payables: what the bills capability syncs and writes ------------------------------
    # Records come back as billpay.bills.models, money rounded to the currency's places.

    def list_bills(
        self, company_id: str, connection_id: str, query: str, continuation: str | None
    ) -> Page[BillRecord]:
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "query": query,
            "continuation_token": continuation,
        }
        page = self._call("GET", "list bills", lambda: self._sdk.bills.list(request=request))
        return Page(tuple(_bill(b) for b in page.results or []), _next_token(page.pagination))

    def list_suppliers(
        self, company_id: str, connection_id: str, query: str | None, continuation: str | None
    ) -> Page[SupplierRecord]:
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "query": query,
            "continuation_token": continuation,
        }
        page = self._call(
            "GET", "list suppliers", lambda: self._sdk.suppliers.list(request=request)
        )
        return Page(tuple(_supplier(s) for s in page.results or []), _next_token(page.pagination))

    def list_payment_accounts(
        self, company_id: str, connection_id: str, continuation: str | None
    ) -> Page[PaymentAccount]:
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "continuation_token": continuation,
            # Archived accounts too: paying from one is then refused for what it is.
            "status_query": "status=Active||status=Archived",
        }
        options = self._call(
            "GET",
            "list payment accounts",
            lambda: self._sdk.bill_payments.get_payment_options(request=request),
        )
        accounts = tuple(_account(a) for a in options.bank_accounts or [] if a is not None)
        return Page(accounts, _next_token(options.pagination))

    def create_supplier(
        self, company_id: str, connection_id: str, supplier: SupplierDraft, key: str
    ) -> SupplierRecord:
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "idempotency_key": key,
            "supplier_prototype": _supplier_prototype(supplier),
        }
        created = self._call(
            "POST", "create supplier", lambda: self._sdk.suppliers.create(request=request)
        )
        return _supplier(created)

    def replace_supplier(
        self, company_id: str, connection_id: str, supplier_id: str, supplier: SupplierDraft
    ) -> SupplierRecord:
        """Codat's supplier update: a PUT that replaces the whole record (no Idempotency-Key)."""
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "supplier_id": supplier_id,
            "supplier_prototype": _supplier_prototype(supplier),
        }
        updated = self._call(
            "PUT", "update supplier", lambda: self._sdk.suppliers.update(request=request)
        )
        return _supplier(updated)

    def create_bill(
        self, company_id: str, connection_id: str, bill: BillDraft, key: str
    ) -> BillRecord:
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "idempotency_key": key,
            "bill_prototype": _bill_prototype(bill),
        }
        created = self._call("POST", "create bill", lambda: self._sdk.bills.create(request=request))
        return _bill(created)

    def update_bill(
        self, company_id: str, connection_id: str, bill_id: str, bill: BillDraft, key: str
    ) -> BillRecord:
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "bill_id": bill_id,
            "idempotency_key": key,
            "bill_prototype": _bill_prototype(bill),
        }
        updated = self._call("PUT", "update bill", lambda: self._sdk.bills.update(request=request))
        return _bill(updated)

    def upload_bill_attachment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        file_name: str,
        content_type: str,
        content: bytes,
    ) -> Attachment:
        """Codat takes no Idempotency-Key for an upload: the caller finds out whether an attempt
        whose answer was lost landed (`list_bill_attachments`) before sending it again."""
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "bill_id": bill_id,
            "attachment_upload": {
                "file": {"file_name": file_name, "content": content, "content_type": content_type}
            },
        }
        uploaded = self._call(
            "POST",
            "upload bill attachment",
            lambda: self._sdk.bills.upload_attachment(request=request),
        )
        return _attachment(uploaded)

    def list_bill_attachments(
        self, company_id: str, connection_id: str, bill_id: str
    ) -> list[Attachment]:
        request = {"company_id": company_id, "connection_id": connection_id, "bill_id": bill_id}
        listed = self._call(
            "GET",
            "list bill attachments",
            lambda: self._sdk.bills.list_attachments(request=request),
        )
        return [_attachment(a) for a in listed or []]

    def create_bank_account(
        self, company_id: str, connection_id: str, account: BankAccountDraft, key: str
    ) -> PaymentAccount:
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "idempotency_key": key,
            "bank_account_prototype": {
                "name": account.name,
                "account_type": account.account_type,
                "account_number": account.account_number,
                "sort_code": account.sort_code,
                "nominal_code": account.nominal_code,
                "currency": account.currency,
            },
        }
        created = self._call(
            "POST", "create bank account", lambda: self._sdk.bank_accounts.create(request=request)
        )
        return _account(created)

    def create_bill_payment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        *,
        amount: Decimal,
        day: date,
        account_id: str,
        reference: str | None,
        currency_rate: Decimal | None,
        key: str,
    ) -> str | None:
        """Pay the bill; returns Codat's id for the payment. The same `key` and body go on every
        try of one payment attempt (billpay.payments)."""
        prototype: dict[str, Any] = {
            "amount": amount,
            "date": f"{day.isoformat()}T00:00:00Z",
            "account_ref": {"id": account_id},
        }
        if reference is not None:
            prototype["reference"] = reference
        if currency_rate is not None:
            prototype["currency_rate"] = currency_rate
        request = {
            "company_id": company_id,
            "connection_id": connection_id,
            "bill_id": bill_id,
            "idempotency_key": key,
            "bill_payment_prototype": prototype,
        }
        created = self._call(
            "POST", "create bill payment", lambda: self._sdk.bill_payments.create(request=request)
        )
        payment_id: str | None = created.id
        return payment_id

    # --- every call ------------------------------------------------------------------------

    def _call(self, method: str, operation: str, call: Callable[[], T]) -> T:
        now = self._clock()
        held = self._throttle.current()
        if held is not None and held.blocks(now):
            wait = max(1, math.ceil((held.until - now).total_seconds()))
            raise CodatRateLimitedError(
                f"{operation}: Codat's rate limit holds until {held.until.isoformat()} "
                f"({held.reason}); not calling Codat",
                retry_after_seconds=wait,
            )
        started = self._monotonic()
        pause = READ_RETRY_PAUSE_SECONDS
        for attempt in range(READ_RETRIES + 1):
            try:
                return call()
            except Exception as exc:
                error = codat_error(exc, method, operation)
                if error is None:
                    raise
                again = (
                    attempt < READ_RETRIES
                    and _fails_fast(method, exc, error)
                    and self._monotonic() - started + pause < READ_RETRY_BUDGET_SECONDS
                )
                if not again:
                    self._failed(error, now, operation)
                    raise error from exc
                logger.info(
                    "Codat read failed; trying again",
                    extra={"operation": operation, "status": error.status, "attempt": attempt + 1},
                )
                self._sleep(pause)
                pause *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _failed(self, error: CodatError, now: datetime, operation: str) -> None:
        """What a failed call leaves behind: a 429's hold on the throttle, and a log line."""
        if isinstance(error, CodatRateLimitedError):
            wait = error.retry_after_seconds or DEFAULT_RETRY_AFTER_SECONDS
            self._throttle.hold(
                Throttle(until=now + timedelta(seconds=wait), reason="429", set_at=now)
            )
        logger.warning(
            "Codat call failed",
            extra={
                "operation": operation,
                "status": error.status,
                "correlation_id": error.correlation_id,
                "error": type(error).__name__,
            },
        )


def _fails_fast(method: str, exc: BaseException, error: CodatError) -> bool:
    """A read that Codat answered with a 5xx, or whose connection was refused: worth trying again
    at once. Not a timeout (it would spend as long again) nor anything but CodatUnavailableError."""
    if method != "GET" or type(error) is not CodatUnavailableError:
        return False
    return not isinstance(exc, httpx.TimeoutException | NoResponseError)


def codat_error(exc: BaseException, method: str, operation: str) -> CodatError | None:
    """The billpay.codat.errors equivalent of what the SDK or httpx raised; None if neither."""
    if isinstance(exc, ResponseValidationError):
        return CodatUnexpectedResponseError(
            f"{operation}: Codat's answer does not match the SDK's model: {exc.message[:500]}",
            status=exc.status_code or None,
        )
    if isinstance(exc, CodatSyncPayablesError):
        return _from_status(exc.status_code, method, operation, _answer_of(exc))
    if isinstance(exc, ApiException) and not exc.status:
        return CodatUnavailableError(f"{operation}: no answer from Codat ({exc.reason})")
    if isinstance(exc, httpx.TimeoutException | NoResponseError):
        return CodatUnavailableError(f"{operation}: Codat did not answer in time ({exc})")
    if isinstance(exc, httpx.TransportError):
        return CodatUnavailableError(f"{operation}: could not reach Codat ({exc})")
    return None


class _Answer:
    def __init__(self, error: str, correlation_id: str | None, retry_after: int | None) -> None:
        self.error = error
        self.correlation_id = correlation_id
        self.retry_after = retry_after


def _answer_of(exc: CodatSyncPayablesError) -> _Answer:
    correlation_id: str | None = None
    text = ""
    if isinstance(exc, ErrorMessage):
        correlation_id = exc.data.correlation_id
        text = exc.data.error or ""
    else:
        try:
            body = json.loads(exc.body or "null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            correlation_id = body.get("correlationId")
            text = str(body.get("error") or "")
    return _Answer(text or exc.message[:300], correlation_id, _retry_after(exc.headers))


def _from_status(status: int, method: str, operation: str, answer: _Answer) -> CodatError:
    message = f"{operation}: Codat answered {status}: {answer.error}"
    fields: dict[str, Any] = {"status": status, "correlation_id": answer.correlation_id}
    if status == 429:
        return CodatRateLimitedError(
            message,
            retry_after_seconds=answer.retry_after or DEFAULT_RETRY_AFTER_SECONDS,
            **fields,
        )
    if status == 409 and method == "GET":
        return CodatStillSyncingError(message, **fields)
    if status == 409 or status >= 500 or status == 0:
        # A 409 on a write: the same request is still in flight at Codat.
        return CodatUnavailableError(message, **fields)
    if status == 404:
        return CodatNotFoundError(message, **fields)
    return CodatRejectedError(message, **fields)


def _retry_after(headers: Any) -> int | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    value = headers.get("retry-after") if headers else None
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0, math.ceil((moment - datetime.now(UTC)).total_seconds()))


def _connection(connection: Connection) -> CodatConnection:
    return CodatConnection(
        id=connection.id,
        status=str(connection.status.value),
        platform_key=connection.integration_key,
        link_url=connection.link_url,
    )


def _listed(items: list[Any] | None, pagination: Any) -> Listed:
    more = bool(pagination is not None and pagination.continuation_token)
    return Listed(count=len(items or []), more=more)


# --- payables: SDK models to and from billpay.bills.models ---------------------------------------


def _value(field: Any) -> Any:
    """An optional SDK field's value; None for the SDK's UNSET sentinel."""
    return None if isinstance(field, Unset) else field


def _text(field: Any) -> str | None:
    value = _value(field)
    if value is None:
        return None
    return str(value.value) if isinstance(value, Enum) else str(value)


def _day(text: str) -> date:
    """Codat's dates are datetimes at midnight ("2026-01-31T00:00:00Z") or plain dates."""
    return date.fromisoformat(text[:10])


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _next_token(pagination: Any) -> str | None:
    return _value(pagination.continuation_token) if pagination is not None else None


def _bill(bill: Any) -> BillRecord:
    currency = bill.currency
    total = to_money(_value(bill.total_amount) or 0, currency)
    due = _value(bill.amount_due)
    return BillRecord(
        bill_id=bill.id,
        supplier_id=bill.supplier_ref.id,
        supplier_name=_text(bill.supplier_ref.supplier_name),
        reference=_text(bill.reference),
        issue_date=_day(bill.issue_date),
        due_date=_day(bill.due_date),
        currency=currency,
        total_amount=total,
        amount_due=total if due is None else to_money(due, currency),
        status=BillStatus(_text(bill.status) or BillStatus.UNKNOWN),
        source_modified_date=_instant(_value(bill.source_modified_date)),
    )


def _supplier(supplier: Any) -> SupplierRecord:
    return SupplierRecord(
        supplier_id=supplier.id,
        name=_text(supplier.supplier_name) or "",
        contact_name=_text(supplier.contact_name),
        email_address=_text(supplier.email_address),
        phone=_text(supplier.phone),
        addresses=tuple(
            Address(
                type=_text(a.type) or "Unknown",
                line1=_text(a.line1),
                line2=_text(a.line2),
                city=_text(a.city),
                region=_text(a.region),
                country=_text(a.country),
                postal_code=_text(a.postal_code),
            )
            for a in _value(supplier.addresses) or []
        ),
        status=SupplierStatus(_text(supplier.status) or SupplierStatus.UNKNOWN),
        default_currency=_text(supplier.default_currency),
        source_modified_date=_instant(_value(supplier.source_modified_date)),
    )


def _account(account: Any) -> PaymentAccount:
    return PaymentAccount(
        account_id=account.id,
        name=_text(account.name),
        account_type=_text(account.account_type),
        account_number=_text(account.account_number),
        sort_code=_text(account.sort_code),
        nominal_code=_text(account.nominal_code),
        currency=_text(account.currency),
        status=AccountStatus(_text(account.status) or AccountStatus.ACTIVE),
        source_modified_date=_instant(_value(account.source_modified_date)),
    )


def _attachment(attachment: Any) -> Attachment:
    return Attachment(
        attachment_id=attachment.id,
        name=_text(attachment.name),
        content_type=_text(attachment.content_type),
        file_size=_value(attachment.file_size),
    )


def _supplier_prototype(supplier: SupplierDraft) -> dict[str, Any]:
    # Every field, None included: Codat's update replaces the whole record.
    return {
        "supplier_name": supplier.name,
        "contact_name": supplier.contact_name,
        "email_address": supplier.email_address,
        "phone": supplier.phone,
        "addresses": [a.model_dump(exclude_none=True) for a in supplier.addresses],
        "status": supplier.status.value,
        "default_currency": supplier.default_currency,
    }


def _bill_prototype(bill: BillDraft) -> dict[str, Any]:
    return {
        "supplier_ref": {"id": bill.supplier_id},
        "reference": bill.reference,
        "issue_date": f"{bill.issue_date.isoformat()}T00:00:00Z",
        "due_date": f"{bill.due_date.isoformat()}T00:00:00Z",
        "currency": bill.currency,
        "currency_rate": bill.currency_rate,
        "status": bill.status.value,
        "line_items": [
            {
                "description": line.description,
                "unit_amount": line.unit_amount,
                "quantity": line.quantity,
                "tax_amount": line.tax_amount,
                "account_ref": {"id": line.account_id},
                "tax_rate_ref": {"id": line.tax_rate_id} if line.tax_rate_id else None,
            }
            for line in bill.line_items
        ],
    }


# --- the factory --------------------------------------------------------------------------------


class ApiKeyCache:
    """The Codat API key from Secrets Manager, read at most once per `ttl`."""

    def __init__(
        self, read: Callable[[], str], ttl: timedelta = API_KEY_TTL, clock: Clock = _utcnow
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._value: str | None = None
        self._read_at: datetime | None = None

    def get(self) -> str:
        now = self._clock()
        if self._value is None or self._read_at is None or now - self._read_at >= self._ttl:
            self._value = self._read()
            self._read_at = now
        return self._value


def sdk_for(base_url: str, api_key: str, http: httpx.Client | None = None) -> CodatSyncPayables:
    """The SDK pointed at `base_url`, on httpx, with its retries off."""
    auth = "Basic " + base64.b64encode(api_key.encode()).decode()
    return CodatSyncPayables(
        security=Security(auth_header=auth),
        server_url=base_url,
        client=http
        or httpx.Client(
            timeout=httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
        ),
        retry_config=RetryConfig(strategy="none"),
        timeout_ms=int(READ_TIMEOUT_SECONDS * 1000),
    )


class _Factory:
    """One SDK per cold start, rebuilt when the API key in Secrets Manager changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: ApiKeyCache | None = None
        self._sdk: tuple[str, str, CodatSyncPayables] | None = None

    def client(self) -> CodatClient:
        config = settings()
        if not config.codat_base_url or not config.codat_api_key_secret_arn:
            raise RuntimeError(
                "CODAT_BASE_URL and CODAT_API_KEY_SECRET_ARN must be set for a function that "
                "calls Codat (infra/constructs/onboarding.py sets them)"
            )
        secret_arn = config.codat_api_key_secret_arn
        with self._lock:
            if self._keys is None:
                self._keys = ApiKeyCache(lambda: _read_secret(secret_arn))
            api_key = self._keys.get()
            base_url = config.codat_base_url
            if self._sdk is None or self._sdk[:2] != (base_url, api_key):
                self._sdk = (base_url, api_key, sdk_for(base_url, api_key))
            sdk = self._sdk[2]
        throttle = DynamoThrottleStore(aws.dynamodb(), config.companies_table)
        return CodatClient(sdk, throttle)


def _read_secret(secret_arn: str) -> str:
    return aws.secretsmanager().get_secret_value(SecretId=secret_arn)["SecretString"]


_factory = _Factory()


def codat_client() -> CodatClient:
    """The Codat client for this function: the one way to call Codat."""
    return _factory.client()
