"""Accepting a payment: the request's rules, the product's copy of the bill, one payment per id."""

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from billpay.bills.models import AccountStatus, BillStatus, CompanyNotReadyError
from billpay.companies.models import CompanyStatus
from billpay.core.errors import ConflictError, NotFoundError
from billpay.payments import logic
from billpay.payments.logic import InvalidPaymentError
from billpay.payments.models import PaymentRequest, PaymentStatus, execution_name

from .payables_fakes import ready_company
from .payments_fakes import account, open_bill
from .test_payments_workflow import COMPANY, World


def request(**changes) -> PaymentRequest:
    body = {"paymentId": "pay-1", "amount": "40.00", "date": "2026-11-25", "accountId": "acc-1"}
    body.update(changes)
    return PaymentRequest.model_validate({k: v for k, v in body.items() if v is not None})


def parsed(raw: str) -> PaymentRequest:
    """As the API parses a body: JSON numbers become Decimal, never float."""
    return PaymentRequest.model_validate(json.loads(raw, parse_float=Decimal))


# --- the request's own rules ----------------------------------------------------------------------


def test_amounts_are_exact_decimals_from_json_numbers_or_strings():
    assert parsed('{"paymentId":"p","amount":0.1,"date":"2026-01-31","accountId":"a"}').amount == (
        Decimal("0.1")
    )
    assert request(amount="12.50").amount == Decimal("12.50")
    assert request(amount=7).amount == Decimal(7)


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("-5.00", "greater than zero"),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        ("1000000000000", "less than"),
        ("1e400", "less than"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("twelve", "not a number"),
        (True, "must be a number"),
        ([1], "must be a number"),
    ],
)
def test_bad_amounts_are_refused_with_the_reason(amount, words):
    with pytest.raises(ValidationError, match=words):
        request(amount=amount)


@pytest.mark.parametrize("date", ["2026-02-30", "25/11/2026", "2026-11-25T00:00:00Z", "", 20261125])
def test_dates_that_do_not_parse_are_refused(date):
    with pytest.raises(ValidationError, match="date"):
        request(date=date)


@pytest.mark.parametrize(
    "changes",
    [
        {"paymentId": "has space"},
        {"paymentId": "x" * 65},
        {"paymentId": "-leading"},
        {"accountId": "a/b"},
        {"currencyRate": "0"},
        {"currencyRate": "1.0000000001"},
        {"reference": "x" * 256},
        {"unexpected": 1},
    ],
)
def test_malformed_fields_are_refused(changes):
    with pytest.raises(ValidationError):
        request(**changes)


def test_the_same_intent_written_differently_has_one_fingerprint():
    a = request(amount="10.5", currencyRate="1.10").intent("bill-1")
    b = request(amount="10.50", currencyRate="1.1").intent("bill-1")
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != request(amount="10.51").intent("bill-1").fingerprint()
    assert a.fingerprint() != request(amount="10.5").intent("bill-2").fingerprint()


# --- checked against the product's copy -----------------------------------------------------------


def test_a_good_payment_is_recorded_pending_listed_on_the_bill_and_its_workflow_started():
    world = World()
    record = logic.accept_payment(COMPANY, "bill-1", request(), world.intake)
    assert record.status is PaymentStatus.PENDING
    assert record.accepted_bill.amount_due == Decimal("100.00")
    assert world.record() == record
    assert world.on_bill.listed[(COMPANY, "bill-1")] == {"pay-1": "PENDING"}
    name = execution_name(COMPANY, "pay-1")
    assert world.workflows.executions[name].input == {"companyId": COMPANY, "paymentId": "pay-1"}


def test_the_same_request_again_is_the_same_payment():
    world = World()
    first = logic.accept_payment(COMPANY, "bill-1", request(amount="40"), world.intake)
    again = logic.accept_payment(COMPANY, "bill-1", request(amount="40.00"), world.intake)
    assert again == first
    assert len(world.workflows.executions) == 1
    assert len(world.payments.writes) == 1


def test_the_same_request_again_after_the_bill_was_paid_is_still_the_same_payment():
    world = World()
    logic.accept_payment(COMPANY, "bill-1", request(amount="100.00"), world.intake)
    world.copy.bills["bill-1"] = open_bill(amount_due=Decimal("0.00"), status=BillStatus.PAID)
    again = logic.accept_payment(COMPANY, "bill-1", request(amount="100.00"), world.intake)
    assert again.payment_id == "pay-1"


@pytest.mark.parametrize(
    ("bill_id", "changes"),
    [
        ("bill-1", {"amount": "41.00"}),
        ("bill-1", {"accountId": "acc-2"}),
        ("bill-1", {"reference": "other"}),
        ("bill-1", {"date": "2026-11-26"}),
        ("bill-2", {}),
    ],
)
def test_the_same_payment_id_with_other_details_is_a_conflict(bill_id, changes):
    world = World()
    world.copy.bills["bill-2"] = open_bill("bill-2")
    world.copy.accounts.append(account("acc-2"))
    logic.accept_payment(COMPANY, "bill-1", request(), world.intake)
    with pytest.raises(ConflictError, match="pay-1"):
        logic.accept_payment(COMPANY, bill_id, request(**changes), world.intake)
    assert len(world.payments.writes) == 1


def test_a_concurrent_twin_that_stored_first_is_answered_as_the_same_payment():
    world = World()
    twin = logic._checked_payment(COMPANY, "pay-1", request().intent("bill-1"), world.intake)
    original_get = world.payments.get
    calls = []

    def get_after_twin(company_id, payment_id):
        calls.append(payment_id)
        if len(calls) == 1:  # our first look finds nothing; then the twin stores it
            world.payments.create(twin)
            return None
        return original_get(company_id, payment_id)

    world.payments.get = get_after_twin
    record = logic.accept_payment(COMPANY, "bill-1", request(), world.intake)
    assert record == twin
    assert len(world.payments.writes) == 1


def test_a_concurrent_twin_with_other_details_is_a_conflict():
    world = World()
    twin = logic._checked_payment(
        COMPANY, "pay-1", request(amount="10.00").intent("bill-1"), world.intake
    )
    original_get = world.payments.get
    calls = []

    def get_after_twin(company_id, payment_id):
        calls.append(payment_id)
        if len(calls) == 1:
            world.payments.create(twin)
            return None
        return original_get(company_id, payment_id)

    world.payments.get = get_after_twin
    with pytest.raises(ConflictError):
        logic.accept_payment(COMPANY, "bill-1", request(), world.intake)


def test_unknown_company_and_unknown_bill_are_not_found_with_nothing_recorded():
    world = World()
    with pytest.raises(NotFoundError, match="company 'nobody'"):
        logic.accept_payment("nobody", "bill-1", request(), world.intake)
    with pytest.raises(NotFoundError, match="bill 'bill-9'"):
        logic.accept_payment(COMPANY, "bill-9", request(), world.intake)
    assert world.payments.writes == []
    assert world.workflows.executions == {}


@pytest.mark.parametrize(
    "status", [CompanyStatus.PENDING_LINK, CompanyStatus.NEEDS_RELINK, CompanyStatus.OFFBOARDED]
)
def test_a_company_not_ready_is_refused_with_nothing_recorded(status):
    world = World()
    world.companies.items[COMPANY] = ready_company(COMPANY, status=status)
    with pytest.raises(CompanyNotReadyError, match=str(status)):
        logic.accept_payment(COMPANY, "bill-1", request(), world.intake)
    assert world.payments.writes == []


@pytest.mark.parametrize(
    ("changes", "copy_change", "field", "words"),
    [
        ({"amount": "100.01"}, None, "amount", "more than the 100.00 GBP due"),
        ({"amount": "10.001"}, None, "amount", r"more decimal places than GBP allows \(2\)"),
        ({"accountId": "acc-9"}, None, "accountId", "not one this company can pay bills from"),
        ({}, "archived", "accountId", "Archived"),
        ({}, "usd", "currencyRate", "a currencyRate is needed"),
        ({}, "paid", "billId", "only Open or PartiallyPaid"),
        ({}, "draft", "billId", "is Draft"),
    ],
)
def test_payments_the_bill_or_account_do_not_allow_are_refused_naming_the_field(
    changes, copy_change, field, words
):
    world = World()
    if copy_change == "archived":
        world.copy.accounts = [account(status=AccountStatus.ARCHIVED)]
    elif copy_change == "usd":
        world.copy.accounts = [account(currency="USD")]
    elif copy_change == "paid":
        world.copy.bills["bill-1"] = open_bill(amount_due=Decimal("0.00"), status=BillStatus.PAID)
    elif copy_change == "draft":
        world.copy.bills["bill-1"] = open_bill(status=BillStatus.DRAFT)
    with pytest.raises(InvalidPaymentError, match=words) as refused:
        logic.accept_payment(COMPANY, "bill-1", request(**changes), world.intake)
    assert field in [detail["field"] for detail in refused.value.details]
    assert world.payments.writes == []
    assert world.workflows.executions == {}


def test_a_foreign_currency_account_with_a_rate_is_accepted():
    world = World()
    world.copy.accounts = [account(currency="USD")]
    record = logic.accept_payment(COMPANY, "bill-1", request(currencyRate="1.27"), world.intake)
    assert record.intent.currency_rate == Decimal("1.27")


def test_reading_a_payment_needs_its_bill():
    world = World()
    logic.accept_payment(COMPANY, "bill-1", request(), world.intake)
    assert logic.get_payment(COMPANY, "bill-1", "pay-1", world.payments).payment_id == "pay-1"
    with pytest.raises(NotFoundError):
        logic.get_payment(COMPANY, "bill-2", "pay-1", world.payments)
    with pytest.raises(NotFoundError):
        logic.get_payment(COMPANY, "bill-1", "pay-2", world.payments)
