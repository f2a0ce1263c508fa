"""What the SDK will not send: bad input, auth, quota, idempotency and faults, over raw HTTP."""

from __future__ import annotations

import base64
import concurrent.futures
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from codat_emulator.store import Store
from codat_emulator.testing import running_emulator

from .conftest import make_linked_company

ERROR_KEYS = {
    "statusCode",
    "service",
    "error",
    "correlationId",
    "validation",
    "canBeRetried",
    "detailedErrorCode",
}


def assert_codat_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["statusCode"] == status
    assert body["correlationId"]
    assert set(body["validation"]) == {"errors", "warnings"}
    assert "x-rate-limit-limit" in response.headers
    return body


def payment_path(linked, bill_id=None):
    return (
        f"/companies/{linked.company_id}/connections/{linked.connection_id}"
        f"/payables/bills/{bill_id or linked.open_bill_id}/payment"
    )


def payment_body(linked, amount=10.0):
    return {"amount": amount, "date": "2024-03-15", "accountRef": {"id": linked.bank_account_id}}


@pytest.fixture
def http(emulator):
    with emulator.http() as client:
        yield client


# --- auth and routing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b"wrong-key-123").decode(),
        "Bearer something",
        "Basic not-base64!",
    ],
)
def test_requests_without_the_api_key_are_401(emulator, header):
    headers = {"Authorization": header} if header else {}
    response = httpx.get(emulator.base_url + "/companies", headers=headers)
    body = assert_codat_error(response, 401)
    assert body["canBeRetried"] == "False"


def test_unknown_route_and_method_are_codat_errors(http):
    assert_codat_error(http.get("/no/such/route"), 404)
    assert_codat_error(http.delete("/companies"), 405)
    assert_codat_error(http.get(f"/companies/{uuid.uuid4()}"), 404)


def test_rate_limit_headers_on_success(http):
    response = http.get("/companies")
    assert response.status_code == 200
    limit = int(response.headers["x-rate-limit-limit"])
    remaining = int(response.headers["x-rate-limit-remaining"])
    assert 0 <= remaining < limit
    assert response.headers["x-rate-limit-reset"].endswith("Z")


# --- bad input -----------------------------------------------------------------------------------


def test_malformed_json_is_400(http):
    body = assert_codat_error(http.post("/companies", content=b'{"name": "x"'), 400)
    assert body["validation"]["errors"][0]["itemId"] == "body"
    assert_codat_error(http.post("/companies", content=b"[1, 2]"), 400)
    assert_codat_error(http.post("/companies", content=b""), 400)


def test_missing_fields_and_wrong_types_are_400_with_each_field(http, emulator):
    linked = make_linked_company(emulator)
    response = http.post(payment_path(linked), json={"amount": "lots", "accountRef": {}})
    body = assert_codat_error(response, 400)
    items = {e["itemId"] for e in body["validation"]["errors"]}
    assert {"amount", "date", "accountRef.id"} <= items
    response = http.post(payment_path(linked), json={**payment_body(linked), "amount": 10.001})
    assert_codat_error(response, 400)
    # nothing was paid
    assert emulator.store.list_payments(linked.company_id, linked.connection_id) == []


def test_extreme_values_are_400_not_500(http, emulator):
    linked = make_linked_company(emulator)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_codat_error(http.post("/companies", content=deep), 400)
    assert http.post(emulator.base_url + "/_emulator/faults", content=deep).status_code == 400
    assert_codat_error(
        http.post(payment_path(linked), json={**payment_body(linked), "amount": 1e30}), 400
    )
    bills = f"/companies/{linked.company_id}/connections/{linked.connection_id}/payables/bills"
    huge_line = {
        "supplierRef": {"id": linked.supplier_id},
        "issueDate": "2024-01-01",
        "dueDate": "2024-02-01",
        "currency": "GBP",
        "status": "Open",
        "lineItems": [{"unitAmount": 1e30, "quantity": 1e30}],
    }
    body = assert_codat_error(http.post(bills, json=huge_line), 400)
    assert {e["itemId"] for e in body["validation"]["errors"]} == {
        "lineItems.0.unitAmount",
        "lineItems.0.quantity",
    }


def test_oversized_body_is_413(http, emulator):
    too_big = emulator.config.limits.max_json_body_bytes + 1
    response = http.post("/companies", content=b'{"name": "' + b"x" * too_big + b'"}')
    assert_codat_error(response, 413)


def test_unexpected_exception_is_a_codat_500_and_the_server_carries_on():
    class BrokenStore(Store):
        def company_info(self, company_id: str, connection_id: str):
            raise RuntimeError("disk on fire")

    with running_emulator(store=BrokenStore()) as emu, emu.http() as client:
        linked = make_linked_company(emu)
        response = client.get(
            f"/companies/{linked.company_id}/connections/{linked.connection_id}/payables/info"
        )
        body = assert_codat_error(response, 500)
        assert "disk on fire" not in response.text
        assert body["canBeRetried"] == "Unknown"
        assert client.get(f"/companies/{linked.company_id}").status_code == 200


def test_bad_query_and_continuation_token_are_400(http, emulator):
    linked = make_linked_company(emulator)
    bills = f"/companies/{linked.company_id}/connections/{linked.connection_id}/payables/bills"
    assert_codat_error(http.get(bills, params={"query": "status=="}), 400)
    assert_codat_error(http.get(bills, params={"query": "amountDue>abc"}), 400)
    assert_codat_error(http.get(bills, params={"query": "{status=Open"}), 400)
    assert_codat_error(http.get(bills, params={"continuationToken": "garbage"}), 400)


# --- idempotency ---------------------------------------------------------------------------------


def test_same_key_same_body_replays_and_pays_once(http, emulator):
    linked = make_linked_company(emulator)
    key = str(uuid.uuid4())
    first = http.post(
        payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
    )
    second = http.post(
        payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(emulator.store.list_payments(linked.company_id, linked.connection_id)) == 1
    bill = emulator.store.get_bill(linked.company_id, linked.connection_id, linked.open_bill_id)
    assert bill["amountDue"] == 110.0


def test_a_key_is_forgotten_after_90_minutes_by_the_store_clock():
    now = [datetime(2024, 6, 1, 9, 0, tzinfo=UTC)]
    with running_emulator(store=Store(clock=lambda: now[0])) as emu, emu.http() as client:
        linked = make_linked_company(emu)
        key = str(uuid.uuid4())
        first = client.post(
            payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
        )
        now[0] += timedelta(minutes=89)
        replay = client.post(
            payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
        )
        assert replay.json()["id"] == first.json()["id"]
        now[0] += timedelta(minutes=1)
        fresh = client.post(
            payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
        )
        assert fresh.status_code == 201
        assert fresh.json()["id"] != first.json()["id"]
        assert len(emu.store.list_payments(linked.company_id, linked.connection_id)) == 2


def test_same_key_different_body_is_422(http, emulator):
    linked = make_linked_company(emulator)
    key = str(uuid.uuid4())
    assert (
        http.post(
            payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
        ).status_code
        == 201
    )
    response = http.post(
        payment_path(linked), json=payment_body(linked, 11.0), headers={"Idempotency-Key": key}
    )
    assert_codat_error(response, 422)
    assert len(emulator.store.list_payments(linked.company_id, linked.connection_id)) == 1


def test_same_key_in_flight_is_409(emulator):
    linked = make_linked_company(emulator)
    rule = emulator.faults.add_rule(kind="latency", route=payment_path(linked), latency_ms=600)
    key = str(uuid.uuid4())

    def pay():
        with emulator.http() as client:
            return client.post(
                payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
            )

    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(pay)
            import time

            time.sleep(0.2)
            second = pool.submit(pay)
            statuses = sorted([first.result().status_code, second.result().status_code])
    finally:
        emulator.faults.remove(rule.id)
    assert statuses == [201, 409]
    assert len(emulator.store.list_payments(linked.company_id, linked.connection_id)) == 1


def test_quota_429_is_not_stored_under_the_key():
    with running_emulator(limits={"daily_quota_base": 1000}) as emu, emu.http() as client:
        linked = make_linked_company(emu)
        emu.store.set_quota(linked.company_id, remaining=0)
        key = str(uuid.uuid4())
        refused = client.post(
            payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
        )
        body = assert_codat_error(refused, 429)
        assert body["canBeRetried"] == "True"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-rate-limit-remaining"] == "0"
        emu.store.reset_quota(linked.company_id)
        accepted = client.post(
            payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
        )
        assert accepted.status_code == 201


def test_injected_429_is_not_stored_under_the_key(http, emulator):
    linked = make_linked_company(emulator)
    emulator.faults.add_rule(
        kind="rate_limit", route=payment_path(linked), retry_after_seconds=7, count=1
    )
    key = str(uuid.uuid4())
    refused = http.post(
        payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
    )
    assert_codat_error(refused, 429)
    assert refused.headers["retry-after"] == "7"
    accepted = http.post(
        payment_path(linked), json=payment_body(linked), headers={"Idempotency-Key": key}
    )
    assert accepted.status_code == 201


# --- quota ---------------------------------------------------------------------------------------


def test_daily_quota_counts_down_and_grows_with_linked_companies():
    with running_emulator(limits={"daily_quota_base": 5}) as emu, emu.http() as client:
        company = client.post("/companies", json={"name": "Quota Ltd"}).json()
        path = f"/companies/{company['id']}"
        remaining = [int(client.get(path).headers["x-rate-limit-remaining"]) for _ in range(5)]
        assert remaining == sorted(remaining, reverse=True)
        assert client.get(path).status_code == 429
        # Linking a company raises the limit: 5 x (1 + 1 linked company)
        connection = client.post(f"{path}/connections", json={"platformKey": "gbol"})
        assert connection.status_code == 429
        emu.store.create_connection(company["id"], "gbol", emu.base_url)
        conn_id = emu.store.list_connections(company["id"])[0]["id"]
        emu.store.set_connection_status(company["id"], conn_id, "Linked")
        again = client.get(path)
        assert again.status_code == 200
        assert again.headers["x-rate-limit-limit"] == "10"


def test_concurrency_limit_per_company():
    with running_emulator(limits={"max_concurrent_per_company": 2}) as emu:
        linked = make_linked_company(emu)
        path = f"/companies/{linked.company_id}"
        emu.faults.add_rule(kind="latency", route=path, latency_ms=400)

        def get():
            with emu.http() as client:
                return client.get(path).status_code

        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            statuses = list(pool.map(lambda _: get(), range(5)))
        assert statuses.count(200) >= 2
        assert 429 in statuses


# --- faults --------------------------------------------------------------------------------------


def test_fault_control_api(http, emulator):
    base = "/_emulator/faults"
    created = http.post(
        base, json={"kind": "error", "route": "/companies/nobody", "status": 503, "count": 2}
    )
    assert created.status_code == 201
    rule_id = created.json()["id"]
    assert rule_id in [r["id"] for r in http.get(base).json()["rules"]]
    assert_codat_error(http.get("/companies/nobody"), 503)
    assert_codat_error(http.get("/companies/nobody"), 503)
    assert_codat_error(http.get("/companies/nobody"), 404)  # the rule is spent
    assert rule_id not in [r["id"] for r in http.get(base).json()["rules"]]

    assert http.post(base, json={"kind": "explode"}).status_code == 400
    assert http.post(base, content=b"{").status_code == 400
    kept = http.post(base, json={"kind": "latency", "route": "/x", "latency_ms": 5}).json()
    assert http.delete(f"{base}/{kept['id']}").status_code == 204
    assert http.delete(f"{base}/{kept['id']}").status_code == 404


def test_error_rate_is_deterministic_for_a_seed(http, emulator):
    company = http.post("/companies", json={"name": "Flaky"}).json()
    path = f"/companies/{company['id']}"

    def run():
        rule = emulator.faults.add_rule(kind="error", route=path, rate=0.5, seed=42)
        try:
            return [http.get(path).status_code for _ in range(16)]
        finally:
            emulator.faults.remove(rule.id)

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 500}


# --- events for write webhooks -------------------------------------------------------------------


def test_refused_and_accepted_writes_publish_store_events(http, emulator):
    linked = make_linked_company(emulator)
    events = []

    def mine(event):
        if event.company_id == linked.company_id:
            events.append(event)

    emulator.store.subscribe(mine)
    try:
        refused = http.post(payment_path(linked), json=payment_body(linked, 500.0))
        assert_codat_error(refused, 400)
        accepted = http.post(payment_path(linked), json=payment_body(linked))
        assert accepted.status_code == 201
    finally:
        emulator.store.unsubscribe(mine)
    failed = events[0]
    assert failed.kind == "write.failed"
    assert failed.data["data_type"] == "billPayments"
    assert failed.data["write_type"] == "Create"
    assert failed.data["record_id"] == linked.open_bill_id
    assert failed.data["errors"][0]["itemId"] == "amount"
    assert [e.kind for e in events[1:]] == ["payment.created", "bill.updated"]
    assert events[1].data["payment"]["id"] == accepted.json()["id"]
