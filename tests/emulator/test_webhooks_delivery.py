"""Webhooks end to end: the emulator posts signed Codat webhooks to a receiver on 127.0.0.1 that
was registered through the API, retries on failure, and can duplicate or reorder deliveries."""

from __future__ import annotations

import pytest

from codat_emulator.testing import running_emulator
from tests.codat_webhook_models import assert_codat_webhook
from tests.emulator.webhook_receiver import Receiver


@pytest.fixture
def emu():
    # Our own emulator: webhook consumers are client-wide, so tests must not share one.
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def register(emu, receiver, event_types):
    with emu.http() as http:
        response = http.post("/webhooks", json={"url": receiver.url, "eventTypes": event_types})
    assert response.status_code in (200, 201), response.text
    consumer_id = response.json()["id"]
    # Codat shows the signing secret in its portal, not over the API: the emulator's store has it.
    receiver.secret = next(c.secret for c in emu.store.webhook_consumers() if c.id == consumer_id)
    return consumer_id


def new_connection(http, name="Toft Stores"):
    company = http.post("/companies", json={"name": name}).json()
    connection = http.post(
        f"/companies/{company['id']}/connections", json={"platformKey": "gbol"}
    ).json()
    return company["id"], connection["id"]


def options(http, **changes):
    response = http.patch("/_emulator/webhooks/options", json=changes)
    assert response.status_code == 200, response.text
    return response.json()


def wait_idle(http):
    assert http.post("/_emulator/webhooks/wait", json={"timeoutSeconds": 10}).json()["idle"]


def test_link_journey_delivers_signed_valid_webhooks(emu, receiver):
    # Given a receiver registered for the events an integration listens to
    register(
        emu,
        receiver,
        ["connection.created", "connection.connected", "read.completed.initial", "read.completed"],
    )
    with emu.http() as http:
        # When a company connects and the SMB authorizes through Link
        company_id, connection_id = new_connection(http)
        response = http.post(
            f"/_emulator/link/{company_id}/connections/{connection_id}",
            json={"action": "authorize", "size": 25},
        )
        assert response.status_code == 200, response.text
        wait_idle(http)
    # Then the receiver verified and accepted the three webhooks, in order
    assert receiver.rejected == []
    assert receiver.event_types() == [
        "connection.created",
        "connection.connected",
        "read.completed.initial",
    ]
    created, connected, initial = (assert_codat_webhook(e) for e in receiver.accepted())
    assert created.payload.connection.status == "PendingAuth"
    assert connected.payload.connection.status == "Linked"
    assert connected.payload.reference_company.id == company_id
    assert connected.payload.reference_company.name == "Toft Stores"
    by_type = {d.data_type: d for d in initial.payload.data_types}
    assert by_type["bills"].records_modified is True
    assert by_type["bills"].connection_id == connection_id
    assert {d.status for d in by_type.values()} == {"Complete"}
    # and each delivery carried the Standard Webhooks headers with the envelope's id
    for record in receiver.received:
        assert record["headers"]["webhook-id"] == record["envelope"]["id"]
        assert record["headers"]["webhook-signature"].startswith("v1,")
    # and the bills the read announced are there through the API (default scope: payable ones)
    with emu.http() as http:
        bills = http.get(f"/companies/{company_id}/connections/{connection_id}/payables/bills")
    assert bills.status_code == 200, bills.text
    statuses = {b["status"] for b in bills.json()["results"]}
    assert statuses == {"Open", "PartiallyPaid"}


def test_failed_deliveries_are_retried_on_the_compressed_schedule(emu, receiver):
    register(emu, receiver, ["connection.created"])
    receiver.statuses = [500, 503]
    with emu.http() as http:
        options(http, time_scale=0.001)
        new_connection(http)
        wait_idle(http)
        log = http.get("/_emulator/webhooks/deliveries").json()
    (delivery,) = log["deliveries"]
    assert delivery["state"] == "delivered"
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 503, 200]
    ids = {r["headers"]["webhook-id"] for r in receiver.received}
    assert ids == {delivery["webhookId"]}
    assert receiver.event_types() == ["connection.created"]


def test_duplicate_option_delivers_the_same_message_twice(emu, receiver):
    register(emu, receiver, ["connection.created"])
    with emu.http() as http:
        options(http, duplicate=True)
        new_connection(http)
        wait_idle(http)
    ids = [r["headers"]["webhook-id"] for r in receiver.received]
    assert len(ids) == 2
    assert len(set(ids)) == 1


def test_out_of_order_option_swaps_deliveries(emu, receiver):
    register(emu, receiver, ["connection.created"])
    with emu.http() as http:
        options(http, out_of_order=True, out_of_order_hold_seconds=5)
        new_connection(http, "First")
        new_connection(http, "Second")
        wait_idle(http)
    names = [e["payload"]["referenceCompany"]["name"] for e in receiver.accepted()]
    assert names == ["Second", "First"]


def test_late_option_delays_delivery(emu, receiver):
    register(emu, receiver, ["connection.created"])
    import time

    with emu.http() as http:
        options(http, delay_seconds=0.5)
        started = time.monotonic()
        new_connection(http)
        assert receiver.received == []
        wait_idle(http)
    assert receiver.received[0]["at"] - started >= 0.5


def test_writes_and_quota_webhooks_reach_a_consumer_using_the_singular_name(emu, receiver):
    register(
        emu,
        receiver,
        ["bill.write.successful", "bills.write.unsuccessful", "client.rateLimit.reached"],
    )
    with emu.http() as http:
        company_id, connection_id = new_connection(http)
        http.post(
            f"/_emulator/link/{company_id}/connections/{connection_id}",
            json={"action": "authorize", "size": 10},
        )
        base = f"/companies/{company_id}/connections/{connection_id}"
        suppliers = http.get(f"{base}/payables/suppliers").json()["results"]
        supplier = next(s for s in suppliers if s["status"] == "Active")
        created = http.post(
            f"{base}/payables/bills",
            json={
                "supplierRef": {"id": supplier["id"]},
                "issueDate": "2026-01-01",
                "dueDate": "2026-01-31",
                "currency": supplier["defaultCurrency"],
                "status": "Open",
                "lineItems": [{"unitAmount": 10, "quantity": 1, "taxAmount": 0}],
            },
        )
        assert created.status_code in (200, 201), created.text
        failed = http.post(
            f"/_emulator/companies/{company_id}/connections/{connection_id}/write-results",
            json={"dataType": "bills", "type": "Update", "successful": False},
        )
        assert failed.status_code == 201
        http.post("/_emulator/quota", json={"action": "exhaust", "companyId": company_id})
        wait_idle(http)
        http.post("/_emulator/quota", json={"action": "reset", "companyId": company_id})
    assert receiver.event_types() == [
        "bills.write.successful",
        "bills.write.unsuccessful",
        "client.rateLimit.reached",
    ]
    write, failure, quota = (assert_codat_webhook(e) for e in receiver.accepted())
    assert write.payload.record.id == created.json()["id"]
    assert failure.payload.status == "Failed"
    assert quota.payload.quota_remaining == 0


def test_shutdown_reports_pending_deliveries_without_hanging(receiver):
    import time

    from codat_emulator.webhooks import dispatcher_for

    with running_emulator() as emu:
        register(emu, receiver, ["connection.created"])
        receiver.statuses = [500]
        with emu.http() as http:
            options(http, time_scale=1.0)  # the retry is due in 5 s: still pending at shutdown
            new_connection(http)
            assert receiver.wait_for(lambda r: r.received, 5)
        dispatcher = dispatcher_for(emu.store)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert not dispatcher.running
    (delivery,) = dispatcher.deliveries()
    assert delivery["state"] == "abandoned"
