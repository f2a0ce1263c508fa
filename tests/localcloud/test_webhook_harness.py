"""The emulator's signed webhooks reach the deployed ingress through the local webhook API."""

from __future__ import annotations

import httpx

from codat_emulator.webhooks import dispatcher_for


def _stored(cloud, webhook_id):
    table = cloud.output("WebhookEventsTableName")
    return (
        cloud.client("dynamodb")
        .get_item(TableName=table, Key={"webhookId": {"S": webhook_id}}, ConsistentRead=True)
        .get("Item")
    )


def test_a_webhook_from_the_emulator_is_verified_and_stored(product_with_codat):
    # Given the product wired to the emulator (consumer registered, signing secret stored)
    cloud, emulator = product_with_codat.cloud, product_with_codat.emulator
    assert product_with_codat.webhook_url.endswith("/webhooks/codat")
    # When the emulator's books change (a company and a connection are created)
    with emulator.http() as codat:
        company = codat.post("/companies", json={"name": "Harness Ltd"}).json()
        codat.post(f"/companies/{company['id']}/connections", json={"platformKey": "gbol"})
    assert dispatcher_for(emulator.store).wait_until_idle(30)
    # Then the connection.created webhook was delivered with a 2xx and stored under its id
    deliveries = [
        d for d in dispatcher_for(emulator.store).deliveries() if d["companyId"] == company["id"]
    ]
    assert [d["eventType"] for d in deliveries] == ["connection.created"]
    assert deliveries[0]["state"] == "delivered", deliveries
    assert deliveries[0]["attempts"][-1]["statusCode"] == 200
    item = _stored(cloud, deliveries[0]["webhookId"])
    assert item is not None
    assert item["eventType"]["S"] == "connection.created"
    assert item["codatCompanyId"]["S"] == company["id"]


def test_the_product_api_stays_the_default_and_the_webhook_api_has_its_own_port(
    product_with_codat,
):
    cloud = product_with_codat.cloud
    assert not product_with_codat.webhook_url.startswith(cloud.api_url)
    # The product API answers its routes; the webhook API knows only POST /webhooks/codat.
    unknown = httpx.get(f"{cloud.api_url}/companies/nobody", timeout=30)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NotFound"  # the API function answered
    unsigned = httpx.post(product_with_codat.webhook_url, json={}, timeout=30)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "Unauthorized"


def test_the_emulator_is_set_up_as_codat_setup_sets_codat_up(product_with_codat):
    from ops.codat_setup import SYNC_DATA_TYPES, WEBHOOK_EVENT_TYPES

    with product_with_codat.emulator.http() as codat:
        (consumer,) = codat.get("/webhooks").json()["results"]
        settings = codat.get("/profile/syncSettings").json()["settings"]
    assert consumer["url"] == product_with_codat.webhook_url
    assert consumer["eventTypes"] == list(WEBHOOK_EVENT_TYPES)
    fetched = {s["dataType"] for s in settings if s["fetchOnFirstLink"]}
    assert set(SYNC_DATA_TYPES) <= fetched
