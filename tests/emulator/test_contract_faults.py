"""Faults and the Idempotency-Key as Codat has them, through the real SDK: every answer under a key
is stored for 90 minutes and replayed, 5xx included; only a 429 releases the key.

One test per fault an integration has to survive when paying a bill: a 500 before the write
(nothing landed), a 500 after it (the write landed), a timeout after it (the write landed, the
success is what the key stores) and a 429 (nothing landed, the key is free again)."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from codat_sync_for_payables.models.errors import ErrorMessage

from codat_emulator.testing import running_emulator

from .conftest import LinkedCompany, make_linked_company


def payment_route(linked: LinkedCompany) -> str:
    return (
        f"/companies/{linked.company_id}/connections/{linked.connection_id}"
        f"/payables/bills/{linked.open_bill_id}/payment"
    )


def pay(sdk, linked: LinkedCompany, key: str, amount: str = "10.00"):
    return sdk.bill_payments.create(
        request={
            **linked.ids,
            "bill_id": linked.open_bill_id,
            "idempotency_key": key,
            "bill_payment_prototype": {
                "amount": Decimal(amount),
                "date": "2024-03-15T00:00:00",
                "account_ref": {"id": linked.bank_account_id},
            },
        }
    )


def pay_expecting_error(sdk, linked: LinkedCompany, key: str) -> ErrorMessage:
    with pytest.raises(ErrorMessage) as caught:
        pay(sdk, linked, key)
    return caught.value


def bill_state(emu, linked: LinkedCompany) -> tuple[str, float, int]:
    bill = emu.store.get_bill(linked.company_id, linked.connection_id, linked.open_bill_id)
    payments = emu.store.list_payments(linked.company_id, linked.connection_id)
    return bill["status"], bill["amountDue"], len(payments)


def test_error_before_the_write_is_stored_and_replayed_under_the_key(emulator, sdk):
    linked = make_linked_company(emulator)
    rule = emulator.faults.add_rule(kind="error", route=payment_route(linked), count=2)
    key = str(uuid.uuid4())

    first = pay_expecting_error(sdk, linked, key)
    assert first.status_code == 500
    assert bill_state(emulator, linked) == ("Open", 120.0, 0)  # nothing landed

    # The same key gets the very same 500 back (its correlation id too), and still nothing lands
    replayed = pay_expecting_error(sdk, linked, key)
    assert replayed.status_code == 500
    assert replayed.data.correlation_id == first.data.correlation_id
    assert bill_state(emulator, linked) == ("Open", 120.0, 0)
    # The replay came from the key, not from the rule: it still has its second failure
    assert [r.count for r in emulator.faults.rules() if r.id == rule.id] == [1]

    assert pay_expecting_error(sdk, linked, str(uuid.uuid4())).status_code == 500
    paid = pay(sdk, linked, str(uuid.uuid4()))  # the rule is spent
    assert paid.amount == 10.0
    assert bill_state(emulator, linked) == ("PartiallyPaid", 110.0, 1)


def test_applied_then_error_lands_the_write_and_the_key_replays_the_500(emulator, sdk):
    linked = make_linked_company(emulator)
    emulator.faults.add_rule(
        kind="applied_then_error", route=payment_route(linked), method="POST", count=1
    )
    key = str(uuid.uuid4())

    first = pay_expecting_error(sdk, linked, key)
    assert first.status_code == 500
    assert first.data.can_be_retried == "Unknown"
    assert bill_state(emulator, linked) == ("PartiallyPaid", 110.0, 1)  # the write landed

    # A retry with the same key cannot tell the integration anything new: the same 500
    replayed = pay_expecting_error(sdk, linked, key)
    assert (replayed.status_code, replayed.data.correlation_id) == (500, first.data.correlation_id)
    assert bill_state(emulator, linked) == ("PartiallyPaid", 110.0, 1)

    # Only reading the bill tells: its amount due went down by the payment
    bill = sdk.bills.list(
        request={**linked.ids, "query": f"id={linked.open_bill_id}&&status!=Unknown"}
    ).results[0]
    assert (bill.status.value, bill.amount_due) == ("PartiallyPaid", 110.0)


def test_applied_then_timeout_lands_the_write_and_the_key_replays_the_success():
    with running_emulator() as emu:
        linked = make_linked_company(emu)
        emu.faults.add_rule(
            kind="applied_then_timeout", route=payment_route(linked), hang_seconds=1.0, count=1
        )
        key = str(uuid.uuid4())
        with pytest.raises(httpx.TimeoutException):
            pay(emu.sdk(timeout=0.3), linked, key)
        assert bill_state(emu, linked) == ("PartiallyPaid", 110.0, 1)  # the write landed

        # The key stored the success before the answer was held: the retry gets the payment
        retried = pay(emu.sdk(), linked, key)
        (payment,) = emu.store.list_payments(linked.company_id, linked.connection_id)
        assert (retried.id, retried.amount) == (payment["id"], 10.0)
        assert bill_state(emu, linked) == ("PartiallyPaid", 110.0, 1)


def test_a_client_that_outwaits_applied_then_timeout_gets_its_status():
    with running_emulator() as emu, emu.http(timeout=5) as client:
        linked = make_linked_company(emu)
        emu.faults.add_rule(
            kind="applied_then_timeout",
            route=payment_route(linked),
            hang_seconds=0.2,
            status=504,
            count=1,
        )
        body = {"amount": 10.0, "date": "2024-03-15", "accountRef": {"id": linked.bank_account_id}}
        key = str(uuid.uuid4())
        late = client.post(payment_route(linked), json=body, headers={"Idempotency-Key": key})
        assert late.status_code == 504
        assert late.json()["correlationId"]
        again = client.post(payment_route(linked), json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 201
        assert bill_state(emu, linked) == ("PartiallyPaid", 110.0, 1)


def test_a_retry_during_the_hang_already_gets_the_stored_success():
    with running_emulator() as emu:
        linked = make_linked_company(emu)
        emu.faults.add_rule(
            kind="applied_then_timeout", route=payment_route(linked), hang_seconds=2.0, count=1
        )
        key = str(uuid.uuid4())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            hung = pool.submit(pay, emu.sdk(timeout=1.5), linked, key)
            deadline = time.monotonic() + 5
            while bill_state(emu, linked)[2] == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            retried = pay(emu.sdk(), linked, key)  # while the first answer is still held
            assert not hung.done()
            assert isinstance(hung.exception(), httpx.TimeoutException)
        assert retried.amount == 10.0
        assert bill_state(emu, linked) == ("PartiallyPaid", 110.0, 1)


def test_rate_limit_releases_the_key_and_lands_nothing(emulator, sdk):
    linked = make_linked_company(emulator)
    emulator.faults.add_rule(
        kind="rate_limit", route=payment_route(linked), retry_after_seconds=3, count=2
    )
    key = str(uuid.uuid4())
    for _ in range(2):
        refused = pay_expecting_error(sdk, linked, key)
        assert refused.status_code == 429
        assert refused.raw_response.headers["retry-after"] == "3"
        assert bill_state(emulator, linked) == ("Open", 120.0, 0)
    paid = pay(sdk, linked, key)  # the same key, once the limit allows
    assert paid.amount == 10.0
    assert pay(sdk, linked, key).id == paid.id  # and from now on it replays
    assert bill_state(emulator, linked) == ("PartiallyPaid", 110.0, 1)


def test_a_refused_write_is_stored_under_its_key_too(emulator, sdk):
    linked = make_linked_company(emulator)
    key = str(uuid.uuid4())
    with pytest.raises(ErrorMessage) as first:
        pay(sdk, linked, key, amount="500.00")  # more than the amount due
    assert first.value.status_code == 400
    # The bill is paid in the platform meanwhile; the key still answers what it answered
    emulator.store.record_external_payment(
        linked.company_id, linked.connection_id, linked.open_bill_id, Decimal("20.00")
    )
    with pytest.raises(ErrorMessage) as replayed:
        pay(sdk, linked, key, amount="500.00")
    assert replayed.value.data.correlation_id == first.value.data.correlation_id


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "ambiguous"},
        {"kind": "error", "hang_seconds": 1},
        {"kind": "applied_then_timeout", "hang_seconds": 0},
        {"kind": "applied_then_error", "status": 429},
        {"kind": "applied_then_error", "mode": "hang"},
    ],
)
def test_bad_fault_rules_are_400s_that_name_the_problem(emulator, rule):
    with emulator.http() as client:
        before = client.get("/_emulator/faults").json()["rules"]
        response = client.post("/_emulator/faults", json=rule)
        assert response.status_code == 400, response.text
        assert response.json()["validation"]["errors"]
        assert client.get("/_emulator/faults").json()["rules"] == before
