"""The Codat adapter's payables operations through the real SDK over an in-memory httpx transport:
what they send, and Codat's records mapped to ours with money rounded at the boundary."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from billpay.bills.models import (
    BankAccountDraft,
    BillDraft,
    BillStatus,
    SupplierDraft,
    SupplierStatus,
)
from billpay.codat.client import CodatClient, idempotency_key, sdk_for
from billpay.codat.errors import CodatRejectedError, CodatStillSyncingError

from .fakes import InMemoryThrottle
from .test_codat_client import BASE, T0, Codat, _codat_error

PAYABLES = "/companies/co-1/connections/conn-1/payables"


@pytest.fixture
def codat():
    return Codat()


@pytest.fixture
def client(codat):
    sdk = sdk_for(BASE, "test-key", http=httpx.Client(transport=httpx.MockTransport(codat)))
    return CodatClient(sdk, InMemoryThrottle(), clock=lambda: T0)


def _bill(**changes):
    return {
        "id": "bill-1",
        "reference": "INV-1",
        "supplierRef": {"id": "sup-1", "supplierName": "Acme Supplies"},
        "issueDate": "2026-10-01T00:00:00Z",
        "dueDate": "2026-10-31T00:00:00Z",
        "currency": "GBP",
        "status": "PartiallyPaid",
        "totalAmount": 120.10000000000001,  # a float as Codat's JSON may carry it
        "amountDue": 60.005,
        "sourceModifiedDate": "2026-11-01T10:15:00Z",
        **changes,
    }


def test_a_bills_page_is_asked_with_the_query_and_token_and_mapped_with_money_rounded(
    client, codat
):
    codat.on(
        "GET",
        f"{PAYABLES}/bills",
        httpx.Response(
            200,
            json={
                "results": [
                    _bill(),
                    _bill(id="bill-2", currency="JPY", totalAmount=1200.4, amountDue=None),
                ],
                "pagination": {"continuationToken": "next-1"},
            },
        ),
    )
    page = client.list_bills("co-1", "conn-1", "status=Paid", "tok-0")
    sent = codat.requests[0].url.params
    assert sent["query"] == "status=Paid"
    assert sent["continuationToken"] == "tok-0"
    assert page.next_token == "next-1"
    first, second = page.records
    assert first.total_amount == Decimal("120.10")
    assert str(first.amount_due) == "60.01"  # half up, to the pound's two places
    assert first.status is BillStatus.PARTIALLY_PAID
    assert first.supplier_name == "Acme Supplies"
    assert first.issue_date == date(2026, 10, 1)
    assert first.due_date == date(2026, 10, 31)
    assert first.source_modified_date == datetime(2026, 11, 1, 10, 15, tzinfo=UTC)
    assert str(second.total_amount) == "1200"  # yen have no minor unit
    assert second.amount_due == second.total_amount  # none given: all of it is due


def test_the_last_page_has_no_token(client, codat):
    codat.on(
        "GET", f"{PAYABLES}/suppliers", httpx.Response(200, json={"results": [], "pagination": {}})
    )
    page = client.list_suppliers("co-1", "conn-1", None, None)
    assert page.records == ()
    assert page.next_token is None
    assert "query" not in codat.requests[0].url.params


def test_suppliers_and_payment_accounts_are_mapped(client, codat):
    codat.on(
        "GET",
        f"{PAYABLES}/suppliers",
        httpx.Response(
            200,
            json={
                "results": [
                    {
                        "id": "sup-1",
                        "supplierName": "Acme",
                        "status": "Archived",
                        "addresses": [{"type": "Billing", "city": "Leeds"}],
                        "sourceModifiedDate": "2026-11-01T10:15:00Z",
                    }
                ],
                "pagination": {},
            },
        ),
    )
    codat.on(
        "GET",
        f"{PAYABLES}/mappingOptions/payments",
        httpx.Response(
            200,
            json={
                "bankAccounts": [
                    {"id": "acc-1", "name": "Current", "currency": "GBP", "status": "Active"}
                ],
                "pagination": {},
            },
        ),
    )
    (supplier,) = client.list_suppliers("co-1", "conn-1", None, None).records
    assert supplier.status is SupplierStatus.ARCHIVED
    assert supplier.addresses[0].city == "Leeds"
    (account,) = client.list_payment_accounts("co-1", "conn-1", None).records
    assert (account.account_id, account.currency) == ("acc-1", "GBP")


def test_a_bill_is_created_with_its_idempotency_key_and_the_prototype(client, codat):
    codat.on("POST", f"{PAYABLES}/bills", httpx.Response(201, json=_bill(status="Open")))
    draft = BillDraft.model_validate(
        {
            "supplierId": "sup-1",
            "reference": "INV-1",
            "issueDate": "2026-10-01",
            "dueDate": "2026-10-31",
            "currency": "GBP",
            "lineItems": [{"unitAmount": "100.00", "taxAmount": "20.10", "accountId": "acc-9"}],
        }
    )
    key = idempotency_key("smb-1/createBill/req-1")
    created = client.create_bill("co-1", "conn-1", draft, key)
    request = codat.requests[0]
    assert request.headers["Idempotency-Key"] == key
    body = json.loads(request.content)
    assert body["supplierRef"] == {"id": "sup-1"}
    assert body["dueDate"] == "2026-10-31T00:00:00Z"
    assert body["lineItems"][0]["unitAmount"] == 100
    assert body["lineItems"][0]["accountRef"] == {"id": "acc-9"}
    assert created.bill_id == "bill-1"


def test_a_supplier_update_sends_every_field_so_nothing_is_dropped_by_accident(client, codat):
    codat.on(
        "PUT",
        f"{PAYABLES}/suppliers/sup-1",
        httpx.Response(200, json={"id": "sup-1", "supplierName": "Acme", "status": "Active"}),
    )
    draft = SupplierDraft.model_validate({"supplierName": "Acme", "phone": None})
    client.replace_supplier("co-1", "conn-1", "sup-1", draft)
    body = json.loads(codat.requests[0].content)
    assert body["supplierName"] == "Acme"
    assert "Idempotency-Key" not in codat.requests[0].headers  # Codat takes none for a PUT


def test_an_attachment_is_uploaded_as_multipart(client, codat):
    codat.on(
        "POST",
        f"{PAYABLES}/bills/bill-1/attachments",
        httpx.Response(201, json={"id": "att-1", "name": "scan.pdf", "fileSize": 4}),
    )
    uploaded = client.upload_bill_attachment(
        "co-1", "conn-1", "bill-1", "scan.pdf", "application/pdf", b"%PDF"
    )
    request = codat.requests[0]
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"' in request.content
    assert b"%PDF" in request.content
    assert uploaded.attachment_id == "att-1"


def test_a_bank_account_is_created_with_its_key(client, codat):
    codat.on(
        "POST",
        f"{PAYABLES}/bankAccounts",
        httpx.Response(
            201, json={"id": "acc-2", "name": "Savings", "currency": "GBP", "accountType": "Debit"}
        ),
    )
    draft = BankAccountDraft.model_validate(
        {"name": "Savings", "accountNumber": "12345678", "currency": "GBP"}
    )
    account = client.create_bank_account("co-1", "conn-1", draft, "key-1")
    assert codat.requests[0].headers["Idempotency-Key"] == "key-1"
    assert account.account_id == "acc-2"


def test_listing_before_the_first_read_is_still_syncing_and_a_refused_write_is_rejected(
    client, codat
):
    codat.on(
        "GET", f"{PAYABLES}/bills", httpx.Response(409, json=_codat_error(409, "still syncing"))
    )
    with pytest.raises(CodatStillSyncingError):
        client.list_bills("co-1", "conn-1", "status=Open", None)
    codat.on("POST", f"{PAYABLES}/suppliers", httpx.Response(400, json=_codat_error(400, "bad")))
    with pytest.raises(CodatRejectedError):
        client.create_supplier("co-1", "conn-1", SupplierDraft(name="Acme"), "key-2")
