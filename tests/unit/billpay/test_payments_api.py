"""The payment routes of the API handler, with in-memory ports: status codes and bodies."""

import pytest

from billpay.api.handler import ApiDependencies
from billpay.companies.models import CompanyStatus
from billpay.payments.models import execution_name

from .fakes import FakeCodat
from .payables_fakes import ready_company
from .test_api_handler import call
from .test_payments_workflow import COMPANY, World

PATH = f"/companies/{COMPANY}/bills/bill-1/payments"
BODY = {"paymentId": "pay-1", "amount": 40.10, "date": "2026-11-25", "accountId": "acc-1"}


@pytest.fixture
def world():
    return World()


@pytest.fixture
def deps(world):
    codat = FakeCodat()
    return ApiDependencies(
        companies=world.companies,
        onboarding=world.workflows,
        codat=lambda: codat,
        payments=world.intake,
    )


def test_a_payment_is_accepted_with_202_and_read_back(deps, world):
    status, body = call(
        deps,
        "POST",
        PATH,
        raw_body='{"paymentId": "pay-1", "amount": 40.10, "date": "2026-11-25", "accountId": "acc-1", "reference": "INV-9"}',
    )
    assert status == 202
    assert body["paymentId"] == "pay-1"
    assert body["status"] == "PENDING"
    assert body["amount"] == "40.10"  # exactly as sent, as a decimal string
    assert body["currency"] == "GBP"
    assert body["reference"] == "INV-9"
    assert body["history"][0]["status"] == "PENDING"
    assert execution_name(COMPANY, "pay-1") in world.workflows.executions
    status, read = call(deps, "GET", f"{PATH}/pay-1")
    assert status == 200
    assert read == body


def test_the_same_payment_twice_is_one_payment_and_other_details_a_409(deps, world):
    assert call(deps, "POST", PATH, BODY)[0] == 202
    assert call(deps, "POST", PATH, BODY)[0] == 202
    status, body = call(deps, "POST", PATH, {**BODY, "amount": 41})
    assert status == 409
    assert body["error"]["code"] == "Conflict"
    assert len(world.payments.writes) == 1
    assert len(world.workflows.executions) == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "words"),
    [
        ("/companies/nobody/bills/bill-1/payments", BODY, 404, "NotFound", "company 'nobody'"),
        (f"/companies/{COMPANY}/bills/bill-9/payments", BODY, 404, "NotFound", "bill 'bill-9'"),
        ("/companies/bad%20id/bills/bill-1/payments", BODY, 400, "MalformedRequest", "companyId"),
        (f"/companies/{COMPANY}/bills/b%2Fx/payments", BODY, 400, "MalformedRequest", "billId"),
        (PATH, {**BODY, "paymentId": "bad id"}, 400, "ValidationError", "invalid"),
        (PATH, {**BODY, "amount": -5}, 400, "ValidationError", "invalid"),
        (PATH, {**BODY, "amount": 0}, 400, "ValidationError", "invalid"),
        (PATH, {**BODY, "amount": 1e15}, 400, "ValidationError", "invalid"),
        (PATH, {**BODY, "amount": 10.001}, 400, "InvalidPayment", "more decimal places"),
        (PATH, {**BODY, "amount": 100.01}, 400, "InvalidPayment", "more than the 100.00 GBP"),
        (PATH, {**BODY, "date": "2026-13-01"}, 400, "ValidationError", "invalid"),
        (PATH, {**BODY, "accountId": "acc-9"}, 400, "InvalidPayment", "acc-9"),
        (PATH, {k: v for k, v in BODY.items() if k != "amount"}, 400, "ValidationError", "invalid"),
    ],
)
def test_bad_input_is_a_4xx_with_a_clear_message_and_nothing_recorded(
    deps, world, path, body, status, code, words
):
    answer, error = call(deps, "POST", path, body)
    assert answer == status
    assert error["error"]["code"] == code
    assert words in error["error"]["message"]
    assert world.payments.writes == []
    assert world.workflows.executions == {}


def test_field_errors_name_the_field(deps):
    _status, body = call(deps, "POST", PATH, {**BODY, "amount": -5, "date": "soon"})
    fields = {detail["field"] for detail in body["error"]["details"]}
    assert fields == {"amount", "date"}
    messages = " ".join(detail["message"] for detail in body["error"]["details"])
    assert "greater than zero" in messages


def test_a_payment_the_bill_does_not_allow_lists_each_reason(deps, world):
    world.copy.accounts[0] = world.copy.accounts[0].model_copy(update={"currency": "USD"})
    status, body = call(deps, "POST", PATH, {**BODY, "amount": 100.01})
    assert status == 400
    assert {d["field"] for d in body["error"]["details"]} == {"amount", "currencyRate"}


def test_a_company_not_ready_is_a_409(deps, world):
    world.companies.items[COMPANY] = ready_company(COMPANY, status=CompanyStatus.NEEDS_RELINK)
    status, body = call(deps, "POST", PATH, BODY)
    assert status == 409
    assert body["error"]["code"] == "CompanyNotReady"


def test_a_body_that_is_not_json_is_a_400(deps, world):
    status, _body = call(deps, "POST", PATH, raw_body="{amount: 1")
    assert status == 400
    assert world.payments.writes == []


def test_an_unknown_payment_is_a_404(deps):
    assert call(deps, "GET", f"{PATH}/pay-404")[0] == 404
    assert call(deps, "GET", f"{PATH}/bad%20id")[0] == 400
