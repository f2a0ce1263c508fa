"""Write webhooks end to end, through the real SDK and a verifying receiver: a bill attachment upload
is ``bills.write.successful`` (type UploadAttachment), a supplier created or replaced is
``suppliers.write.successful``, a write the accounting platform refuses is
``{dataType}.write.unsuccessful`` beside its 400 (or later, through the write-results control
route), and a request refused before it reaches the platform is only its synchronous error."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from codat_sync_for_payables.models.errors import ErrorMessage

from codat_emulator.testing import running_emulator
from tests.codat_webhook_models import assert_codat_webhook
from tests.emulator.webhook_receiver import Receiver

from .conftest import bill_prototype, make_linked_company

WRITE_EVENTS = [
    "bills.write.successful",
    "bills.write.unsuccessful",
    "suppliers.write.successful",
    "suppliers.write.unsuccessful",
    "billPayments.write.successful",
    "billPayments.write.unsuccessful",
]


@pytest.fixture
def world():
    # Our own emulator and receiver: webhook consumers are client-wide.
    with running_emulator() as emu, Receiver() as receiver, emu.http() as http:
        consumer = http.post("/webhooks", json={"url": receiver.url, "eventTypes": WRITE_EVENTS})
        receiver.secret = next(
            c.secret for c in emu.store.webhook_consumers() if c.id == consumer.json()["id"]
        )
        yield emu, receiver, http, make_linked_company(emu)


def delivered(http, receiver):
    assert http.post("/_emulator/webhooks/wait", json={"timeoutSeconds": 10}).json()["idle"]
    assert receiver.rejected == []
    return [assert_codat_webhook(e) for e in receiver.accepted()]


def upload(sdk, linked, file_name, content):
    return sdk.bills.upload_attachment(
        request={
            **linked.ids,
            "bill_id": linked.open_bill_id,
            "attachment_upload": {"file": {"file_name": file_name, "content": content}},
        }
    )


def test_an_attachment_upload_is_bills_write_successful_upload_attachment(world):
    emu, receiver, http, linked = world
    attachment = upload(emu.sdk(), linked, "invoice.pdf", b"%PDF-1.4 invoice")
    (webhook,) = delivered(http, receiver)
    assert webhook.event_type == "bills.write.successful"
    payload = webhook.payload
    assert (payload.type.value, payload.status.value) == ("UploadAttachment", "Success")
    assert payload.record.id == linked.open_bill_id
    assert payload.attachment_id == attachment.id
    assert payload.connection_id == linked.connection_id
    assert payload.reference_company.id == linked.company_id


def test_an_upload_the_platform_refuses_is_bills_write_unsuccessful(world):
    emu, receiver, http, linked = world
    with pytest.raises(ErrorMessage) as refused:
        upload(emu.sdk(), linked, "setup.exe", b"MZ")
    assert refused.value.status_code == 400
    assert refused.value.data.validation.errors[0].item_id == "file"
    (webhook,) = delivered(http, receiver)
    assert webhook.event_type == "bills.write.unsuccessful"
    assert (webhook.payload.type.value, webhook.payload.status.value) == (
        "UploadAttachment",
        "Failed",
    )
    assert webhook.payload.record.id == linked.open_bill_id
    assert "attachmentId" not in receiver.accepted()[0]["payload"]
    assert (
        emu.store.list_attachments(linked.company_id, linked.connection_id, linked.open_bill_id)
        == []
    )


def test_a_refused_payment_is_bill_payments_write_unsuccessful(world):
    emu, receiver, http, linked = world
    with pytest.raises(ErrorMessage) as refused:
        emu.sdk().bill_payments.create(
            request={
                **linked.ids,
                "bill_id": linked.paid_bill_id,
                "idempotency_key": str(uuid.uuid4()),
                "bill_payment_prototype": {
                    "amount": Decimal("10.00"),
                    "date": "2024-03-15T00:00:00",
                    "account_ref": {"id": linked.bank_account_id},
                },
            }
        )
    assert refused.value.status_code == 400
    (webhook,) = delivered(http, receiver)
    assert webhook.event_type == "billPayments.write.unsuccessful"
    assert (webhook.payload.type.value, webhook.payload.status.value) == ("Create", "Failed")
    assert webhook.payload.record is None  # a refused create made no record


def test_a_refused_update_names_the_record_it_was_for(world):
    emu, receiver, http, linked = world
    with pytest.raises(ErrorMessage):
        emu.sdk().bills.update(
            request={
                **linked.ids,
                "bill_id": linked.paid_bill_id,  # only Open bills can be updated
                "idempotency_key": str(uuid.uuid4()),
                "bill_prototype": bill_prototype(linked.supplier_id),
            }
        )
    archived = bill_prototype(linked.archived_supplier_id)
    with pytest.raises(ErrorMessage):
        emu.sdk().bills.create(
            request={**linked.ids, "idempotency_key": str(uuid.uuid4()), "bill_prototype": archived}
        )
    update, create = delivered(http, receiver)
    assert (update.event_type, update.payload.type.value) == ("bills.write.unsuccessful", "Update")
    assert update.payload.record.id == linked.paid_bill_id
    assert (create.event_type, create.payload.type.value) == ("bills.write.unsuccessful", "Create")
    assert create.payload.record is None


def test_requests_refused_before_the_platform_send_no_webhook(world):
    emu, receiver, http, linked = world
    base = f"/companies/{linked.company_id}/connections/{linked.connection_id}/payables"
    # a body that is not a bill, a bill that does not exist, an upload with no file
    assert http.post(f"{base}/bills", json={"currency": 5}).status_code == 400
    assert http.put(f"{base}/bills/{uuid.uuid4()}", json={}).status_code == 404
    assert (
        http.post(f"{base}/bills/{linked.open_bill_id}/attachments", content=b"x").status_code
        == 400
    )
    # a connection that is no longer Linked
    emu.store.set_connection_status(linked.company_id, linked.connection_id, "Deauthorized")
    payment = {"amount": 1.0, "date": "2024-03-15", "accountRef": {"id": linked.bank_account_id}}
    refused = http.post(f"{base}/bills/{linked.open_bill_id}/payment", json=payment)
    assert refused.status_code == 400
    assert delivered(http, receiver) == []
    events = http.get("/_emulator/webhooks/events").json()["events"]
    assert not [e for e in events if ".write." in e["eventType"]]


def test_write_results_route_reports_a_timed_out_upload(world):
    _emu, receiver, http, linked = world
    path = f"/_emulator/companies/{linked.company_id}/connections/{linked.connection_id}"
    late = http.post(
        f"{path}/write-results",
        json={
            "dataType": "bills",
            "type": "UploadAttachment",
            "successful": False,
            "status": "TimedOut",
            "recordId": linked.open_bill_id,
        },
    )
    assert late.status_code == 201, late.text
    (webhook,) = delivered(http, receiver)
    assert (webhook.event_type, webhook.payload.status.value) == (
        "bills.write.unsuccessful",
        "TimedOut",
    )
    for bad in (
        {"successful": True, "status": "TimedOut"},
        {"type": "Create", "attachmentId": "a1"},
        {"status": "Pending"},
    ):
        assert http.post(f"{path}/write-results", json=bad).status_code == 400


def test_supplier_writes_are_suppliers_write_webhooks(world):
    _emu, receiver, http, linked = world
    base = f"/companies/{linked.company_id}/connections/{linked.connection_id}/payables/suppliers"
    created = http.post(base, json={"supplierName": "New Ltd", "status": "Active"})
    assert created.status_code == 201, created.text
    supplier_id = created.json()["id"]
    replaced = http.put(
        f"{base}/{supplier_id}", json={"supplierName": "New & Co Ltd", "status": "Active"}
    )
    assert replaced.status_code == 200, replaced.text
    # the platform refuses a later write to it (reported after Codat answered)
    control = f"/_emulator/companies/{linked.company_id}/connections/{linked.connection_id}"
    late = {"dataType": "suppliers", "type": "Update", "successful": False, "status": "Failed",
            "recordId": supplier_id}  # fmt: skip
    assert http.post(f"{control}/write-results", json=late).status_code == 201
    create, update, refused = delivered(http, receiver)
    assert [(w.event_type, w.payload.type.value, w.payload.status.value) for w in
            (create, update, refused)] == [
        ("suppliers.write.successful", "Create", "Success"),
        ("suppliers.write.successful", "Update", "Success"),
        ("suppliers.write.unsuccessful", "Update", "Failed"),
    ]  # fmt: skip
    assert {w.payload.record.id for w in (create, update, refused)} == {supplier_id}
    assert {w.payload.connection_id for w in (create, update, refused)} == {linked.connection_id}
