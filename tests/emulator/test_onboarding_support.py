"""What onboarding, the webhook pipeline and the bills sync are tested against: companies found by
tag after an ambiguous create, faults on create company, Link's cancel, disconnection, data types
failing a read, the books changing on their own, and consumers and sync settings set as code.
Through the real SDKs and a receiver that verifies every delivery."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from codat_sync_for_payables.models.errors import ErrorMessage

from codat_emulator.testing import RunningEmulator, running_emulator
from tests.codat_webhook_models import assert_codat_webhook
from tests.emulator.webhook_receiver import Receiver


@pytest.fixture
def world():
    # Our own emulator and receiver: webhook consumers are client-wide.
    with running_emulator() as emu, Receiver() as receiver, emu.http() as http:
        yield emu, receiver, http


def subscribe(emu: RunningEmulator, receiver: Receiver, event_types, company_tags=None) -> None:
    consumer = emu.platform_sdk().webhooks.create_consumer(
        request={"url": receiver.url, "event_types": event_types, "company_tags": company_tags}
    )
    receiver.secret = next(c.secret for c in emu.store.webhook_consumers() if c.id == consumer.id)


def delivered(http, receiver) -> list:
    assert http.post("/_emulator/webhooks/wait", json={"timeoutSeconds": 10}).json()["idle"]
    assert receiver.rejected == []
    return [assert_codat_webhook(e) for e in receiver.accepted()]


def new_connection(sdk, name="Toft Stores", tags=None):
    company = sdk.companies.create(request={"name": name, "tags": tags})
    connection = sdk.connections.create(
        request={"company_id": company.id, "request_body": {"platform_key": "gbol"}}
    )
    return company, connection


# --- finding a company by the tag it was created with -------------------------------------------


def test_companies_are_found_by_tag_with_codats_tags_filter(emulator, sdk):
    product_id = str(uuid.uuid4())
    mine = sdk.companies.create(
        request={"name": "Tagged Ltd", "tags": {"productCompanyId": product_id, "region": "uk"}}
    )
    sdk.companies.create(request={"name": "Other Ltd", "tags": {"productCompanyId": "other"}})

    def found(tags: str) -> list[str]:
        return [c.id for c in sdk.companies.list(request={"tags": tags}).results]

    assert found(f"productCompanyId = {product_id}") == [mine.id]  # spaces as in Codat's docs
    assert found(f"productCompanyId={product_id} && region=uk") == [mine.id]
    assert found(f"productCompanyId={product_id} && region!=uk") == []
    assert found(f"productCompanyId~{product_id[:8]}") == [mine.id]
    assert found(f"productCompanyId={product_id.upper()}") == []  # tags are case-sensitive
    # the query parameter reaches the tags too
    by_query = sdk.companies.list(request={"query": f"tags.productCompanyId={product_id}"})
    assert [c.id for c in by_query.results] == [mine.id]

    with emulator.http() as http:
        for bad in ("region>uk", "region=", "&&"):
            response = http.get("/companies", params={"tags": bad})
            assert response.status_code == 400, bad
            assert response.json()["validation"]["errors"][0]["itemId"] in ("tags", "query")


def test_tags_are_echoed_in_webhooks_reference_company(world):
    emu, receiver, http = world
    subscribe(emu, receiver, ["connection.created"])
    company, _ = new_connection(emu.sdk(), tags={"productCompanyId": "smb-42"})
    (webhook,) = delivered(http, receiver)
    assert webhook.payload.reference_company.id == company.id
    assert webhook.payload.reference_company.tags == {"productCompanyId": "smb-42"}


def create_or_find(sdk, product_id: str, failures: list) -> str:
    """What an integrator does: create company takes no Idempotency-Key, so after any failure
    that may have created the company, look it up by its tag before creating it again."""
    tags = {"productCompanyId": product_id}
    for _ in range(3):
        try:
            return sdk.companies.create(request={"name": "Exactly Once Ltd", "tags": tags}).id
        except ErrorMessage as error:
            failures.append((error.status_code, error.raw_response.headers.get("retry-after")))
        except httpx.TimeoutException:
            failures.append(("timeout", None))
        found = sdk.companies.list(request={"tags": f"productCompanyId={product_id}"})
        if found.results:
            return found.results[0].id
    raise AssertionError("no company after three tries")


@pytest.mark.parametrize(
    ("rule", "failure"),
    [
        ({"kind": "error"}, (500, None)),
        ({"kind": "rate_limit", "retry_after_seconds": 2}, (429, "2")),
        ({"kind": "applied_then_error"}, (500, None)),
        ({"kind": "applied_then_timeout", "hang_seconds": 1.0}, ("timeout", None)),
    ],
)
def test_faults_on_create_company_end_with_exactly_one_company(rule, failure):
    with running_emulator() as emu:
        emu.faults.add_rule(route="/companies", method="POST", count=1, **rule)
        failures: list = []
        company_id = create_or_find(emu.sdk(timeout=0.5), str(uuid.uuid4()), failures)
        assert failures == [failure]
        assert [c["id"] for c in emu.store.list_companies()] == [company_id]


# --- Link cancel, disconnection, unlink ----------------------------------------------------------


def test_cancel_in_link_is_connection_failed_and_stays_pending(world):
    emu, receiver, http = world
    subscribe(emu, receiver, ["connection.failed", "connection.connected"])
    company, connection = new_connection(emu.sdk())
    cancelled = http.post(
        f"/_emulator/link/{company.id}/connections/{connection.id}", json={"action": "cancel"}
    )
    assert cancelled.json()["statusCode"] == 403
    (failed,) = delivered(http, receiver)
    assert failed.event_type == "connection.failed"
    assert failed.payload.connection.status.value == "PendingAuth"
    (error,) = failed.payload.connection.data_connection_errors
    assert (error.status_code, error.status_text, error.error_message) == (
        "403",
        "User cancelled linking",
        "User cancelled",
    )
    # the same linkUrl still works afterwards
    http.post(
        f"/_emulator/link/{company.id}/connections/{connection.id}",
        json={"action": "authorize", "size": 5},
    )
    assert [w.event_type for w in delivered(http, receiver)] == [
        "connection.failed",
        "connection.connected",
    ]


def test_deauthorize_and_unlink_are_connection_disconnected(world):
    emu, receiver, http = world
    subscribe(emu, receiver, ["connection.disconnected", "connection.reconnected"])
    sdk = emu.sdk()
    company, connection = new_connection(sdk)
    link = f"/_emulator/link/{company.id}/connections/{connection.id}"
    http.post(link, json={"action": "authorize", "size": 5})

    control = f"/_emulator/companies/{company.id}/connections/{connection.id}"
    assert http.post(f"{control}/deauthorize").json()["status"] == "Deauthorized"
    http.post(link, json={"action": "authorize"})  # the SMB relinks
    unlinked = sdk.connections.unlink(
        request={
            "company_id": company.id,
            "connection_id": connection.id,
            "request_body": {"status": "Unlinked"},
        }
    )
    assert unlinked.status.value == "Unlinked"
    deauthorized, reconnected, unlinked_event = delivered(http, receiver)
    assert deauthorized.event_type == "connection.disconnected"
    assert deauthorized.payload.connection.status.value == "Deauthorized"
    error = deauthorized.payload.connection.data_connection_errors[-1]
    assert error.status_code == "401"
    assert reconnected.event_type == "connection.reconnected"
    assert unlinked_event.event_type == "connection.disconnected"
    assert unlinked_event.payload.connection.status.value == "Unlinked"


# --- data types failing a read -------------------------------------------------------------------


def test_a_data_type_can_fail_the_initial_read_and_a_later_read_recovers(world):
    emu, receiver, http = world
    subscribe(emu, receiver, ["read.completed.initial", "read.completed"])
    company, connection = new_connection(emu.sdk())
    chosen = http.put(
        f"/_emulator/companies/{company.id}/read-errors",
        json={"readErrors": {"bills": "AuthError", "suppliers": "FetchError"}},
    )
    assert chosen.json() == {"readErrors": {"bills": "AuthError", "suppliers": "FetchError"}}
    http.post(
        f"/_emulator/link/{company.id}/connections/{connection.id}",
        json={"action": "authorize", "size": 10},
    )
    control = f"/_emulator/companies/{company.id}/connections/{connection.id}"
    still = http.post(f"{control}/read", json={"dataTypes": ["bills", "bankAccounts"]}).json()
    assert still["statuses"] == {"bills": "AuthError", "bankAccounts": "Complete"}
    assert still["status"] == "AuthError"
    http.put(f"/_emulator/companies/{company.id}/read-errors", json={"readErrors": {}})
    recovered = http.post(f"{control}/read", json={"dataTypes": ["bills"]}).json()
    once = http.post(f"{control}/read", json={"readErrors": {"bills": "RateLimitError"}}).json()

    initial, failed_again, ok, rate_limited = delivered(http, receiver)
    assert initial.event_type == "read.completed.initial"
    by_type = {d.data_type.value: d for d in initial.payload.data_types}
    assert by_type["bills"].status.value == "AuthError"
    assert by_type["bills"].records_modified is False
    assert by_type["suppliers"].status.value == "FetchError"
    assert by_type["bankAccounts"].status.value == "Complete"
    assert by_type["bankAccounts"].records_modified is True
    assert failed_again.event_type == "read.completed"
    # the first read of bills that works reports the bills the failed ones never fetched
    assert recovered["recordsModified"] == {"bills": 10}
    assert ok.payload.data_types[0].status.value == "Complete"
    assert ok.payload.data_types[0].records_modified is True
    assert once["statuses"]["bills"] == "RateLimitError"
    assert {d.data_type.value: d.status.value for d in rate_limited.payload.data_types}[
        "bills"
    ] == "RateLimitError"


def test_link_action_read_errors_and_bad_values(world):
    emu, receiver, http = world
    subscribe(emu, receiver, ["read.completed.initial"])
    company, connection = new_connection(emu.sdk())
    link = f"/_emulator/link/{company.id}/connections/{connection.id}"
    for bad in ({"bills": "Broken"}, {"invoices": "AuthError"}):
        response = http.post(link, json={"action": "authorize", "readErrors": bad})
        assert response.status_code == 400, response.text
    assert emu.store.get_connection(company.id, connection.id)["status"] == "PendingAuth"
    http.post(link, json={"action": "authorize", "size": 3, "readErrors": {"bills": "FetchError"}})
    (initial,) = delivered(http, receiver)
    statuses = {d.data_type.value: d.status.value for d in initial.payload.data_types}
    assert statuses["bills"] == "FetchError"
    assert set(statuses.values()) == {"FetchError", "Complete"}


# --- the books changing on their own -------------------------------------------------------------


def test_changes_in_the_books_move_source_modified_date_forward_and_show_in_the_next_read(world):
    emu, receiver, http = world
    subscribe(emu, receiver, ["read.completed", "bills.write.successful"])
    sdk = emu.sdk()
    company, connection = new_connection(sdk)
    ids = {"company_id": company.id, "connection_id": connection.id}
    http.post(
        f"/_emulator/link/{company.id}/connections/{connection.id}",
        json={"action": "authorize", "size": 20},
    )
    everything = "status!=Unknown"
    before = sdk.bills.list(request={**ids, "query": everything}).results
    high_water = max(b.source_modified_date for b in before)
    bill = next(b for b in before if b.status.value == "Open")
    control = f"/_emulator/companies/{company.id}/connections/{connection.id}"

    # the amount changes, a new supplier appears with a bill, another bill is voided
    changed = http.patch(
        f"{control}/bills/{bill.id}",
        json={"amount": 321.45, "dueDate": "2031-01-31", "reference": "INV-EDITED"},
    )
    assert changed.status_code == 200, changed.text
    supplier = http.post(f"{control}/suppliers", json={"name": "Brand New Ltd"}).json()
    (new_supplier,) = supplier["suppliers"]
    added = http.post(f"{control}/bills", json={"count": 1, "supplierId": new_supplier["id"]})
    (new_bill,) = added.json()["bills"]
    voided = next(b for b in before if b.status.value == "Open" and b.id != bill.id)
    http.post(f"{control}/bills/{voided.id}/void")

    # an incremental sync by sourceModifiedDate sees exactly those bills, in every status
    since = sdk.bills.list(
        request={**ids, "query": f"sourceModifiedDate>{high_water}&&{everything}"}
    ).results
    assert {b.id for b in since} == {bill.id, new_bill["id"], voided.id}
    edited = next(b for b in since if b.id == bill.id)
    assert (edited.total_amount, edited.amount_due) == (Decimal("321.45"), Decimal("321.45"))
    assert (edited.due_date[:10], edited.reference) == ("2031-01-31", "INV-EDITED")
    assert new_bill["supplierRef"]["id"] == new_supplier["id"]
    stamps = sorted(b.source_modified_date for b in since)
    assert len(set(stamps)) == 3  # each change a later date than the last

    read = http.post(f"{control}/read", json={"dataTypes": ["bills", "suppliers"]}).json()
    assert read["recordsModified"] == {"bills": 3, "suppliers": 1}
    # the platform's own changes are no write: only the read reports them
    assert [w.event_type for w in delivered(http, receiver)] == ["read.completed"]


def test_bill_changes_the_platform_would_not_make_are_refused(world):
    emu, _, http = world
    company, connection = new_connection(emu.sdk())
    http.post(
        f"/_emulator/link/{company.id}/connections/{connection.id}",
        json={"action": "authorize", "size": 20},
    )
    control = f"/_emulator/companies/{company.id}/connections/{connection.id}"
    bills = emu.store.list_bills(company.id, connection.id, 0, 100, None).items
    paid = next(b for b in bills if b["status"] == "Paid")
    partly = next(b for b in bills if b["status"] == "PartiallyPaid")
    already_paid = Decimal(str(partly["totalAmount"])) - Decimal(str(partly["amountDue"]))
    for bill_id, body in [
        (paid["id"], {"amount": 10}),
        (partly["id"], {"amount": float(already_paid)}),
        (partly["id"], {}),
        (partly["id"], {"supplierId": "nobody"}),
        (partly["id"], {"dueDate": "tomorrow"}),
    ]:
        response = http.patch(f"{control}/bills/{bill_id}", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
    assert emu.store.get_bill(company.id, connection.id, partly["id"]) == partly
    raised = http.patch(
        f"{control}/bills/{partly['id']}", json={"amount": float(already_paid + 5)}
    ).json()
    assert (raised["status"], raised["amountDue"]) == ("PartiallyPaid", 5.0)


# --- consumers and sync settings as code ---------------------------------------------------------


def test_a_consumer_with_company_tags_gets_only_those_companies_webhooks(world):
    emu, receiver, http = world
    subscribe(
        emu,
        receiver,
        ["connection.created", "client.rateLimit.reached", "client.rateLimit.reset"],
        company_tags=["stage:dev"],
    )
    sdk = emu.sdk()
    dev, _ = new_connection(sdk, "Dev Co", tags={"stage": "dev"})
    new_connection(sdk, "Prod Co", tags={"stage": "prod"})
    new_connection(sdk, "Untagged Co")
    http.post("/_emulator/quota", json={"action": "exhaust"})  # no company: not for this consumer
    http.post("/_emulator/quota", json={"action": "reset"})
    webhooks = delivered(http, receiver)
    assert [w.event_type for w in webhooks] == ["connection.created"]
    assert webhooks[0].payload.reference_company.id == dev.id


def test_sync_settings_set_as_code_choose_what_the_initial_read_fetches(world):
    emu, receiver, http = world
    subscribe(emu, receiver, ["read.completed.initial"])
    platform = emu.platform_sdk()
    wanted = ["bankAccounts", "bills", "billPayments", "chartOfAccounts", "company", "suppliers"]
    platform.settings.update_sync_settings(
        request={
            "client_id": platform.settings.get_sync_settings().client_id,
            "overrides_defaults": True,
            "settings": [
                {
                    "data_type": data_type,
                    "fetch_on_first_link": data_type in wanted,
                    "sync_schedule": 24,
                    "sync_order": order,
                }
                for order, data_type in enumerate([*wanted, "taxRates"])
            ],
        }
    )
    company, connection = new_connection(emu.sdk())
    http.post(
        f"/_emulator/link/{company.id}/connections/{connection.id}",
        json={"action": "authorize", "size": 5},
    )
    (initial,) = delivered(http, receiver)
    assert [d.data_type.value for d in initial.payload.data_types] == wanted
