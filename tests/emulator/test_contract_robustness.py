"""State stays consistent under concurrent payments and arbitrary bad input."""

from __future__ import annotations

import concurrent.futures
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import make_linked_company

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def test_concurrent_payments_never_overpay(emulator):
    linked = make_linked_company(emulator)
    path = (
        f"/companies/{linked.company_id}/connections/{linked.connection_id}"
        f"/payables/bills/{linked.open_bill_id}/payment"
    )
    body = {"amount": 10.0, "date": "2024-03-15", "accountRef": {"id": linked.bank_account_id}}

    def pay_three_times(_):
        with emulator.http() as client:
            return [client.post(path, json=body).status_code for _ in range(3)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(pay_three_times, range(8)) for s in batch]
    # 120.00 due: exactly twelve payments of 10.00 fit, every other attempt is refused
    assert statuses.count(201) == 12
    assert set(statuses) <= {201, 400, 429}
    bill = emulator.store.get_bill(linked.company_id, linked.connection_id, linked.open_bill_id)
    assert (bill["status"], bill["amountDue"]) == ("Paid", 0.0)
    assert len(emulator.store.list_payments(linked.company_id, linked.connection_id)) == 12


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(["bills", "suppliers", "bankAccounts", "payment", "bill", "company"]),
    body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)),
)
def test_bad_bodies_are_4xx_and_change_nothing(emulator, route, body):
    # One company and one client for every example (hypothesis calls this body many times).
    cache = test_bad_bodies_are_4xx_and_change_nothing.__dict__
    if cache.get("emulator") is not emulator:
        cache.update(
            emulator=emulator, linked=make_linked_company(emulator), client=emulator.http()
        )
    linked, client = cache["linked"], cache["client"]
    base = f"/companies/{linked.company_id}/connections/{linked.connection_id}/payables"
    method, path = {
        "bills": ("POST", f"{base}/bills"),
        "suppliers": ("POST", f"{base}/suppliers"),
        "bankAccounts": ("POST", f"{base}/bankAccounts"),
        "payment": ("POST", f"{base}/bills/{linked.open_bill_id}/payment"),
        "bill": ("PUT", f"{base}/bills/{linked.open_bill_id}"),
        "company": ("PUT", f"/companies/{linked.company_id}"),
    }[route]
    store = emulator.store
    before = (
        store.get_company(linked.company_id),
        store.count_bills(linked.company_id, linked.connection_id),
        store.payment_mapping_options(linked.company_id, linked.connection_id),
        store.list_suppliers(linked.company_id, linked.connection_id, 0, 1000).items,
    )
    response = client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    if response.status_code < 300:
        return  # hypothesis found a valid body; nothing to assert about refusal
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["statusCode"] == response.status_code
    after = (
        store.get_company(linked.company_id),
        store.count_bills(linked.company_id, linked.connection_id),
        store.payment_mapping_options(linked.company_id, linked.connection_id),
        store.list_suppliers(linked.company_id, linked.connection_id, 0, 1000).items,
    )
    assert after == before
