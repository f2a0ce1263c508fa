"""Paying bills on the local cloud against the Codat emulator: the synthesized API, state machine
and functions, with Codat's idempotency rules and faults. Exactly one payment whatever happens.

Codat's 90-minute idempotency window is compressed to WINDOW seconds here, in the product (its
payment policy, as `-c 'config={"payments": ...}'` would set it) and in the emulator (the key TTL),
with waits in real time. WINDOW stays longer than the Codat client's read timeout (10 s) plus the
longest hang below, as Codat's real window is far longer than any request.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billpay.companies.models import CompanyStatus
from billpay.companies.repository import DynamoCompanyRepository
from billpay.payments.models import PaymentPolicy
from localcloud.payments import (
    Smb,
    emulator_limits,
    paid_record_lost_once,
    ready_smb,
    set_payment_policy,
    wait_until,
)
from localcloud.product import ProductCloud, running_product
from ops.__main__ import main as ops_main

WINDOW = 15
POLICY = PaymentPolicy(
    idempotency_window_seconds=WINDOW,
    window_margin_seconds=2,
    reconcile_schedule_seconds=(1,),
    max_attempts=2,
    bill_busy_retry_seconds=1,
    max_pending_seconds=300,
)
PAY_ROUTE = "/companies/*/connections/*/payables/bills/*/payment"


@pytest.fixture(scope="module")
def product(product_cdk_out: Path) -> Iterator[ProductCloud]:
    overrides = {**emulator_limits(POLICY), "fault_hang_seconds": 12.0}
    with running_product(product_cdk_out, time_scale=1.0, emulator=overrides) as running:
        set_payment_policy(running, POLICY)
        yield running


@pytest.fixture
def smb(product: ProductCloud) -> Iterator[Smb]:
    yield ready_smb(product, [Decimal("100.00"), Decimal("250.00")])
    product.emulator.faults.clear()


def paid_once(smb: Smb, bill_id: str, payment_id: str, amount: str) -> dict:
    """Pay and wait; the payment is PAID and the platform holds exactly it."""
    answer = smb.pay(bill_id, payment_id, amount)
    assert answer.status_code == 202, answer.text
    view = smb.wait_for_payment(bill_id, payment_id)
    assert view["status"] == "PAID", view
    assert view["executionStatus"] == "SUCCEEDED"
    [made] = smb.codat_payments(bill_id)
    assert Decimal(str(made["amount"])) == Decimal(amount)
    return view


def statuses(view: dict) -> list[str]:
    return [change["status"] for change in view["history"]]


# --- the happy paths ----------------------------------------------------------------------------


def test_a_full_payment(smb):
    bill = smb.bills[0]
    view = paid_once(smb, bill, "pay-full", "100.00")
    assert statuses(view) == ["PENDING", "SUBMITTED", "PAID"]
    assert view["codatPaymentId"] == smb.codat_payments(bill)[0]["id"]
    assert view["attempts"] == 1
    codat_bill = smb.codat_bill(bill)
    assert (codat_bill["status"], codat_bill["amountDue"]) == ("Paid", 0)
    # The bill lists it, as the product reads bills.
    [listed] = smb.copy().bill(smb.company_id, bill).payments
    assert (listed.payment_id, listed.status, listed.amount) == (
        "pay-full",
        "PAID",
        Decimal("100.00"),
    )


def test_a_partial_payment(smb):
    bill = smb.bills[1]
    paid_once(smb, bill, "pay-part", "99.99")
    codat_bill = smb.codat_bill(bill)
    assert codat_bill["status"] == "PartiallyPaid"
    assert Decimal(str(codat_bill["amountDue"])) == Decimal("150.01")


def test_the_bills_api_lists_each_bills_payments(smb):
    # Given one bill paid in full and another paid in two parts
    full, parts = smb.bills
    paid_once(smb, full, "pay-whole", "100.00")
    paid_once(smb, parts, "pay-part-1", "100.00")
    assert smb.pay(parts, "pay-part-2", "150.00").status_code == 202
    assert smb.wait_for_payment(parts, "pay-part-2")["status"] == "PAID"
    # When the product reads the bills through its API
    with smb.http() as http:
        whole = http.get(f"/companies/{smb.company_id}/bills/{full}").json()
        split = http.get(f"/companies/{smb.company_id}/bills/{parts}").json()
    # Then each bill lists the product's payments of it, in the order they were accepted
    assert [(p["paymentId"], p["amount"], p["status"]) for p in whole["payments"]] == [
        ("pay-whole", "100.00", "PAID")
    ]
    assert [(p["paymentId"], p["amount"], p["status"]) for p in split["payments"]] == [
        ("pay-part-1", "100.00", "PAID"),
        ("pay-part-2", "150.00", "PAID"),
    ]
    for listed in whole["payments"] + split["payments"]:
        assert listed["date"] == "2026-11-25"
        assert listed["createdAt"] <= listed["updatedAt"]
    assert {p.payment_id for p in smb.copy().bill(smb.company_id, parts).payments} == {
        "pay-part-1",
        "pay-part-2",
    }


# --- one payment per paymentId, one payment of a bill at a time -------------------------------


def test_the_same_payment_twice_and_concurrently_is_one_codat_payment(smb):
    bill = smb.bills[0]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: smb.pay(bill, "pay-twin", "100.00"), range(6)))
    assert [a.status_code for a in answers] == [202] * 6
    assert smb.pay(bill, "pay-twin", "100.00").status_code == 202
    view = smb.wait_for_payment(bill, "pay-twin")
    assert view["status"] == "PAID"
    assert smb.executions_of("pay-twin") == 1
    assert len(smb.codat_payments(bill)) == 1
    # And once paid, the same request again is still that payment: 202, nothing new.
    again = smb.pay(bill, "pay-twin", "100.00")
    assert again.status_code == 202
    assert again.json()["status"] == "PAID"
    assert len(smb.codat_payments(bill)) == 1


def test_the_same_payment_id_with_other_details_is_a_409(smb):
    bill = smb.bills[1]
    assert smb.pay(bill, "pay-409", "10.00").status_code == 202
    conflict = smb.pay(bill, "pay-409", "11.00")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "Conflict"
    smb.wait_for_payment(bill, "pay-409")
    assert [p["amount"] for p in smb.codat_payments(bill)] == [10.0]


def test_concurrent_payments_of_one_bill_go_one_at_a_time(smb):
    bill = smb.bills[0]
    ids = [f"pay-race-{n}" for n in range(3)]
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda pid: smb.pay(bill, pid, "100.00"), ids))
    assert [a.status_code for a in answers] == [202] * 3
    views = [smb.wait_for_payment(bill, pid) for pid in ids]
    assert sorted(v["status"] for v in views) == ["PAID", "REJECTED", "REJECTED"]
    for view in views:
        if view["status"] == "REJECTED":
            assert "is Paid" in view["reason"] or "more than" in view["reason"]
    assert len(smb.codat_payments(bill)) == 1


# --- ambiguous answers ------------------------------------------------------------------------


def test_applied_then_timeout_ends_in_one_payment_found_on_the_bill(smb):
    bill = smb.bills[0]
    smb.fault("applied_then_timeout", count=1)  # holds the answer 12 s: the client gives up at 10
    view = paid_once(smb, bill, "pay-timeout", "100.00")
    assert statuses(view) == ["PENDING", "SUBMITTED", "UNKNOWN", "PAID"]
    assert "the bill shows attempt 1" in view["reason"]
    assert view["attempts"] == 1


def test_applied_then_a_stored_500_ends_in_one_payment_found_on_the_bill(smb):
    bill = smb.bills[0]
    smb.fault("applied_then_error", count=1)
    view = paid_once(smb, bill, "pay-500", "100.00")
    assert statuses(view) == ["PENDING", "SUBMITTED", "UNKNOWN", "PAID"]
    assert view["correlationId"]  # the 500's, for Codat's support
    assert view["attempts"] == 1


def test_a_hang_that_lands_after_the_client_gave_up_ends_in_one_payment(smb):
    bill = smb.bills[0]
    smb.fault("latency", latency_ms=11_000, count=1)  # lands 1 s after the client's timeout
    view = paid_once(smb, bill, "pay-hang", "100.00")
    assert statuses(view) == ["PENDING", "SUBMITTED", "UNKNOWN", "PAID"]
    assert view["attempts"] == 1


def test_a_run_of_429s_ends_in_one_payment_under_one_key(smb):
    bill = smb.bills[0]
    smb.fault("rate_limit", count=4, retry_after_seconds=1)
    view = paid_once(smb, bill, "pay-429", "100.00")
    assert statuses(view) == ["PENDING", "SUBMITTED", "PAID"]
    assert view["attempts"] == 1
    waits = [
        e
        for e in smb.history("pay-429")
        if e["type"] == "WaitStateEntered"
        and e["stateEnteredEventDetails"]["name"] == "WaitForRateLimit"
    ]
    assert len(waits) == 4


def test_a_replayed_500_is_never_followed_by_a_new_key_inside_the_window(smb):
    bill = smb.bills[0]
    smb.fault("error", count=1)  # not applied; Codat stores the 500 under the key
    assert smb.pay(bill, "pay-replay", "100.00").status_code == 202
    # Unknown, and the bill read again and again: nothing may reach Codat while the key lives.
    wait_until(lambda: smb.payment(bill, "pay-replay").json()["status"] == "UNKNOWN", 30)
    unknown_since = datetime.fromisoformat(smb.payment(bill, "pay-replay").json()["updatedAt"])
    # Watch the platform until the payment ends: whenever it holds a payment, attempt 2 (a new
    # key) had been recorded before it, and attempt 2 went no sooner than the window allows.
    seen = []
    while True:
        held = smb.codat_payments(bill)
        view = smb.payment(bill, "pay-replay").json()
        if held:
            assert view["attempts"] == 2, view
            seen.append(len(held))
        if view["status"] == "PAID":
            break
        time.sleep(0.1)
    assert set(seen) <= {1}
    view = smb.wait_for_payment(bill, "pay-replay")
    assert view["status"] == "PAID"
    assert statuses(view) == ["PENDING", "SUBMITTED", "UNKNOWN", "PENDING", "SUBMITTED", "PAID"]
    second_sent = datetime.fromisoformat(
        next(c for c in reversed(view["history"]) if c["status"] == "SUBMITTED")["at"]
    )
    assert (second_sent - unknown_since).total_seconds() >= WINDOW
    assert len(smb.codat_payments(bill)) == 1


# --- a Lambda dying between Codat's answer and the record ---------------------------------------


@pytest.fixture
def record_write_fails_once():
    with paid_record_lost_once() as lost:
        yield lost


def test_dying_between_codats_answer_and_the_record_resumes_to_paid_without_a_second_payment(
    smb, record_write_fails_once
):
    bill = smb.bills[0]
    view = paid_once(smb, bill, "pay-crash", "100.00")
    assert record_write_fails_once == ["pay-crash"]
    failed = [e for e in smb.history("pay-crash") if e["type"] == "TaskFailed"]
    assert len(failed) == 1
    # The retried step sent the attempt again with the same key: Codat replayed its answer.
    assert view["attempts"] == 1
    assert view["codatPaymentId"] == smb.codat_payments(bill)[0]["id"]
    assert statuses(view) == ["PENDING", "SUBMITTED", "PAID"]


# --- a payment refused: a 4xx, or REJECTED on Codat's fresh copy; nothing created --------------


def test_a_bill_paid_outside_the_product_since_the_copy_is_rejected_on_codats_fresh_copy(smb):
    bill = smb.bills[0]
    with smb.product.emulator.http() as http:
        http.post(
            f"/_emulator/companies/{smb.codat_company_id}/connections/{smb.connection_id}"
            f"/bills/{bill}/pay",
            json={},
        ).raise_for_status()
    assert smb.pay(bill, "pay-stale", "100.00").status_code == 202  # the copy says Open
    view = smb.wait_for_payment(bill, "pay-stale")
    assert view["status"] == "REJECTED"
    assert "is Paid" in view["reason"]
    assert "nothing was sent" in view["reason"]
    assert [p["external"] for p in smb.codat_payments(bill)] == [True]


def _bad_requests(smb: Smb) -> list[tuple[str, str, dict, int, str]]:
    bill = smb.bills[0]
    good = {
        "paymentId": "pay-bad",
        "amount": "10.00",
        "date": "2026-11-25",
        "accountId": smb.account_id,
    }
    return [
        ("nobody", bill, good, 404, "company 'nobody' is not known"),
        (smb.company_id, "no-such-bill", good, 404, "bill 'no-such-bill' is not known"),
        ("bad id", bill, good, 400, "companyId is not a valid id"),
        (smb.company_id, "bad%20bill", good, 400, "billId is not a valid id"),
        (smb.company_id, bill, {**good, "paymentId": "bad id!"}, 400, "the request is invalid"),
        (smb.company_id, bill, {**good, "amount": "-5.00"}, 400, "the request is invalid"),
        (smb.company_id, bill, {**good, "amount": 0}, 400, "the request is invalid"),
        (smb.company_id, bill, {**good, "amount": "10.001"}, 400, "more decimal places than GBP"),
        (smb.company_id, bill, {**good, "amount": "1e13"}, 400, "the request is invalid"),
        (smb.company_id, bill, {**good, "amount": "100.01"}, 400, "more than the 100.00 GBP due"),
        (smb.company_id, bill, {**good, "date": "2026-02-30"}, 400, "the request is invalid"),
        (smb.company_id, bill, {**good, "date": "tomorrow"}, 400, "the request is invalid"),
        (
            smb.company_id,
            bill,
            {**good, "accountId": "no-such-account"},
            400,
            "not one this company",
        ),
        (smb.company_id, bill, {**good, "accountId": smb.archived_account_id}, 400, "is Archived"),
        (
            smb.company_id,
            bill,
            {**good, "accountId": smb.usd_account_id},
            400,
            "a currencyRate is needed",
        ),
    ]


def test_every_bad_input_is_a_4xx_with_a_clear_message_and_creates_nothing(smb):
    with smb.http() as http:
        for company_id, bill_id, body, status, words in _bad_requests(smb):
            answer = http.post(f"/companies/{company_id}/bills/{bill_id}/payments", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert words in answer.json()["error"]["message"], (body, answer.json())
    assert smb.codat_payments() == []
    assert smb.executions_of("pay-bad") == 0
    assert smb.payment(smb.bills[0], "pay-bad").status_code == 404


def test_a_body_the_gateway_cannot_shape_is_refused_there(smb):
    with smb.http() as http:
        answer = http.post(
            f"/companies/{smb.company_id}/bills/{smb.bills[0]}/payments",
            json={"paymentId": "pay-x", "amount": "1", "date": "2026-11-25"},
        )
    assert answer.status_code == 400
    assert answer.json() == {"message": "Invalid request body"}
    assert smb.codat_payments() == []


def test_a_company_not_ready_is_a_409_and_creates_nothing(smb, product):
    cloud = product.cloud
    # Onboarding's webhooks still in the queue would move the company back (a newer "Linked"
    # restores READY): let them be applied before the company is disconnected by hand.
    cloud.wait_for_queues()
    companies = DynamoCompanyRepository(
        cloud.client("dynamodb"), cloud.output("CompaniesTableName")
    )
    record = companies.get(smb.company_id)
    moved = record.model_copy(
        update={"status": CompanyStatus.NEEDS_RELINK, "version": record.version + 1}
    )
    assert companies.replace(moved, expected_version=record.version)
    answer = smb.pay(smb.bills[0], "pay-relink", "10.00")
    assert answer.status_code == 409
    assert "NEEDS_RELINK" in answer.json()["error"]["message"]
    assert smb.codat_payments() == []
    assert smb.executions_of("pay-relink") == 0


# --- an operator settling a payment left UNKNOWN (python -m ops settle-payment) ------------------


@pytest.fixture(scope="module")
def published(product: ProductCloud) -> Callable[[str], list[dict]]:
    """What the product publishes on its bus (a rule into a queue), by paymentId."""
    cloud = product.cloud
    sqs, events = cloud.client("sqs"), cloud.client("events")
    queue = sqs.create_queue(QueueName="payment-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = cloud.output("EventBusName")
    events.put_rule(Name="payments", EventBusName=bus, EventPattern='{"source": ["billpay"]}')
    events.put_targets(Rule="payments", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    seen: list[dict] = []

    def of(payment_id: str) -> list[dict]:
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in seen if e["detail"].get("paymentId") == payment_id]

    return of


def settle(smb: Smb, payment_id: str, *decision: str) -> tuple[int, str]:
    """`python -m ops settle-payment --stage dev ...` against the local cloud; (exit code, output)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["settle-payment", "--stage", "dev", "--region", smb.product.cloud.region,
            "--company", smb.company_id, "--payment", payment_id, "--operator", "ops@acme",
            *decision]  # fmt: skip
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ops_main(argv)
    return code, out.getvalue() + err.getvalue()


def test_an_operator_settles_payments_left_for_review_through_the_ops_command(smb, published):
    # Given two payments whose attempt got a stored 500 (nothing landed), and bills then paid
    # in part in the accounting platform: the bills no longer say what happened, NeedsReview
    smb.fault("error", count=2)
    first, second = smb.bills
    assert smb.pay(first, "pay-review-1", "100.00").status_code == 202
    assert smb.pay(second, "pay-review-2", "100.00").status_code == 202
    for bill, payment_id in ((first, "pay-review-1"), (second, "pay-review-2")):
        wait_until(lambda b=bill, p=payment_id: smb.payment(b, p).json()["status"] == "UNKNOWN")
        smb.pay_outside(bill, "30.00")
    for bill, payment_id in ((first, "pay-review-1"), (second, "pay-review-2")):
        view = smb.wait_for_payment(bill, payment_id)
        assert (view["status"], view["executionStatus"]) == ("UNKNOWN", "FAILED"), view
        assert "does not explain it" in view["reason"]
    # When the operator records what they found in the platform
    code, said = settle(smb, "pay-review-2", "--paid", "--evidence", "platform payment 8841")
    assert code == 0, said
    # Then the payment is PAID with the evidence, listed on the bill, announced, the bill free
    view = smb.payment(second, "pay-review-2").json()
    assert view["status"] == "PAID"
    assert view["reason"] == "settled PAID by ops@acme after review: platform payment 8841"
    [listed] = smb.copy().bill(smb.company_id, second).payments
    assert (listed.payment_id, listed.status) == ("pay-review-2", "PAID")
    assert [e["detail-type"] for e in published("pay-review-2")] == ["BillPaid"]
    # Settling it again, or FAILED while the attempt may still land, is refused, writing nothing
    code, said = settle(smb, "pay-review-2", "--failed", "--evidence", "changed my mind")
    assert code == 2
    assert "refused (IllegalSettlement)" in said
    assert "settled already" in said
    code, said = settle(smb, "pay-review-1", "--failed", "--evidence", "not in the platform")
    assert code == 2
    assert "may still land at Codat until" in said, said
    assert smb.payment(first, "pay-review-1").json()["status"] == "UNKNOWN"
    # (FAILED once the window has passed: tests/unit/billpay/test_payments_settlement.py; the
    # wait would cost this tier WINDOW seconds)
    # Codat holds only the platform's own payments: settling sent nothing
    assert [p["external"] for p in smb.codat_payments()] == [True, True]


# --- Codat's billPayments.write webhooks ------------------------------------------------------


def test_a_reported_success_stops_a_new_key_and_an_operator_settles_it(smb, published):
    # Given a payment whose attempt got a stored 500 (nothing landed): UNKNOWN, the bill unchanged
    bill = smb.bills[0]
    smb.fault("error", count=1)
    assert smb.pay(bill, "pay-ghost", "100.00").status_code == 202
    wait_until(lambda: smb.payment(bill, "pay-ghost").json()["status"] == "UNKNOWN")
    # When Codat reports a payment written, as a signed webhook (the emulator's)
    with smb.product.emulator.http() as http:
        answer = http.post(
            f"/_emulator/companies/{smb.codat_company_id}/connections/{smb.connection_id}"
            "/write-results",
            json={"dataType": "billPayments", "type": "Create", "successful": True,
                  "recordId": "codat-ghost"},
        )  # fmt: skip
        answer.raise_for_status()
    write_id = answer.json()["payload"]["id"]

    def attached() -> list[dict]:
        return list(smb.payment(bill, "pay-ghost").json()["codatWrites"])

    wait_until(lambda: attached() != [], 30)
    # Then it is attached to the payment, and once the window has passed with the bill unchanged
    # no new key goes out: the payment waits for review instead of a second attempt
    view = smb.wait_for_payment(bill, "pay-ghost")
    assert (view["status"], view["executionStatus"]) == ("UNKNOWN", "FAILED")
    assert "Codat reported payment codat-ghost written during attempt 1" in view["reason"]
    assert view["attempts"] == 1
    assert [(w["writeId"], w["recordId"], w["attempt"]) for w in view["codatWrites"]] == [
        (write_id, "codat-ghost", 1)
    ]
    assert smb.codat_payments(bill) == []
    # An operator cannot record it FAILED while that write stands; naming it as another's, can
    code, said = settle(smb, "pay-ghost", "--failed", "--evidence", "nothing in the platform")
    assert code == 2
    assert "cannot be recorded FAILED unless that write is found" in said
    code, said = settle(smb, "pay-ghost", "--failed", "--evidence", "nothing in the platform",
                        "--dismiss-write", write_id)  # fmt: skip
    assert code == 0, said
    assert smb.payment(bill, "pay-ghost").json()["status"] == "FAILED"
    assert [e["detail-type"] for e in published("pay-ghost")] == ["PaymentFailed"]
    assert smb.codat_payments(bill) == []
