"""Suppliers, bills, attachments, mapping options, bank accounts and payments through the real SDK,
with the business rules a payment integration relies on."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from codat_sync_for_payables.models.errors import ErrorMessage

from .conftest import bill_prototype, make_linked_company


def _pay(sdk, linked, bill_id, amount, account_id=None, key=None):
    return sdk.bill_payments.create(
        request={
            **linked.ids,
            "bill_id": bill_id,
            "idempotency_key": key or str(uuid.uuid4()),
            "bill_payment_prototype": {
                "amount": Decimal(amount),
                "date": "2024-03-15T00:00:00",
                "account_ref": {"id": account_id or linked.bank_account_id},
                "reference": "PAY-1",
            },
        }
    )


def _bill(sdk, linked, bill_id):
    results = sdk.bills.list(
        request={**linked.ids, "query": f"id={bill_id}&&status!=Unknown"}
    ).results
    assert len(results) == 1
    return results[0]


def test_suppliers_create_list_and_full_replace(sdk, linked):
    created = sdk.suppliers.create(
        request={
            **linked.ids,
            "idempotency_key": str(uuid.uuid4()),
            "supplier_prototype": {
                "supplier_name": "Cleaning Co",
                "status": "Active",
                "email_address": "accounts@cleaning.example",
                "phone": "+44 20 0000 0000",
                "default_currency": "GBP",
                "addresses": [{"type": "Billing", "line1": "1 High St", "city": "London"}],
            },
        }
    )
    assert created.id
    assert created.addresses[0].city == "London"

    # Update replaces the whole record: fields left out are cleared
    replaced = sdk.suppliers.update(
        request={
            **linked.ids,
            "supplier_id": created.id,
            "supplier_prototype": {"supplier_name": "Cleaning Co Ltd", "status": "Active"},
        }
    )
    assert replaced.id == created.id
    assert replaced.supplier_name == "Cleaning Co Ltd"
    assert replaced.email_address is None
    assert replaced.addresses == []

    listed = sdk.suppliers.list(request={**linked.ids, "query": "status=Active"})
    names = [s.supplier_name for s in listed.results]
    assert "Cleaning Co Ltd" in names
    assert "Gone Ltd" not in names


def test_suppliers_page_with_continuation_token(emulator, sdk):
    from codat_emulator.store import Supplier

    linked = make_linked_company(emulator)
    emulator.store.load_dataset(
        linked.company_id,
        linked.connection_id,
        __import__("codat_emulator.store", fromlist=["DataSet"]).DataSet(
            suppliers=[
                Supplier(id=f"sup-{n:03d}", supplier_name=f"Bulk {n:03d}") for n in range(150)
            ]
        ),
    )
    first = sdk.suppliers.list(request={**linked.ids, "query": "supplierName~Bulk"})
    assert len(first.results) == 100
    assert first.pagination.continuation_token
    second = sdk.suppliers.list(
        request={
            **linked.ids,
            "query": "supplierName~Bulk",
            "continuation_token": first.pagination.continuation_token,
        }
    )
    assert len(second.results) == 50
    assert second.pagination.continuation_token is None
    seen = [s.id for s in first.results + second.results]
    assert sorted(seen) == [f"sup-{n:03d}" for n in range(150)]


def test_bills_default_scope_is_open_and_partially_paid(sdk, linked):
    listed = sdk.bills.list(request=linked.ids)
    assert {b.id for b in listed.results} == {linked.open_bill_id}
    everything = sdk.bills.list(request={**linked.ids, "query": "status!=Unknown"})
    assert {b.status.value for b in everything.results} == {"Open", "Paid", "Void", "Draft"}
    paid_or_void = sdk.bills.list(
        request={**linked.ids, "query": "{status=Paid||status=Void}&&totalAmount>=60"}
    )
    assert [b.id for b in paid_or_void.results] == [linked.void_bill_id]


def test_bills_query_by_source_modified_date(emulator, sdk, linked):
    recent = sdk.bills.list(
        request={**linked.ids, "query": "status=Open&&sourceModifiedDate>2024-01-01"}
    )
    assert [b.id for b in recent.results] == [linked.open_bill_id]
    future = sdk.bills.list(
        request={**linked.ids, "query": "status=Open&&sourceModifiedDate>2999-01-01"}
    )
    assert future.results == []


def test_bill_create_update_and_rules(sdk, linked):
    created = sdk.bills.create(
        request={
            **linked.ids,
            "idempotency_key": str(uuid.uuid4()),
            "bill_prototype": bill_prototype(
                linked.supplier_id,
                "80.00",
                reference="NEW-1",
                line_items=[
                    {
                        "description": "Desk",
                        "unit_amount": Decimal("40.00"),
                        "quantity": Decimal(2),
                        "tax_amount": Decimal("16.00"),
                        "account_ref": {"id": linked.account_id},
                        "tax_rate_ref": {"id": linked.tax_rate_id},
                    }
                ],
            ),
        }
    )
    assert created.status.value == "Open"
    assert created.total_amount == Decimal("96.00")
    assert created.amount_due == Decimal("96.00")
    assert created.supplier_ref.supplier_name == "Office Supplies Ltd"

    updated = sdk.bills.update(
        request={
            **linked.ids,
            "bill_id": created.id,
            "idempotency_key": str(uuid.uuid4()),
            "bill_prototype": bill_prototype(linked.supplier_id, "10.00", reference="NEW-1b"),
        }
    )
    assert (updated.id, updated.reference, updated.amount_due) == (
        created.id,
        "NEW-1b",
        Decimal("10.00"),
    )

    # Only Open bills can be updated
    with pytest.raises(ErrorMessage) as caught:
        sdk.bills.update(
            request={
                **linked.ids,
                "bill_id": linked.paid_bill_id,
                "idempotency_key": str(uuid.uuid4()),
                "bill_prototype": bill_prototype(linked.supplier_id),
            }
        )
    assert caught.value.status_code == 400
    assert caught.value.data.validation.errors[0].item_id == "status"

    # An unknown or archived supplier is refused
    for supplier_id in ("no-such-supplier", linked.archived_supplier_id):
        with pytest.raises(ErrorMessage) as caught:
            sdk.bills.create(
                request={
                    **linked.ids,
                    "idempotency_key": str(uuid.uuid4()),
                    "bill_prototype": bill_prototype(supplier_id),
                }
            )
        assert caught.value.status_code == 400
        assert caught.value.data.validation.errors[0].item_id == "supplierRef.id"


def test_attachments_upload_list_download(sdk, linked):
    content = b"%PDF-1.4 " + uuid.uuid4().bytes
    uploaded = sdk.bills.upload_attachment(
        request={
            **linked.ids,
            "bill_id": linked.open_bill_id,
            "attachment_upload": {
                "file": {
                    "file_name": "invoice.pdf",
                    "content": content,
                    "content_type": "application/pdf",
                }
            },
        }
    )
    assert uploaded.name == "invoice.pdf"
    assert uploaded.file_size == len(content)
    listed = sdk.bills.list_attachments(request={**linked.ids, "bill_id": linked.open_bill_id})
    assert [a.id for a in listed] == [uploaded.id]
    downloaded = sdk.bills.download_attachment(
        request={**linked.ids, "bill_id": linked.open_bill_id, "attachment_id": uploaded.id}
    )
    assert downloaded.read() == content


def test_mapping_options(sdk, linked):
    bill_options = sdk.bills.get_bill_options(request=linked.ids)
    assert [a.id for a in bill_options.accounts] == [linked.account_id]
    assert bill_options.tax_rates[0].effective_tax_rate == Decimal(20)
    payment_options = sdk.bill_payments.get_payment_options(request=linked.ids)
    assert {b.id for b in payment_options.bank_accounts} == {
        linked.bank_account_id,
        linked.archived_bank_account_id,
        linked.usd_bank_account_id,
    }
    active = sdk.bill_payments.get_payment_options(
        request={**linked.ids, "status_query": "status=Active"}
    )
    assert linked.archived_bank_account_id not in {b.id for b in active.bank_accounts}


def test_create_bank_account(sdk, linked):
    created = sdk.bank_accounts.create(
        request={
            **linked.ids,
            "idempotency_key": str(uuid.uuid4()),
            "bank_account_prototype": {
                "name": "Payments",
                "account_type": "Debit",
                "account_number": "11112222",
                "sort_code": "40-00-00",
                "currency": "GBP",
            },
        }
    )
    assert created.status.value == "Active"
    options = sdk.bill_payments.get_payment_options(request=linked.ids)
    assert created.id in {b.id for b in options.bank_accounts}


def test_partial_then_full_payment(sdk, linked):
    first = _pay(sdk, linked, linked.open_bill_id, "20.10")
    assert first.amount == Decimal("20.1")
    assert first.account_ref.id == linked.bank_account_id
    bill = _bill(sdk, linked, linked.open_bill_id)
    assert (bill.status.value, bill.amount_due) == ("PartiallyPaid", Decimal("99.90"))

    _pay(sdk, linked, linked.open_bill_id, "99.90")
    bill = _bill(sdk, linked, linked.open_bill_id)
    assert (bill.status.value, bill.amount_due) == ("Paid", Decimal("0"))
    # A Paid bill leaves the default listing
    assert linked.open_bill_id not in {b.id for b in sdk.bills.list(request=linked.ids).results}


@pytest.mark.parametrize(
    ("bill_attr", "amount", "account_attr", "item_id"),
    [
        ("open_bill_id", "120.01", "bank_account_id", "amount"),
        ("open_bill_id", "10.00", "archived_bank_account_id", "accountRef.id"),
        ("open_bill_id", "10.00", None, "accountRef.id"),
        ("paid_bill_id", "10.00", "bank_account_id", "billId"),
        ("void_bill_id", "10.00", "bank_account_id", "billId"),
        ("draft_bill_id", "10.00", "bank_account_id", "billId"),
    ],
)
def test_refused_payments_are_400s_and_change_nothing(
    emulator, sdk, bill_attr, amount, account_attr, item_id
):
    linked = make_linked_company(emulator)
    account_id = getattr(linked, account_attr) if account_attr else "no-such-account"
    before = emulator.store.get_bill(
        linked.company_id, linked.connection_id, getattr(linked, bill_attr)
    )
    with pytest.raises(ErrorMessage) as caught:
        _pay(sdk, linked, getattr(linked, bill_attr), amount, account_id)
    assert caught.value.status_code == 400
    assert item_id in [e.item_id for e in caught.value.data.validation.errors]
    after = emulator.store.get_bill(
        linked.company_id, linked.connection_id, getattr(linked, bill_attr)
    )
    assert after == before
    assert emulator.store.list_payments(linked.company_id, linked.connection_id) == []


def test_writes_need_a_linked_connection(emulator, sdk):
    linked = make_linked_company(emulator)
    emulator.store.set_connection_status(linked.company_id, linked.connection_id, "Deauthorized")
    with pytest.raises(ErrorMessage) as caught:
        _pay(sdk, linked, linked.open_bill_id, "10.00")
    assert caught.value.status_code == 400
    # Reads still answer with what Codat holds
    assert [b.id for b in sdk.bills.list(request=linked.ids).results] == [linked.open_bill_id]


def test_unknown_ids_are_404s(sdk, linked):
    with pytest.raises(ErrorMessage) as caught:
        _pay(sdk, linked, "no-such-bill", "1.00")
    assert caught.value.status_code == 404
    with pytest.raises(ErrorMessage) as caught:
        sdk.bills.list(request={**linked.ids, "connection_id": str(uuid.uuid4())})
    assert caught.value.status_code == 404


def test_listing_before_the_first_read_is_409(sdk):
    company = sdk.companies.create(request={"name": "Not linked yet"})
    connection = sdk.connections.create(
        request={"company_id": company.id, "request_body": {"platform_key": "gbol"}}
    )
    ids = {"company_id": company.id, "connection_id": connection.id}
    for call in (sdk.bills.list, sdk.suppliers.list):
        with pytest.raises(ErrorMessage) as caught:
            call(request=ids)
        assert caught.value.status_code == 409
        assert caught.value.data.can_be_retried == "True"
