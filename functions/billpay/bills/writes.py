"""The product's writes through Codat: suppliers, bills, attachments, bank accounts.

Each write carries a request id the product chose. It is applied at most once:
1. the company must be READY, and the platform's rules hold (`rules`) - else nothing is sent;
2. the request is recorded in the ledger (`PayablesLedger.begin_request`); a request id seen
   before gets the stored answer back (DONE or FAILED), or is a 409 if its content differs;
3. Codat is called with an Idempotency-Key derived from the company, the operation and the
   request id, so a retry after a lost answer sends the same key and Codat replays instead of
   creating twice. An upload has no key at Codat: a retry first looks for the file on the bill;
4. the record Codat answers is stored (the next sync would bring it anyway) and the answer
   recorded, so a retry days later, after Codat forgot the key, still creates nothing.

A retryable Codat failure leaves the request PENDING: the product retries with the same request
id, which is safe. Codat refusing the write records it FAILED, with Codat's reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
from billpay.bills.ports import PayablesReader, PayablesStore
from billpay.codat.errors import CodatNotFoundError, CodatRejectedError
from billpay.codat.keys import idempotency_key
from billpay.companies.ports import CompanyRepository
from billpay.core.errors import BillPayError, ConflictError, NotFoundError

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
    content: bytes

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


class PayablesWriter(Protocol):
    """Codat's writes (`billpay.codat.client.CodatClient` implements it)."""

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

    def add_payment_account(
        self, company_id: str, account: PaymentAccount, at: datetime
    ) -> None: ...


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

    def write(key: str, retry: bool) -> dict[str, Any]:
        created = deps.codat().create_supplier(*_ids(connection), request.supplier, key)
        return _stored(deps, company_id, created)

    return _once(
        deps, connection, request, "createSupplier", request.supplier, write, HTTPStatus.CREATED
    )


def replace_supplier(
    company_id: str, supplier_id: str, request: ReplaceSupplier, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    _known_supplier(deps, company_id, supplier_id)
    rules.check_supplier_update(request.supplier)

    def write(key: str, retry: bool) -> dict[str, Any]:
        # A PUT of the whole record: sending it again gives the same record (Codat takes no key).
        updated = deps.codat().replace_supplier(*_ids(connection), supplier_id, request.supplier)
        return _stored(deps, company_id, updated)

    operation = f"updateSupplier:{supplier_id}"
    return _once(deps, connection, request, operation, request.supplier, write, HTTPStatus.OK)


def create_bill(company_id: str, request: CreateBill, deps: WriteDependencies) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    supplier = deps.payables.supplier(company_id, request.bill.supplier_id)
    rules.check_bill(connection.platform_key, request.bill, supplier)

    def write(key: str, retry: bool) -> dict[str, Any]:
        created = deps.codat().create_bill(*_ids(connection), request.bill, key)
        return _stored(deps, company_id, created)

    return _once(deps, connection, request, "createBill", request.bill, write, HTTPStatus.CREATED)


def update_bill(
    company_id: str, bill_id: str, request: UpdateBill, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    stored = deps.payables.bill(company_id, bill_id)
    if stored is None:
        raise NotFoundError(f"bill {bill_id!r} is not known for company {company_id!r}")
    supplier = deps.payables.supplier(company_id, request.bill.supplier_id)
    rules.check_bill(connection.platform_key, request.bill, supplier)

    def write(key: str, retry: bool) -> dict[str, Any]:
        updated = deps.codat().update_bill(*_ids(connection), bill_id, request.bill, key)
        return _stored(deps, company_id, updated)

    operation = f"updateBill:{bill_id}"
    return _once(
        deps,
        connection,
        request,
        operation,
        request.bill,
        write,
        HTTPStatus.OK,
        # Not on a retry of a request already answered: the bill may be Paid by now.
        precheck=lambda: rules.check_bill_update(stored),
    )


def upload_attachment(
    company_id: str, bill_id: str, request: UploadAttachment, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)
    if deps.payables.bill(company_id, bill_id) is None:
        raise NotFoundError(f"bill {bill_id!r} is not known for company {company_id!r}")
    rules.check_attachment(connection.platform_key, request.file_name, len(request.content))
    fingerprint_of = {
        "fileName": request.file_name,
        "contentType": request.content_type,
        "sha256": hashlib.sha256(request.content).hexdigest(),
    }

    def write(key: str, retry: bool) -> dict[str, Any]:
        codat = deps.codat()
        if retry:
            # An earlier attempt's answer was lost: did its file land on the bill?
            landed = (request.file_name, len(request.content))
            for attachment in codat.list_bill_attachments(*_ids(connection), bill_id):
                if (attachment.name, attachment.file_size) == landed:
                    return attachment.model_dump(mode="json", by_alias=True)
        uploaded = codat.upload_bill_attachment(
            *_ids(connection), bill_id, request.file_name, request.content_type, request.content
        )
        return uploaded.model_dump(mode="json", by_alias=True)

    operation = f"uploadAttachment:{bill_id}"
    return _once(deps, connection, request, operation, fingerprint_of, write, HTTPStatus.CREATED)


def create_bank_account(
    company_id: str, request: CreateBankAccount, deps: WriteDependencies
) -> WriteOutcome:
    connection = writable_company(deps, company_id)

    def write(key: str, retry: bool) -> dict[str, Any]:
        created = deps.codat().create_bank_account(*_ids(connection), request.account, key)
        deps.payables.add_payment_account(company_id, created, deps.now())
        return created.model_dump(mode="json", by_alias=True)

    return _once(
        deps, connection, request, "createBankAccount", request.account, write, HTTPStatus.CREATED
    )


def writable_company(deps: WriteDependencies, company_id: str) -> Connection:
    company = deps.companies.get(company_id)
    if company is None:
        raise NotFoundError(f"company {company_id!r} is not known")
    return Connection.of(company, WRITABLE_STATUSES)


def write_key(company_id: str, operation: str, request_id: str) -> str:
    """What the Idempotency-Key is derived from: the same for every retry of one request."""
    return f"{company_id}/{operation}/{request_id}"


# -- applying a write once ---------------------------------------------------------------------------


Write = Callable[[str, bool], dict[str, Any]]


def _once(
    deps: WriteDependencies,
    connection: Connection,
    request: _Request,
    operation: str,
    content: BaseModel | dict[str, Any],
    write: Write,
    success: HTTPStatus,
    precheck: Callable[[], None] | None = None,
) -> WriteOutcome:
    """Apply `write` once for this request id: `write(key, retry)` gets the Idempotency-Key and
    whether an earlier attempt may have reached Codat."""
    company_id = connection.company_id
    entry = WriteRequest(
        request_id=request.request_id,
        operation=operation,
        fingerprint=_fingerprint(operation, content),
        created_at=deps.now(),
    )
    answered = _answer_of(deps.payables.request(company_id, request.request_id), entry)
    if answered is not None:
        return answered
    if precheck is not None:
        precheck()
    earlier = deps.payables.begin_request(company_id, entry)
    answered = _answer_of(earlier, entry)  # another attempt got there in between
    if answered is not None:
        return answered
    key = idempotency_key(write_key(company_id, operation, request.request_id))
    try:
        body = write(key, earlier is not None)
    except CodatNotFoundError as error:
        raise NotFoundError(f"Codat does not know the record: {error.message}") from error
    except CodatRejectedError as error:
        message = f"{error.message} (correlationId {error.correlation_id})"
        deps.payables.settle_request(
            company_id, request.request_id, RequestState.FAILED, {"message": message}
        )
        raise CodatRefusedError(message) from error
    deps.payables.settle_request(
        company_id, request.request_id, RequestState.DONE, {"status": int(success), "body": body}
    )
    return WriteOutcome(success, body)


def _answer_of(earlier: WriteRequest | None, entry: WriteRequest) -> WriteOutcome | None:
    """The stored answer to an earlier attempt of this request; None if there is none yet.

    PENDING (an earlier attempt did not finish) has no answer: going again is safe, with the
    same Idempotency-Key.
    """
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


def _stored(deps: WriteDependencies, company_id: str, record: SyncedRecord) -> dict[str, Any]:
    deps.payables.save_newer(company_id, [record])
    return record.model_dump(mode="json", by_alias=True)


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
