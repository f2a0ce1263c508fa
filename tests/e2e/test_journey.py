"""The journey of `make demo`, through HTTP only (the product's API, the Link page, the emulator's
control routes; Codat's webhooks signed by the emulator), then what it left behind: the product's
tables in DynamoDB and the books in Codat (the emulator).

The demo's default run is tests/e2e/test_demo.py (as a user runs it); this one runs the journey
with every option at once (another platform, a larger data set, faults) on a shared product.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from billpay.bills.repository import DynamoPayablesRepository
from billpay.companies.models import CompanyStatus
from billpay.companies.repository import DynamoCompanyRepository
from billpay.payments.repository import DynamoPaymentStore
from localcloud.demo import DemoOptions, JourneyResult, Timeline, run_journey
from localcloud.product import ProductCloud

OPTIONS = DemoOptions(platform_key="qhyg", bills=150, faults=True)


@pytest.fixture(scope="module")
def journey(product: ProductCloud, tmp_path_factory) -> tuple[JourneyResult, str]:
    out = tmp_path_factory.mktemp("journey") / "timeline.txt"
    with out.open("w") as timeline:
        result = run_journey(product, OPTIONS, Timeline(timeline))
    return result, out.read_text()


def _tables(product: ProductCloud):
    cloud = product.cloud
    dynamodb = cloud.client("dynamodb")
    return (
        DynamoCompanyRepository(dynamodb, cloud.output("CompaniesTableName")),
        DynamoPayablesRepository(dynamodb, cloud.output("PayablesTableName")),
        DynamoPaymentStore(dynamodb, cloud.output("PaymentsTableName")),
    )


def test_the_journey_leaves_the_company_ready_and_its_bills_as_codat_has_them(product, journey):
    result, _ = journey
    companies, payables, _ = _tables(product)
    company = companies.get(result.company_id)
    assert company.status is CompanyStatus.READY
    assert (company.platform_key, company.connection_status) == ("qhyg", "Linked")
    assert company.codat_company_id == result.codat_company_id
    # The larger data set: every bill of the books copied (the initial load), in USD (QuickBooks)
    codat = product.emulator.store
    assert result.bills_total == 150
    roles = {role: bill_id for bill_id, (role, _, _) in result.bills.items()}
    full, part = roles["paid in full (product)"], roles["paid in part (product)"]
    edited, outside = roles["edited in the software"], roles["paid outside the product"]
    for bill_id in (full, part, edited, outside):
        mine = payables.bill(result.company_id, bill_id)
        theirs = codat.get_bill(result.codat_company_id, result.connection_id, bill_id)
        assert mine.status == theirs["status"], bill_id
        assert mine.amount_due == Decimal(str(theirs["amountDue"])), bill_id
        assert mine.currency == "USD"
    assert payables.bill(result.company_id, full).status == "Paid"
    assert payables.bill(result.company_id, part).status == "PartiallyPaid"
    assert payables.bill(result.company_id, outside).status == "Paid"
    _, before, after = result.bills[edited]
    assert Decimal(after["totalAmount"]) == Decimal(before["totalAmount"]) + 100
    assert payables.bill(result.company_id, edited).total_amount == Decimal(after["totalAmount"])


def test_each_payment_is_paid_once_in_dynamodb_and_in_codat(product, journey):
    result, _ = journey
    _, payables, payments = _tables(product)
    paid = {p["paymentId"]: p for p in result.payments}
    assert set(paid) == {"demo-pay-full", "demo-pay-part"}
    for payment_id, view in paid.items():
        record = payments.get(result.company_id, payment_id)
        assert record.status == "PAID"
        assert record.attempts == 1
        listed = payables.bill(result.company_id, view["billId"]).payments
        assert [(p.payment_id, p.status) for p in listed] == [(payment_id, "PAID")]
    # Exactly the expected payments in the books: the product's two (the duplicate request and the
    # ambiguous 500 made no second one) and the one made outside the product
    made = product.emulator.store.list_payments(result.codat_company_id, result.connection_id)
    by_bill = sorted((p["billId"], Decimal(str(p["amount"])), p["external"]) for p in made)
    expected = sorted(
        [(view["billId"], Decimal(view["amount"]), False) for view in paid.values()]
        + [(bill_id, by, True) for bill_id, by in _paid_outside(result)]
    )
    assert by_bill == expected, made


def _paid_outside(result: JourneyResult) -> list[tuple[str, Decimal]]:
    return [
        (bill_id, Decimal(before["amountDue"]))
        for bill_id, (role, before, _) in result.bills.items()
        if role == "paid outside the product"
    ]


def test_the_faults_were_met_retried_and_reconciled(journey):
    result, timeline = journey
    full = next(p for p in result.payments if p["paymentId"] == "demo-pay-full")
    assert [c["status"] for c in full["history"]] == ["PENDING", "SUBMITTED", "UNKNOWN", "PAID"]
    assert len(result.faults) == 3
    assert "503" in result.faults[0]
    assert "429" in result.faults[1]
    assert "500" in result.faults[2]
    assert "faults armed in Codat" in timeline
    # and the journey's cost was counted
    cost = result.cost
    assert cost.executions == 5  # onboarding, the initial load, the read's sync, two payments
    assert cost.state_transitions > 5 * 2
    assert cost.lambda_invocations == sum(cost.by_function.values()) > cost.executions
    assert cost.codat_calls > 0
