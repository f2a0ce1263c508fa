"""The payables routes through the API handler: the payables table on moto, Codat scripted.

What each bad input answers, and that nothing reached Codat for it; each write applied once under
a retried request.
"""

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billpay.api.handler import ApiDependencies, handler
from billpay.api.payables import PayablesApi
from billpay.bills.models import (
    Attachment,
    BillStatus,
    PaymentAccount,
    SupplierStatus,
    WriteRequest,
)
from billpay.bills.page_token import PageTokens
from billpay.bills.ports import Page
from billpay.bills.repository import DynamoPayablesRepository
from billpay.bills.writes import CreateBill, WriteDependencies, _fingerprint
from billpay.codat.errors import CodatRejectedError, CodatUnavailableError
from billpay.companies.models import CompanyStatus

from .fakes import InMemoryCompanies, InMemoryWorkflow, LambdaContext
from .payables_fakes import T0, bill, ready_company, supplier


@dataclass
class ScriptedCodat:
    """Codat's writes: each call recorded; results numbered; errors queued per operation.
    `landed` faults apply the write, then fail (an answer lost on the way back)."""

    calls: list[tuple[str, tuple]] = field(default_factory=list)
    faults: dict[str, list[Exception]] = field(default_factory=dict)
    landed: dict[str, list[Exception]] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    bills: list = field(default_factory=list)
    suppliers: list = field(default_factory=list)

    def _call(self, name, *args):
        self.calls.append((name, args))
        queued = self.faults.get(name)
        if queued:
            raise queued.pop(0)

    def _answer(self, name, record, kept):
        kept.append(record)
        queued = self.landed.get(name)
        if queued:
            raise queued.pop(0)
        return record

    def list_bills(self, company_id, connection_id, query, continuation):
        self._call("list_bills")
        return Page(tuple(self.bills), None)

    def list_suppliers(self, company_id, connection_id, query, continuation):
        self._call("list_suppliers")
        return Page(tuple(self.suppliers), None)

    def list_payment_accounts(self, company_id, connection_id, continuation):
        self._call("list_payment_accounts")
        return Page((), None)

    def create_supplier(self, company_id, connection_id, draft, key):
        self._call("create_supplier", draft, key)
        created = supplier(100 + len(self.calls), T0 + timedelta(days=1), name=draft.name)
        return self._answer("create_supplier", created, self.suppliers)

    def replace_supplier(self, company_id, connection_id, supplier_id, draft):
        self._call("replace_supplier", supplier_id, draft)
        return supplier(int(supplier_id.split("-")[1]), T0 + timedelta(days=1), name=draft.name)

    def create_bill(self, company_id, connection_id, draft, key):
        self._call("create_bill", draft, key)
        created = bill(500 + len(self.calls), T0 + timedelta(days=1)).model_copy(
            update={
                "supplier_id": draft.supplier_id,
                "reference": draft.reference,
                "issue_date": draft.issue_date,
                "due_date": draft.due_date,
                "total_amount": sum(
                    line.unit_amount * line.quantity + line.tax_amount for line in draft.line_items
                ),
            }
        )
        return self._answer("create_bill", created, self.bills)

    def update_bill(self, company_id, connection_id, bill_id, draft, key):
        self._call("update_bill", bill_id, draft, key)
        return bill(int(bill_id.split("-")[1]), T0 + timedelta(days=1), reference=draft.reference)

    def upload_bill_attachment(
        self, company_id, connection_id, bill_id, name, content_type, content
    ):
        self._call("upload_bill_attachment", bill_id, name)
        attachment = Attachment(
            attachment_id=f"att-{len(self.attachments)}", name=name, file_size=len(content)
        )
        return self._answer("upload_bill_attachment", attachment, self.attachments)

    def list_bill_attachments(self, company_id, connection_id, bill_id):
        self._call("list_bill_attachments", bill_id)
        return list(self.attachments)

    def create_bank_account(self, company_id, connection_id, draft, key):
        self._call("create_bank_account", draft, key)
        return PaymentAccount(account_id="acc-new", name=draft.name, currency=draft.currency)

    def writes(self):
        return [name for name, _ in self.calls if not name.startswith("list")]


@pytest.fixture
def codat():
    return ScriptedCodat()


@pytest.fixture
def table(aws, payables_table):
    repository = DynamoPayablesRepository(aws("dynamodb"), payables_table)
    statuses = [BillStatus.OPEN, BillStatus.PAID, BillStatus.VOID]
    repository.save_newer("smb-1", [bill(n, status=statuses[n % 3]) for n in range(30)])
    for company in ("smb-1", "smb-qbo", "smb-fa"):
        repository.save_newer(company, [supplier(n) for n in range(3)] + [bill(0)])
    repository.save_newer("smb-1", [supplier(9, status=SupplierStatus.ARCHIVED)])
    repository.replace_payment_accounts(
        "smb-1", [PaymentAccount(account_id="acc-1", currency="GBP")], T0
    )
    return repository


@pytest.fixture
def companies():
    companies = InMemoryCompanies()
    companies.create(ready_company("smb-1"))
    companies.create(ready_company("smb-qbo", platform_key="qhyg"))
    companies.create(ready_company("smb-fa", platform_key="fbrh"))
    companies.create(ready_company("smb-new", status=CompanyStatus.LINKED))
    return companies


@pytest.fixture
def tokens():
    return PageTokens(secrets.token_bytes(32))


@pytest.fixture
def deps(companies, table, tokens, codat):
    payables = PayablesApi(
        companies=companies,
        reader=table,
        tokens=lambda: tokens,
        writes=WriteDependencies(companies=companies, payables=table, codat=lambda: codat),
    )
    return ApiDependencies(
        companies=companies, onboarding=InMemoryWorkflow(), codat=lambda: None, payables=payables
    )


def call(deps, method, path, body=None, query=None, raw_body=None):
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "pathParameters": None,
        "requestContext": {"requestId": "r1", "stage": "dev", "httpMethod": method},
        "body": raw_body if raw_body is not None else (json.dumps(body) if body else None),
        "isBase64Encoded": False,
    }
    answer = handler(event, LambdaContext("api"), deps=deps)
    headers = {k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    headers.update(answer.get("headers") or {})
    return answer["statusCode"], json.loads(answer["body"]), headers


def _bill_body(request_id="req-1", **changes):
    return {
        "requestId": request_id,
        "bill": {
            "supplierId": "sup-1",
            "reference": "INV-9",
            "issueDate": "2026-11-01",
            "dueDate": "2026-11-30",
            "currency": "GBP",
            "lineItems": [{"unitAmount": 100.10, "quantity": 1, "accountId": "acc-9"}],
            **changes,
        },
    }


# -- reads ---------------------------------------------------------------------------------------------


def test_bills_are_listed_by_status_in_due_date_order_page_by_page(deps):
    seen, token = [], None
    while True:
        query = {"status": "Open", "limit": "4", **({"pageToken": token} if token else {})}
        status, body, _ = call(deps, "GET", "/companies/smb-1/bills", query=query)
        assert status == 200
        seen += body["items"]
        token = body.get("nextPageToken")
        if token is None:
            break
    assert len(seen) == 10
    assert {b["status"] for b in seen} == {"Open"}
    assert [b["dueDate"] for b in seen] == sorted(b["dueDate"] for b in seen)
    assert seen[0]["totalAmount"] == "120.00"  # money as a string, the currency's places


def test_bills_are_filtered_by_due_date(deps):
    query = {"dueAfter": "2026-11-05", "dueBefore": "2026-11-10"}
    status, body, _ = call(deps, "GET", "/companies/smb-1/bills", query=query)
    assert status == 200
    assert body["items"]
    assert all("2026-11-05" < b["dueDate"] < "2026-11-10" for b in body["items"])


def test_one_bill_one_supplier_and_the_payment_accounts(deps):
    status, body, _ = call(deps, "GET", "/companies/smb-1/bills/bill-3")
    assert (status, body["id"], body["status"]) == (200, "bill-3", "Open")
    status, body, _ = call(deps, "GET", "/companies/smb-1/suppliers/sup-1")
    assert (status, body["supplierName"]) == (200, "Supplier 1")
    status, body, _ = call(deps, "GET", "/companies/smb-1/suppliers", query={"limit": "2"})
    assert status == 200
    assert len(body["items"]) == 2
    assert body["nextPageToken"]
    status, body, _ = call(deps, "GET", "/companies/smb-1/payment-accounts")
    assert [a["id"] for a in body["items"]] == ["acc-1"]


def test_an_offboarded_companys_copy_stays_readable_but_takes_no_writes(deps, companies, codat):
    companies.items["smb-1"] = ready_company("smb-1", status=CompanyStatus.OFFBOARDED)
    status, body, _ = call(deps, "GET", "/companies/smb-1/bills", query={"status": "Open"})
    assert (status, len(body["items"])) == (200, 10)
    assert call(deps, "GET", "/companies/smb-1/suppliers/sup-1")[0] == 200
    assert call(deps, "GET", "/companies/smb-1/payment-accounts")[0] == 200
    status, body, _ = call(deps, "POST", "/companies/smb-1/bills", body=_bill_body())
    assert (status, body["error"]["code"]) == (409, "CompanyNotReady")
    assert codat.calls == []


@pytest.mark.parametrize(
    ("path", "query", "status", "code"),
    [
        ("/companies/nobody/bills", None, 404, "NotFound"),
        ("/companies/smb-new/bills", None, 409, "CompanyNotReady"),
        ("/companies/bad%20id/bills", None, 400, "MalformedRequest"),
        ("/companies/smb-1/bills/bill-404", None, 404, "NotFound"),
        ("/companies/smb-1/bills/bad%2Fid", None, 400, "MalformedRequest"),
        ("/companies/smb-1/suppliers/sup-404", None, 404, "NotFound"),
        ("/companies/smb-1/bills", {"status": "Settled"}, 400, "ValidationError"),
        ("/companies/smb-1/bills", {"dueBefore": "31/12/2026"}, 400, "ValidationError"),
        (
            "/companies/smb-1/bills",
            {"dueAfter": "2026-12-01", "dueBefore": "2026-11-01"},
            400,
            "ValidationError",
        ),
        ("/companies/smb-1/bills", {"stauts": "Open"}, 400, "ValidationError"),
        ("/companies/smb-1/bills", {"limit": "1000"}, 400, "ValidationError"),
        ("/companies/smb-1/bills", {"pageToken": "not-ours"}, 400, "InvalidPageToken"),
    ],
)
def test_bad_reads_are_refused_with_a_clear_answer(deps, path, query, status, code):
    answered, body, _ = call(deps, "GET", path, query=query)
    assert (answered, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]


def test_a_page_token_is_taken_only_for_the_listing_and_company_it_came_from(
    deps, companies, table
):
    _, first, _ = call(
        deps, "GET", "/companies/smb-1/bills", query={"status": "Open", "limit": "2"}
    )
    token = first["nextPageToken"]
    # another filter
    status, body, _ = call(
        deps, "GET", "/companies/smb-1/bills", query={"status": "Paid", "pageToken": token}
    )
    assert (status, body["error"]["code"]) == (400, "InvalidPageToken")
    # another company
    table.save_newer("smb-qbo", [bill(1)])
    status, body, _ = call(
        deps, "GET", "/companies/smb-qbo/bills", query={"status": "Open", "pageToken": token}
    )
    assert status == 400
    # edited
    payload, mac = token.split(".")
    forged = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "==").replace(b"smb-1", b"smb-2")
        )
        .decode()
        .rstrip("=")
    )
    status, _, _ = call(
        deps,
        "GET",
        "/companies/smb-1/bills",
        query={"status": "Open", "pageToken": f"{forged}.{mac}"},
    )
    assert status == 400
    # and the real one still works
    status, _, _ = call(
        deps, "GET", "/companies/smb-1/bills", query={"status": "Open", "pageToken": token}
    )
    assert status == 200


# -- writes --------------------------------------------------------------------------------------------


def test_a_bill_is_created_once_under_a_retried_request(deps, codat, table):
    status, created, headers = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert status == 201
    assert headers["Idempotent-Replayed"] == "false"
    assert table.bill("smb-1", created["id"]) is not None  # readable at once
    status, again, headers = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert (status, again) == (201, created)
    assert headers["Idempotent-Replayed"] == "true"
    assert codat.writes() == ["create_bill"]
    # the amount reached Codat as a Decimal, never a float
    draft = codat.calls[0][1][0]
    assert draft.line_items[0].unit_amount == Decimal("100.10")


def test_a_retry_after_a_lost_answer_finds_the_bill_instead_of_creating_another(deps, codat):
    # Codat created the bill, but its answer was lost (a 500 Codat would replay under the key)
    codat.landed["create_bill"] = [CodatUnavailableError("500 after applying")]
    status, body, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert (status, body["error"]["code"]) == (503, "CodatUnavailable")
    status, created, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert status == 201
    assert created["id"] == codat.bills[0].bill_id
    assert codat.writes() == ["create_bill"]  # found by reading, not sent again


def test_a_retry_after_an_attempt_that_did_not_land_sends_it_again_with_a_new_key(deps, codat):
    codat.faults["create_bill"] = [CodatUnavailableError("timeout")]
    status, _, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert status == 503
    status, _, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert status == 201
    keys = [args[1] for name, args in codat.calls if name == "create_bill"]
    assert len(keys) == 2
    # the first key's answer (the 500) is what Codat would replay: the new attempt has its own
    assert keys[0] != keys[1]
    assert len(codat.bills) == 1


def test_a_retry_while_the_first_attempt_may_still_run_is_told_to_wait(deps, codat, table):
    # An attempt that never reported back (its Lambda died) started a moment ago
    table.begin_request(
        "smb-1",
        WriteRequest(
            request_id="req-1",
            operation="createBill",
            fingerprint=_fingerprint("createBill", CreateBill.model_validate(_bill_body()).bill),
            created_at=T0,
            attempt_at=datetime.now(UTC),
        ),
    )
    status, body, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert (status, body["error"]["code"]) == (409, "RequestInProgress")
    assert codat.calls == []
    # Once the attempt is over (its lease ran out), the retry looks in Codat, then sends it
    later = WriteDependencies(
        companies=deps.payables.companies,
        payables=table,
        codat=lambda: codat,
        now=lambda: datetime.now(UTC) + timedelta(minutes=2),
    )
    deps = ApiDependencies(
        companies=deps.companies,
        onboarding=deps.onboarding,
        codat=deps.codat,
        payables=PayablesApi(deps.payables.companies, table, deps.payables.tokens, later),
    )
    status, _, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert status == 201
    assert [name for name, _ in codat.calls] == ["list_bills", "create_bill"]


def test_a_request_id_reused_for_another_bill_is_refused(deps, codat):
    call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    status, body, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body(reference="OTHER"))
    assert (status, body["error"]["code"]) == (409, "Conflict")
    assert codat.writes() == ["create_bill"]


def test_codats_refusal_is_answered_and_replayed_without_calling_again(deps, codat):
    codat.faults["create_bill"] = [
        CodatRejectedError("Account 'acc-9' does not exist.", status=400, correlation_id="c-1")
    ]
    status, body, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert (status, body["error"]["code"]) == (422, "CodatRefused")
    assert "acc-9" in body["error"]["message"]
    status, _, _ = call(deps, "POST", "/companies/smb-1/bills", _bill_body())
    assert status == 422
    assert codat.writes() == ["create_bill"]


@pytest.mark.parametrize(
    ("company", "body", "status", "says"),
    [
        (
            "smb-qbo",
            _bill_body(reference="R" * 22),
            422,
            "QuickBooks Online takes bill references of at most 21",
        ),
        (
            "smb-fa",
            _bill_body(lineItems=[{"unitAmount": 1, "accountId": "a"}] * 41),
            422,
            "FreeAgent takes at most 40 lines",
        ),
        ("smb-1", _bill_body(supplierId="sup-404"), 422, "not known"),
        ("smb-1", _bill_body(supplierId="sup-9"), 422, "archived"),
        ("smb-1", _bill_body(dueDate="2026-10-01"), 400, "dueDate is before issueDate"),
        ("smb-1", _bill_body(currency="pounds"), 400, "currency"),
        ("smb-1", _bill_body(lineItems=[]), 400, "lineItems"),
        ("smb-1", _bill_body(status="Paid"), 400, "status"),
        ("smb-1", _bill_body(colour="red"), 400, "colour"),
        ("smb-1", {"bill": _bill_body()["bill"]}, 400, "requestId"),
        ("smb-1", _bill_body(request_id="has spaces"), 400, "requestId"),
        ("smb-new", _bill_body(), 409, "not READY"),
        ("nobody", _bill_body(), 404, "not known"),
    ],
)
def test_bad_writes_are_refused_before_codat_sees_them(deps, codat, company, body, status, says):
    answered, answer, _ = call(deps, "POST", f"/companies/{company}/bills", body)
    assert answered == status
    assert says in json.dumps(answer["error"])
    assert codat.calls == []


def test_only_open_bills_are_updated(deps, codat):
    status, body, _ = call(deps, "PUT", "/companies/smb-1/bills/bill-1", _bill_body())  # Paid
    assert (status, body["error"]["code"]) == (409, "Conflict")
    assert "only Open bills" in body["error"]["message"]
    status, body, _ = call(deps, "PUT", "/companies/smb-1/bills/bill-404", _bill_body())
    assert status == 404
    assert codat.calls == []
    status, body, _ = call(deps, "PUT", "/companies/smb-1/bills/bill-0", _bill_body("req-u"))
    assert (status, body["id"]) == (200, "bill-0")
    status, _, headers = call(deps, "PUT", "/companies/smb-1/bills/bill-0", _bill_body("req-u"))
    assert (status, headers["Idempotent-Replayed"]) == (200, "true")
    assert codat.writes() == ["update_bill"]


def test_a_supplier_update_must_carry_the_whole_record(deps, codat):
    partial = {"requestId": "r-s", "supplier": {"supplierName": "Acme"}}
    status, body, _ = call(deps, "PUT", "/companies/smb-1/suppliers/sup-1", partial)
    assert (status, body["error"]["code"]) == (422, "PlatformRule")
    assert "replaces the whole record" in body["error"]["message"]
    assert codat.calls == []
    whole = {
        "requestId": "r-s",
        "supplier": {
            "supplierName": "Acme",
            "contactName": None,
            "emailAddress": "ap@acme.test",
            "phone": None,
            "addresses": [],
            "status": "Active",
            "defaultCurrency": "GBP",
        },
    }
    status, body, _ = call(deps, "PUT", "/companies/smb-1/suppliers/sup-1", whole)
    assert (status, body["supplierName"]) == (200, "Acme")
    status, _, _ = call(
        deps, "PUT", "/companies/smb-1/suppliers/sup-404", {**whole, "requestId": "r-t"}
    )
    assert status == 404


def test_a_supplier_is_created_once(deps, codat, table):
    body = {"requestId": "r-new", "supplier": {"supplierName": "New Co"}}
    status, created, _ = call(deps, "POST", "/companies/smb-1/suppliers", body)
    assert status == 201
    assert call(deps, "POST", "/companies/smb-1/suppliers", body)[1] == created
    assert codat.writes() == ["create_supplier"]
    assert table.supplier("smb-1", created["id"]).name == "New Co"


def _attachment(name="scan.pdf", content=b"%PDF-1.7 ...", request_id="r-a"):
    return {
        "requestId": request_id,
        "fileName": name,
        "contentType": "application/pdf",
        "content": base64.b64encode(content).decode(),
    }


def test_an_attachment_is_uploaded_once_even_when_the_answer_was_lost(deps, codat):
    codat.landed["upload_bill_attachment"] = [CodatUnavailableError("timeout")]
    status, _, _ = call(deps, "POST", "/companies/smb-1/bills/bill-0/attachments", _attachment())
    assert status == 503
    status, body, _ = call(deps, "POST", "/companies/smb-1/bills/bill-0/attachments", _attachment())
    assert (status, body["id"]) == (201, "att-0")  # found on the bill, not sent again
    assert len(codat.attachments) == 1


@pytest.mark.parametrize(
    ("company", "body", "status", "code"),
    [
        ("smb-1", _attachment(content=b"x" * (10_000_001)), 413, "AttachmentTooLarge"),
        ("smb-1", _attachment(name="virus.exe"), 415, "AttachmentTypeRefused"),
        ("smb-fa", _attachment(name="sheet.xlsx"), 415, "AttachmentTypeRefused"),
        ("smb-1", _attachment(content=b""), 422, "PlatformRule"),
        ("smb-1", {**_attachment(), "content": "not base64!"}, 400, "ValidationError"),
        ("smb-1", _attachment(name="../etc/passwd"), 400, "ValidationError"),
    ],
)
def test_bad_attachments_are_refused_before_codat(deps, codat, company, body, status, code):
    answered, answer, _ = call(deps, "POST", f"/companies/{company}/bills/bill-0/attachments", body)
    assert (answered, answer["error"]["code"]) == (status, code)
    assert codat.calls == []


def test_a_bank_account_is_created_once_and_listed_at_once(deps, codat):
    body = {
        "requestId": "r-b",
        "bankAccount": {"name": "Payables", "accountNumber": "12345678", "currency": "GBP"},
    }
    status, created, _ = call(deps, "POST", "/companies/smb-1/payment-accounts", body)
    assert (status, created["id"]) == (201, "acc-new")
    call(deps, "POST", "/companies/smb-1/payment-accounts", body)
    assert codat.writes() == ["create_bank_account"]
    _, listed, _ = call(deps, "GET", "/companies/smb-1/payment-accounts")
    assert [a["id"] for a in listed["items"]] == ["acc-1", "acc-new"]
