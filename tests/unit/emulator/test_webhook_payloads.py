"""Every webhook the emulator sends validates against codat-platform 6.0.0's webhook models, and
round-trips through them unchanged (so no field is unknown to them or mistyped)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from codat_emulator.seed import DatasetSpec, generate_dataset
from codat_emulator.store import Bill, BillLine, Store, ValidationItem
from codat_emulator.webhooks import WebhookDispatcher, event_type_aliases
from tests.codat_webhook_models import assert_codat_webhook

BASE = "http://127.0.0.1:4010"


@pytest.fixture
def world():
    store = Store()
    dispatcher = WebhookDispatcher(store, BASE)  # never started: nothing is posted
    dispatcher.subscribe()
    company = store.create_company("Toft Stores", BASE, description="d", tags={"region": "uk"})
    connection = store.create_connection(company["id"], "gbol", BASE)
    return store, dispatcher, company["id"], connection["id"]


def _types(dispatcher):
    return [e["eventType"] for e in dispatcher.events()]


def test_connection_lifecycle_webhooks(world):
    store, dispatcher, company_id, connection_id = world
    store.set_connection_status(company_id, connection_id, "Linked")
    store.set_connection_status(company_id, connection_id, "Deauthorized")
    store.set_connection_status(company_id, connection_id, "Linked")
    store.fail_connection(company_id, connection_id, "token expired")
    store.delete_connection(company_id, connection_id)
    assert _types(dispatcher) == [
        "connection.created",
        "connection.connected",
        "connection.disconnected",
        "connection.reconnected",
        "connection.failed",
        "connection.deleted",
    ]
    for envelope in dispatcher.events():
        parsed = assert_codat_webhook(envelope)
        assert parsed.payload.reference_company.id == company_id
        assert parsed.payload.reference_company.name == "Toft Stores"
        assert parsed.payload.reference_company.tags == {"region": "uk"}
        assert parsed.payload.connection.id == connection_id
    statuses = [e["payload"]["connection"]["status"] for e in dispatcher.events()]
    assert statuses[:4] == ["PendingAuth", "Linked", "Deauthorized", "Linked"]


def test_read_completed_initial_then_later_reads(world):
    store, dispatcher, company_id, connection_id = world
    store.set_connection_status(company_id, connection_id, "Linked")
    dataset = generate_dataset(
        DatasetSpec(seed=1, company_id=company_id, platform_key="gbol", bills=20)
    )
    with dispatcher.translator.outside_api():
        store.load_dataset(company_id, connection_id, dataset)
    first = dispatcher.complete_read(
        company_id, connection_id, ["bills", "suppliers", "taxRates"], loaded={"bills": 20}
    )
    assert first.webhook.event_type == "read.completed.initial"
    assert first.records_modified == {"bills": 20, "suppliers": 0, "taxRates": 0}
    assert_codat_webhook(first.webhook.envelope())

    # a bill paid in the platform shows up in the next read, not as a write webhook
    open_bill = next(b for b in dataset.bills if b.status == "Open")
    with dispatcher.translator.outside_api():
        store.record_external_payment(company_id, connection_id, open_bill.id)
    second = dispatcher.complete_read(company_id, connection_id, ["bills", "billPayments"])
    assert second.webhook.event_type == "read.completed"
    assert second.records_modified == {"bills": 1, "billPayments": 1}
    parsed = assert_codat_webhook(second.webhook.envelope())
    assert [d.records_modified for d in parsed.payload.data_types] == [True, True]
    assert parsed.payload.modified_from_date == first.webhook.generated_date

    third = dispatcher.complete_read(company_id, connection_id, ["bills"])
    assert third.records_modified == {"bills": 0}
    assert not any("write" in t for t in _types(dispatcher))


def test_read_on_a_deauthorized_connection_is_an_auth_error(world):
    store, dispatcher, company_id, connection_id = world
    store.set_connection_status(company_id, connection_id, "Deauthorized")
    result = dispatcher.complete_read(company_id, connection_id, ["bills"])
    envelope = result.webhook.envelope()
    assert envelope["eventType"] == "read.completed"
    assert envelope["payload"]["dataTypes"][0]["status"] == "AuthError"
    assert_codat_webhook(envelope)


def test_writes_through_the_api_send_write_webhooks(world):
    store, dispatcher, company_id, connection_id = world
    store.set_connection_status(company_id, connection_id, "Linked")
    dataset = generate_dataset(
        DatasetSpec(seed=2, company_id=company_id, platform_key="gbol", bills=10)
    )
    store.load_dataset(company_id, connection_id, dataset)
    supplier = next(s for s in dataset.suppliers if s.status == "Active")
    bank = next(b for b in dataset.bank_accounts if b.status == "Active" and b.currency == "GBP")
    bill = store.create_bill(
        company_id,
        connection_id,
        Bill(
            id="",
            supplier_id=supplier.id,
            issue_date="2026-01-01",
            due_date="2026-01-31",
            currency="GBP",
            status="Open",
            total_amount=Decimal(0),
            amount_due=Decimal(0),
            line_items=[BillLine(unit_amount=Decimal("100.00"))],
        ),
    )
    payment = store.create_payment(
        company_id, connection_id, bill["id"], Decimal("40.00"), "2026-01-05", bank.id
    )
    writes = [e for e in dispatcher.events() if ".write." in e["eventType"]]
    assert [(e["eventType"], e["payload"]["type"]) for e in writes] == [
        ("bills.write.successful", "Create"),
        ("billPayments.write.successful", "Create"),
    ]
    assert writes[0]["payload"]["record"] == {"id": bill["id"]}
    assert writes[1]["payload"]["record"] == {"id": payment["id"]}
    for envelope in writes:
        parsed = assert_codat_webhook(envelope)
        assert parsed.payload.connection_id == connection_id
        assert parsed.payload.status == "Success"


def test_unsuccessful_write_and_rate_limit_webhooks_validate():
    from codat_emulator.webhooks import build_rate_limit_webhook, build_write_webhook

    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    failed = build_write_webhook(
        data_type="bills",
        successful=False,
        write_type="Update",
        reference={"id": "c", "name": "n"},
        connection_id="k",
        requested=now,
        completed=now,
        record_id=None,
    )
    parsed = assert_codat_webhook(failed.envelope())
    assert failed.event_type == "bills.write.unsuccessful"
    assert parsed.payload.status == "Failed"
    assert parsed.payload.record is None
    for reached in (True, False):
        webhook = build_rate_limit_webhook(
            reached=reached,
            daily_quota=2000,
            quota_remaining=0 if reached else 2000,
            expiry="2026-03-02T00:00:00.000Z",
            generated=now,
        )
        parsed = assert_codat_webhook(webhook.envelope())
        assert parsed.payload.daily_quota == 2000


def test_quota_events_become_rate_limit_webhooks(world):
    store, dispatcher, company_id, _ = world
    store.set_quota(company_id, remaining=0)
    store.reset_quota(company_id)
    rate = [e for e in dispatcher.events() if e["eventType"].startswith("client.")]
    assert [e["eventType"] for e in rate] == ["client.rateLimit.reached", "client.rateLimit.reset"]
    assert rate[0]["payload"]["quotaRemaining"] == 0
    assert rate[1]["payload"]["quotaRemaining"] == rate[1]["payload"]["dailyQuota"]
    for envelope in rate:
        assert_codat_webhook(envelope)


def test_write_event_aliases_accept_the_singular_spelling():
    assert event_type_aliases("bills.write.successful") == {
        "bills.write.successful",
        "bill.write.successful",
    }
    assert event_type_aliases("read.completed") == {"read.completed"}


def test_uploads_and_refused_writes_become_write_webhooks(world):
    store, dispatcher, company_id, connection_id = world
    store.set_connection_status(company_id, connection_id, "Linked")
    dataset = generate_dataset(
        DatasetSpec(seed=3, company_id=company_id, platform_key="gbol", bills=5)
    )
    store.load_dataset(company_id, connection_id, dataset)
    bill_id = dataset.bills[0].id
    attachment = store.add_attachment(
        company_id, connection_id, bill_id, "invoice.pdf", "application/pdf", b"%PDF"
    )
    for write_type in ("Update", "Create"):
        store.report_failed_write(
            company_id, connection_id, "bills", write_type, bill_id, [ValidationItem("no", "x")]
        )
    store.report_failed_write(
        company_id, connection_id, "billPayments", "Create", bill_id, [ValidationItem("no")]
    )
    writes = [e for e in dispatcher.events() if ".write." in e["eventType"]]
    shapes = [
        (e["eventType"], e["payload"]["type"], e["payload"]["status"], e["payload"]["record"])
        for e in writes
    ]
    assert shapes == [
        ("bills.write.successful", "UploadAttachment", "Success", {"id": bill_id}),
        ("bills.write.unsuccessful", "Update", "Failed", {"id": bill_id}),
        ("bills.write.unsuccessful", "Create", "Failed", None),
        ("billPayments.write.unsuccessful", "Create", "Failed", None),
    ]
    assert writes[0]["payload"]["attachmentId"] == attachment["id"]
    assert all("attachmentId" not in e["payload"] for e in writes[1:])
    for envelope in writes:
        assert assert_codat_webhook(envelope).payload.connection_id == connection_id


def test_a_timed_out_write_validates():
    from codat_emulator.webhooks import build_write_webhook

    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    webhook = build_write_webhook(
        data_type="bills",
        successful=False,
        write_type="UploadAttachment",
        reference={"id": "c", "name": "n"},
        connection_id="k",
        requested=now,
        completed=now,
        record_id="b",
        failed_status="TimedOut",
    )
    assert assert_codat_webhook(webhook.envelope()).payload.status == "TimedOut"


def test_read_errors_are_per_data_type_and_validate(world):
    store, dispatcher, company_id, connection_id = world
    store.set_connection_status(company_id, connection_id, "Linked")
    result = dispatcher.complete_read(
        company_id,
        connection_id,
        ["bills", "suppliers"],
        loaded={"bills": 4, "suppliers": 2},
        errors={"bills": "PermissionsError"},
    )
    assert result.statuses == {"bills": "PermissionsError", "suppliers": "Complete"}
    assert result.records_modified == {"bills": 0, "suppliers": 2}
    parsed = assert_codat_webhook(result.webhook.envelope())
    assert parsed.event_type == "read.completed.initial"
    assert [(d.status, d.records_modified) for d in parsed.payload.data_types] == [
        ("PermissionsError", False),
        ("Complete", True),
    ]
    later = dispatcher.complete_read(company_id, connection_id, ["bills", "suppliers"])
    assert later.records_modified == {"bills": 4, "suppliers": 0}


def test_a_cancel_is_connection_failed_with_a_403(world):
    store, dispatcher, company_id, connection_id = world
    store.fail_connection(
        company_id, connection_id, "User cancelled", "403", "User cancelled linking"
    )
    failed = dispatcher.events()[-1]
    assert failed["eventType"] == "connection.failed"
    parsed = assert_codat_webhook(failed)
    assert parsed.payload.connection.data_connection_errors[0].status_code == "403"
