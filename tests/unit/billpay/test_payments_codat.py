"""Paying through the Codat adapter, with the real SDK over an in-memory transport (no sockets):
what goes over the wire, how a bill is found without a get-bill endpoint, what comes back."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from billpay.bills.models import AccountStatus, BillStatus, Connection
from billpay.codat.client import CodatClient, sdk_for
from billpay.codat.errors import (
    CodatRateLimitedError,
    CodatRejectedError,
    CodatUnavailableError,
    CodatUnexpectedResponseError,
)
from billpay.payments.codat import CodatPayablesAdapter
from billpay.payments.ports import PaymentBody

from .fakes import InMemoryThrottle
from .test_codat_client import BASE, T0, Codat, _codat_error

CONNECTION = Connection(
    company_id="smb-1", codat_company_id="co-1", connection_id="conn-1", platform_key="gbol"
)
BILLS = "/companies/co-1/connections/conn-1/payables/bills"
PAY = f"{BILLS}/bill-7/payment"
OPTIONS = "/companies/co-1/connections/conn-1/payables/mappingOptions/payments"


def _bill(bill_id: str, due: float = 100.0, status: str = "Open") -> dict:
    return {
        "id": bill_id,
        "reference": "INV-7",
        "supplierRef": {"id": "sup-1", "supplierName": "Supplier"},
        "issueDate": "2026-11-01T00:00:00",
        "dueDate": "2026-12-01T00:00:00",
        "currency": "GBP",
        "status": status,
        "totalAmount": 100.0,
        "amountDue": due,
        "sourceModifiedDate": "2026-11-20T10:00:00.123Z",
    }


def _page(bills: list[dict], token: str | None = None) -> httpx.Response:
    return httpx.Response(
        200, json={"results": bills, "pagination": {"continuationToken": token} if token else {}}
    )


@pytest.fixture
def codat():
    return Codat()


@pytest.fixture
def adapter(codat):
    sdk = sdk_for(BASE, "test-key", http=httpx.Client(transport=httpx.MockTransport(codat)))
    return CodatPayablesAdapter(CodatClient(sdk, InMemoryThrottle(), clock=lambda: T0))


def test_a_bill_is_found_among_those_modified_since_the_copy(adapter, codat):
    codat.on(
        "GET",
        BILLS,
        _page([_bill("bill-1")], token="t2"),
        _page([_bill("bill-7", due=60.1, status="PartiallyPaid")]),
    )
    since = datetime(2026, 11, 20, 10, 0, 0, 123000, tzinfo=UTC)
    bill = adapter.fresh_bill(CONNECTION, "bill-7", since)
    assert bill is not None
    assert (bill.bill_id, bill.amount_due, bill.status) == (
        "bill-7",
        Decimal("60.10"),
        BillStatus.PARTIALLY_PAID,
    )
    assert bill.issue_date == date(2026, 11, 1)
    first, second = codat.requests
    query = first.url.params["query"]
    assert "sourceModifiedDate>=2026-11-20T10:00:00.123Z" in query
    assert all(f"status={s}" in query for s in ("Open", "PartiallyPaid", "Paid", "Void", "Draft"))
    assert second.url.params["continuationToken"] == "t2"


def test_a_bill_not_listed_is_none(adapter, codat):
    codat.on("GET", BILLS, _page([_bill("bill-1")]))
    assert adapter.fresh_bill(CONNECTION, "bill-7", None) is None


def test_a_listing_that_never_ends_is_an_error_not_a_guess(adapter, codat):
    codat.on("GET", BILLS, _page([_bill("bill-1")], token="again"))
    with pytest.raises(CodatUnexpectedResponseError, match="50 pages"):
        adapter.fresh_bill(CONNECTION, "bill-7", None)


def test_accounts_are_listed_archived_ones_included_across_pages(adapter, codat):
    def account(n: int, status: str) -> dict:
        return {"id": f"acc-{n}", "name": "Current", "currency": "GBP", "status": status}

    codat.on(
        "GET",
        OPTIONS,
        httpx.Response(
            200,
            json={
                "bankAccounts": [account(1, "Active")],
                "pagination": {"continuationToken": "p2"},
            },
        ),
        httpx.Response(200, json={"bankAccounts": [account(2, "Archived")], "pagination": {}}),
    )
    accounts = adapter.payment_accounts(CONNECTION)
    assert [(a.account_id, a.status) for a in accounts] == [
        ("acc-1", AccountStatus.ACTIVE),
        ("acc-2", AccountStatus.ARCHIVED),
    ]
    assert codat.requests[0].url.params["statusQuery"] == "status=Active||status=Archived"


def _body(**changes) -> PaymentBody:
    fields = {
        "amount": Decimal("40.10"),
        "date": date(2026, 11, 25),
        "account_id": "acc-1",
        "reference": None,
        "currency_rate": None,
        **changes,
    }
    return PaymentBody(**fields)


def test_the_payment_goes_with_its_idempotency_key_and_the_exact_body(adapter, codat):
    codat.on(
        "POST",
        PAY,
        httpx.Response(
            201,
            json={
                "id": "pay-99",
                "amount": 40.1,
                "date": "2026-11-25T00:00:00Z",
                "accountRef": {"id": "acc-1"},
            },
        ),
    )
    created = adapter.pay_bill(
        CONNECTION, "bill-7", _body(reference="R-1", currency_rate=Decimal("1.25")), "key-1"
    )
    assert created.id == "pay-99"
    (request,) = codat.requests
    assert request.headers["idempotency-key"] == "key-1"
    assert json.loads(request.content) == {
        "amount": 40.1,
        "date": "2026-11-25T00:00:00Z",
        "accountRef": {"id": "acc-1"},
        "reference": "R-1",
        "currencyRate": 1.25,
    }


def test_the_payment_body_leaves_out_what_was_not_given(adapter, codat):
    codat.on("POST", PAY, httpx.Response(201, json={"id": "pay-1"}))
    adapter.pay_bill(CONNECTION, "bill-7", _body(), "key-1")
    assert set(json.loads(codat.requests[0].content)) == {"amount", "date", "accountRef"}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, CodatRejectedError),
        (404, CodatRejectedError),
        (409, CodatUnavailableError),  # the same key still in flight
        (429, CodatRateLimitedError),
        (500, CodatUnavailableError),
        (503, CodatUnavailableError),
    ],
)
def test_codats_answers_to_a_payment_map_to_what_the_workflow_decides_on(
    adapter, codat, status, error
):
    codat.on("POST", PAY, httpx.Response(status, json=_codat_error(status)))
    with pytest.raises(error) as raised:
        adapter.pay_bill(CONNECTION, "bill-7", _body(), "key-1")
    assert raised.value.correlation_id == "corr-1"


def test_a_timeout_is_unavailable(adapter, codat):
    codat.on("POST", PAY, httpx.ReadTimeout("no answer"))
    with pytest.raises(CodatUnavailableError):
        adapter.pay_bill(CONNECTION, "bill-7", _body(), "key-1")
    assert len(codat.requests) == 1  # never re-sent by the SDK
