"""The product's writes through Codat: suppliers, bills, attachments, bank accounts.

Each write carries a request id the product chose, and is applied at most once:
1. the company must be READY and the platform's rules hold (`rules`): else nothing is sent;
2. the request is recorded in the ledger (`PayablesLedger.begin_request`); a request id seen
   before gets the stored answer back (DONE, or FAILED with Codat's reason), or a 409 if it
   came with other content;
3. Codat is called with an Idempotency-Key derived from the company, the operation, the request
   id and the attempt. A retry while the first attempt may still be running is a 409
   (RequestInProgress). A retry after an attempt that did not answer first looks in Codat for
   the record that attempt may have made (`find`): Codat replays every answer under a key for 90
   minutes, a 500 included, so the same key cannot tell whether the write landed; reading can.
   Found: that is the answer. Not found: a new attempt, with a new key;
4. the record Codat answers is stored at once (the next sync would bring it too) and the answer
   recorded, so a retry days later, after Codat forgot the key, still creates nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from billpay.bills import rules
from billpay.bills.models import (
    WRITABLE_STATUSES,
    Attachment,
    BankAccountDraft,
    BillDraft,
    BillRecord,
    Connection,
    PaymentAccount,
    RequestState,
    SupplierDraft,
    SupplierRecord,
    SyncedRecord,
    WriteRequest,
)
from billpay.bills.ports import Page, PayablesReader, PayablesSource, PayablesStore
from billpay.bills.sync import bills_query, modified_since
from billpay.codat.errors import CodatNotFoundError, CodatRejectedError, CodatRetryableError
from billpay.codat.keys import idempotency_key
from billpay.companies.ports import CompanyRepository
from billpay.core.errors import BillPayError, ConflictError, NotFoundError
from billpay.core.money import to_money

REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]


class RequestInProgressError(BillPayError):
    code = "RequestInProgress"
    http_status = HTTPStatus.CONFLICT


class CodatRefusedError(BillPayError):
    """Codat (or the accounting platform behind it) refused the write: the request must change."""

    code = "CodatRefused"
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


# -- the request bodies ----------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    request_id: RequestId = Field(alias="requestId")


class CreateSupplier(_Request):
    supplier: SupplierDraft


class ReplaceSupplier(_Request):
    supplier: SupplierDraft


class CreateBill(_Request):
    bill: BillDraft


class UpdateBill(_Request):
    bill: BillDraft


class CreateBankAccount(_Request):
    account: BankAccountDraft = Field(alias="bankAccount")


class UploadAttachment(_Request):
    file_name: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")
    ] = Field(alias="fileName")
    content_type: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$", max_length=100)
    ] = Field(alias="contentType")
    # The file, base64.
    content: bytes = Field(
        description="The file, base64",
        json_schema_extra={"format": "byte", "contentEncoding": "base64"},
    )

    @field_validator("content", mode="before")
    @classmethod
    def _base64(cls, value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError("content must be the file as a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError("content is not valid base64") from error


# -- what the writes need ----------------------------------------------------------------------------


class PayablesWriter(PayablesSource, Protocol):
    """Codat's writes, and (from PayablesSource) the listings that tell whether a write landed
    (`billpay.codat.client.CodatClient` implements it)."""

    def create_supplier(
        self, company_id: str, connection_id: str, supplier: SupplierDraft, key: str
    ) -> SupplierRecord: ...

    def replace_supplier(
        self, company_id: str, connection_id: str, supplier_id: str, supplier: SupplierDraft
    ) -> SupplierRecord: ...

    def create_bill(
        self, company_id: str, connection_id: str, bill: BillDraft, key: str
    ) -> BillRecord: ...

    def update_bill(
        self, company_id: str, connection_id: str, bill_id: str, bill: BillDraft, key: str
    ) -> BillRecord: ...

    def upload_bill_attachment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        file_name: str,
        content_type: str,
        content: bytes,
    ) -> Attachment: ...

    def list_bill_attachments(
        self, company_id: str, connection_id: str, bill_id: str
    ) -> list[Attachment]: ...

    def create_bank_account(
        self, company_id: str, connection_id: str, account: BankAccountDraft, key: str
    ) -> PaymentAccount: ...


class PayablesLedger(PayablesStore, PayablesReader, Protocol):
    """The payables table, with the ledger of writes and a created account's arrival."""

    def request(self, company_id: str, request_id: str) -> WriteRequest | None: ...

    def begin_request(self, company_id: str, request: WriteRequest) -> WriteRequest | None: ...

    def settle_request(
        self, company_id: str, request_id: str, state: RequestState, outcome: dict[str, Any]
    ) -> None: ...

    def next_attempt(self, company_id: str, request_id: str, expected: int, at: datetime) -> bool:
        """Move the request to attempt `expected + 1` if it is still at `expected`."""
        ...

    def end_attempt(self, company_id: str, request_id: str, attempt: int) -> None:
        """Mark the attempt over, without an answer (a retry need not wait for it)."""
        ...

    def add_payment_account(
        self, company_id: str, account: PaymentAccount, at: datetime
    ) -> None: ...

    def pending_requests(self, company_id: str, operations: Sequence[str]) -> list[WriteRequest]:
        """The company's PENDING requests for these operations."""
        ...

    def fail_pending_request(
        self, company_id: str, request_id: str, attempt: int, outcome: dict[str, Any]
    ) -> bool:
        """FAILED with `outcome` if still PENDING at `attempt`; False otherwise."""
        ...


@dataclass(frozen=True)
class WriteDependencies:
    companies: CompanyRepository
    payables: PayablesLedger
    # Built on first use: the Codat SDK costs cold-start time the reads never pay.
    codat: Callable[[], PayablesWriter]
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class WriteOutcome:
    status: HTTPStatus
    body: dict[str, Any]
    # True when this is the stored answer to an earlier attempt of the same request.
    replayed: bool = False


# -- the writes --------------------------------------------------------------------------------------


def create_supplier(
    company_id: str, request: CreateSupplier, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    draft = request.supplier

    def find(codat: PayablesWriter, since: datetime) -> SupplierRecord | None:
        listed = _all(codat.list_suppliers, connection, modified_since(since))
        return next((s for s in listed if _same_supplier(s, draft)), None)

    def send(codat: PayablesWriter, key: str) -> SupplierRecord:
        return codat.create_supplier(*_ids(connection), draft, key)

    write = _Write("createSupplier", draft, send, find, HTTPStatus.CREATED)
    return _once(deps, connection, request, write)


def replace_supplier(
    company_id: str, supplier_id: str, request: ReplaceSupplier, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    _known_supplier(deps, company_id, supplier_id)
    rules.check_supplier_update(request.supplier)

    def send(codat: PayablesWriter, key: str) -> SupplierRecord:
        # A PUT of the whole record (Codat takes no key for it): sending it again is harmless.
        return codat.replace_supplier(*_ids(connection), supplier_id, request.supplier)

    operation = f"updateSupplier:{supplier_id}"
    write = _Write(operation, request.supplier, send, _nothing_to_find, HTTPStatus.OK)
    return _once(deps, connection, request, write)


def create_bill(company_id: str, request: CreateBill, deps: WriteDependencies) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    draft = request.bill
    supplier = deps.payables.supplier(company_id, draft.supplier_id)
    rules.check_bill(connection.platform_key, draft, supplier)

    def find(codat: PayablesWriter, since: datetime) -> BillRecord | None:
        listed = _all(codat.list_bills, connection, bills_query(since))
        return next((b for b in listed if _is(b, draft)), None)

    def send(codat: PayablesWriter, key: str) -> BillRecord:
        return codat.create_bill(*_ids(connection), draft, key)

    write = _Write("createBill", draft, send, find, HTTPStatus.CREATED)
    return _once(deps, connection, request, write)


def update_bill(
    company_id: str, bill_id: str, request: UpdateBill, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    stored = deps.payables.bill(company_id, bill_id)
    if stored is None:
        raise NotFoundError(f"bill {bill_id!r} is not known for company {company_id!r}")
    draft = request.bill
    supplier = deps.payables.supplier(company_id, draft.supplier_id)
    rules.check_bill(connection.platform_key, draft, supplier)

    def find(codat: PayablesWriter, since: datetime) -> BillRecord | None:
        listed = _all(codat.list_bills, connection, bills_query(since))
        return next((b for b in listed if b.bill_id == bill_id and _is(b, draft)), None)

    def send(codat: PayablesWriter, key: str) -> BillRecord:
        return codat.update_bill(*_ids(connection), bill_id, draft, key)

    write = _Write(f"updateBill:{bill_id}", draft, send, find, HTTPStatus.OK)
    # Not checked on a retry of a request already answered: the bill may be Paid by now.
    return _once(deps, connection, request, write, lambda: rules.check_bill_update(stored))


def upload_attachment(
    company_id: str, bill_id: str, request: UploadAttachment, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    if deps.payables.bill(company_id, bill_id) is None:
        raise NotFoundError(f"bill {bill_id!r} is not known for company {company_id!r}")
    rules.check_attachment(connection.platform_key, request.file_name, len(request.content))
    content = {
        "fileName": request.file_name,
        "contentType": request.content_type,
        "sha256": hashlib.sha256(request.content).hexdigest(),
    }

    def find(codat: PayablesWriter, since: datetime) -> Attachment | None:
        landed = (request.file_name, len(request.content))
        attached = codat.list_bill_attachments(*_ids(connection), bill_id)
        return next((a for a in attached if (a.name, a.file_size) == landed), None)

    def send(codat: PayablesWriter, key: str) -> Attachment:
        # Codat takes no Idempotency-Key for an upload: `find` is the only guard.
        return codat.upload_bill_attachment(
            *_ids(connection), bill_id, request.file_name, request.content_type, request.content
        )

    write = _Write(f"uploadAttachment:{bill_id}", content, send, find, HTTPStatus.CREATED)
    return _once(deps, connection, request, write)


def create_bank_account(
    company_id: str, request: CreateBankAccount, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    draft = request.account
    wanted = (draft.name, draft.account_number, draft.currency)

    def find(codat: PayablesWriter, since: datetime) -> PaymentAccount | None:
        listed = _all(codat.list_payment_accounts, connection)
        return next((a for a in listed if (a.name, a.account_number, a.currency) == wanted), None)

    def send(codat: PayablesWriter, key: str) -> PaymentAccount:
        return codat.create_bank_account(*_ids(connection), draft, key)

    write = _Write("createBankAccount", draft, send, find, HTTPStatus.CREATED)
    return _once(deps, connection, request, write)


def writable_company(deps: WriteDependencies, company_id: str) -> Connection:
    company = deps.companies.get(company_id)
    if company is None:
        raise NotFoundError(f"company {company_id!r} is not known")
    return Connection.of(company, WRITABLE_STATUSES)


def write_key(company_id: str, operation: str, request_id: str, attempt: int = 0) -> str:
    """What the Idempotency-Key is derived from: one per attempt of one request (a new attempt
    only once the earlier one is known not to have landed)."""
    base = f"{company_id}/{operation}/{request_id}"
    return base if attempt == 0 else f"{base}/{attempt}"


# -- applying a write once ---------------------------------------------------------------------------

# An attempt that has not reported back may still be running for this long (the API function's
# timeout is shorter); a retry meanwhile is told to come back.
ATTEMPT_LEASE = timedelta(seconds=60)
# Codat's sourceModifiedDate comes from the platform's clock: look this much earlier.
CLOCK_SKEW = timedelta(minutes=5)

Written = SyncedRecord | Attachment


@dataclass(frozen=True)
class _Write:
    operation: str
    # What was asked, for the request's fingerprint.
    content: BaseModel | dict[str, Any]
    # Send it to Codat under this Idempotency-Key.
    send: Callable[[PayablesWriter, str], Written]
    # The record an attempt started at `since` made, if it landed.
    find: Callable[[PayablesWriter, datetime], Written | None]
    success: HTTPStatus


def _once(
    deps: WriteDependencies,
    connection: Connection,
    request: _Request,
    write: _Write,
    precheck: Callable[[], None] | None = None,
) -> WriteOutcome:
    company_id, request_id = connection.company_id, request.request_id
    now = deps.now()
    entry = WriteRequest(
        request_id=request_id,
        operation=write.operation,
        fingerprint=_fingerprint(write.operation, write.content),
        created_at=now,
        attempt_at=now,
    )
    answered = _answer_of(deps.payables.request(company_id, request_id), entry)
    if answered is not None:
        return answered
    if precheck is not None:
        precheck()
    earlier = deps.payables.begin_request(company_id, entry)
    answered = _answer_of(earlier, entry)  # another attempt answered in between
    if answered is not None:
        return answered
    codat = deps.codat()
    attempt = 0
    if earlier is not None:  # PENDING: an earlier attempt may have reached Codat
        if not earlier.attempt_ended and now - earlier.attempt_at < ATTEMPT_LEASE:
            raise RequestInProgressError(
                f"request {request_id!r} is being applied; ask again in a minute"
            )
        found = write.find(codat, earlier.created_at - CLOCK_SKEW)
        if found is not None:
            return _done(deps, company_id, write, request_id, found)
        attempt = earlier.attempt + 1
        if not deps.payables.next_attempt(company_id, request_id, earlier.attempt, now):
            raise RequestInProgressError(f"request {request_id!r} is being retried right now")
    key = idempotency_key(write_key(company_id, write.operation, request_id, attempt))
    try:
        written = write.send(codat, key)
    except CodatRetryableError:
        # Over, without an answer: the next retry need not wait for the lease.
        deps.payables.end_attempt(company_id, request_id, attempt)
        raise
    except CodatNotFoundError as error:
        raise NotFoundError(f"Codat does not know the record: {error.message}") from error
    except CodatRejectedError as error:
        message = f"{error.message} (correlationId {error.correlation_id})"
        deps.payables.settle_request(
            company_id, request_id, RequestState.FAILED, {"message": message}
        )
        raise CodatRefusedError(message) from error
    return _done(deps, company_id, write, request_id, written)


def _done(
    deps: WriteDependencies, company_id: str, write: _Write, request_id: str, written: Written
) -> WriteOutcome:
    """Store what Codat answered (so reads see it at once) and record the answer."""
    if isinstance(written, PaymentAccount):
        deps.payables.add_payment_account(company_id, written, deps.now())
    elif isinstance(written, SyncedRecord):
        deps.payables.save_newer(company_id, [written])
    body = written.model_dump(mode="json", by_alias=True)
    outcome = {"status": int(write.success), "body": body}
    deps.payables.settle_request(company_id, request_id, RequestState.DONE, outcome)
    return WriteOutcome(write.success, body)


def _answer_of(earlier: WriteRequest | None, entry: WriteRequest) -> WriteOutcome | None:
    """The stored answer to an earlier attempt of this request; None if there is none yet."""
    if earlier is None:
        return None
    if (earlier.operation, earlier.fingerprint) != (entry.operation, entry.fingerprint):
        raise ConflictError(
            f"requestId {entry.request_id!r} was already used for another request; "
            "use a new one for a different write"
        )
    if earlier.state is RequestState.DONE:
        return WriteOutcome(HTTPStatus(earlier.outcome["status"]), earlier.outcome["body"], True)
    if earlier.state is RequestState.FAILED:
        raise CodatRefusedError(earlier.outcome["message"])
    return None


def _nothing_to_find(codat: PayablesWriter, since: datetime) -> None:
    return None


def _all(listing: Callable[..., Page[Any]], connection: Connection, *query: Any) -> Iterator[Any]:
    """Every record of one of Codat's listings, page by page."""
    token: str | None = None
    while True:
        page = listing(*_ids(connection), *query, token)
        yield from page.records
        if page.next_token is None:
            return
        token = page.next_token


def _same_supplier(supplier: SupplierRecord, draft: SupplierDraft) -> bool:
    mine = (supplier.name, supplier.email_address, supplier.phone, supplier.default_currency)
    return mine == (draft.name, draft.email_address, draft.phone, draft.default_currency)


def _is(bill: BillRecord, draft: BillDraft) -> bool:
    """Whether Codat's `bill` is what `draft` asked for (Codat works out the total)."""
    lines = (line.unit_amount * line.quantity + line.tax_amount for line in draft.line_items)
    total = to_money(sum(lines, Decimal(0)), draft.currency)
    ours = (draft.supplier_id, draft.reference, draft.issue_date, draft.due_date, draft.currency)
    theirs = (bill.supplier_id, bill.reference, bill.issue_date, bill.due_date, bill.currency)
    return theirs == ours and bill.total_amount == total


def _known_supplier(deps: WriteDependencies, company_id: str, supplier_id: str) -> SupplierRecord:
    found = deps.payables.supplier(company_id, supplier_id)
    if found is None:
        raise NotFoundError(f"supplier {supplier_id!r} is not known for company {company_id!r}")
    return found


def _ids(connection: Connection) -> tuple[str, str]:
    return connection.codat_company_id, connection.connection_id


def _fingerprint(operation: str, content: BaseModel | dict[str, Any]) -> str:
    data = (
        content.model_dump(mode="json", by_alias=True)
        if isinstance(content, BaseModel)
        else content
    )
    canonical = json.dumps([operation, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- a write Codat reports refused after answering ------------------------------------------------

# The product's operation a late write outcome is about, by Codat's data type and write type. A
# refused create names no record: the product cannot tell which of its pending creates it was, and
# leaves them to a retry (which looks in Codat before sending again).
_OPERATION_OF = {
    ("bills", "Update"): "updateBill:{}",
    ("bills", "UploadAttachment"): "uploadAttachment:{}",
    ("suppliers", "Update"): "updateSupplier:{}",
}
# Codat's status for a write the platform refused. TimedOut is not a refusal: the write may have
# landed, so the request stays PENDING and a retry looks for the record first.
REFUSED = "Failed"


@dataclass(frozen=True)
class LateWriteOutcome:
    """What a `{dataType}.write.unsuccessful` webhook said (billpay.events.models.WriteOutcome)."""

    data_type: str
    write_type: str | None
    record_id: str | None
    status: str
    push_id: str
    reported_at: datetime


def apply_refused_write(
    ledger: PayablesLedger, company_id: str, outcome: LateWriteOutcome
) -> list[str]:
    """Codat reported a write refused by the accounting platform after the product's call went
    unanswered (a timeout, a 5xx): the product's PENDING requests for that write become FAILED
    with Codat's reason, so a retry answers that reason instead of writing again. Only attempts
    started before Codat's report are failed. Returns the request ids failed."""
    template = _OPERATION_OF.get((outcome.data_type, outcome.write_type or ""))
    if outcome.status != REFUSED or template is None or outcome.record_id is None:
        return []
    operation = template.format(outcome.record_id)
    reason = {
        "message": (
            f"the accounting platform refused the write: Codat reported it {outcome.status} "
            f"(write request {outcome.push_id}); change the request and send it with a new "
            "requestId"
        )
    }
    failed = []
    for request in ledger.pending_requests(company_id, [operation]):
        if request.attempt_at > outcome.reported_at:
            continue  # a later attempt: not the write Codat reported
        if ledger.fail_pending_request(company_id, request.request_id, request.attempt, reason):
            failed.append(request.request_id)
    return failed
