"""Bills, suppliers and payment accounts on the local cloud against the Codat emulator: synced and
re-synced (through Codat's webhooks), two runs at once, the product's queries, its writes through
Codat applied once, and every bad input refused with nothing created.

One product per module (the deploy costs seconds); each test makes its own SMB.
"""

from __future__ import annotations

import math
from decimal import Decimal

from localcloud.payables import LinkedSmb, linked_smb, wait_until

STATUSES = {"Open", "PartiallyPaid", "Paid", "Void", "Draft"}


def _same_as_codat(smb: LinkedSmb) -> dict[str, dict]:
    """The product's copy equals Codat's books, bill by bill, in every status."""
    codat, copied = smb.codat_bills(), smb.copied_bills()
    assert set(copied) == set(codat)
    for bill_id, bill in codat.items():
        mine = copied[bill_id]
        assert mine["status"] == bill["status"], bill_id
        assert Decimal(mine["amountDue"]) == Decimal(str(bill["amountDue"])), bill_id
        assert Decimal(mine["totalAmount"]) == Decimal(str(bill["totalAmount"])), bill_id
        assert mine["dueDate"] == bill["dueDate"][:10]
        assert mine["supplierId"] == bill["supplierRef"]["id"]
    return copied


def test_the_first_run_copies_every_bill_supplier_and_account(product_with_codat):
    # Given an SMB that authorized through Link: 250 bills in every status
    smb = linked_smb(product_with_codat, bills=250)
    calls_before = smb.codat_calls()
    # When the initial load runs
    done = smb.sync("initial")
    # Then the copy is Codat's books, bills in every status (not just Open and PartiallyPaid)
    copied = _same_as_codat(smb)
    assert {b["status"] for b in copied.values()} == STATUSES
    suppliers = smb.codat_suppliers()
    with smb.api() as api:
        listed = api.get(f"/companies/{smb.company_id}/suppliers", params={"limit": "100"}).json()
        accounts = api.get(f"/companies/{smb.company_id}/payment-accounts").json()["items"]
    assert {s["id"] for s in listed["items"]} == set(suppliers)
    assert accounts
    # And it cost one Codat call per page
    pages = math.ceil(len(suppliers) / 100) + math.ceil(250 / 100) + 1
    assert done["stats"]["pages"] == pages
    assert smb.codat_calls() - calls_before == pages
    assert done["done"] is True


def test_changes_in_the_accounting_software_reach_the_copy_through_codats_webhook(
    product_with_codat,
):
    smb = linked_smb(product_with_codat, bills=120)
    smb.sync("initial")
    codat = smb.codat_bills()
    open_bills = [b for b in codat.values() if b["status"] == "Open"]
    # Given changes made in the accounting software, outside the product:
    smb.control(f"bills/{open_bills[0]['id']}/pay")  # paid in full
    partial = Decimal(str(open_bills[1]["amountDue"])) / 2
    smb.control(
        f"bills/{open_bills[1]['id']}/pay", {"amount": str(partial.quantize(Decimal("0.01")))}
    )
    smb.control(f"bills/{open_bills[2]['id']}/void")
    smb.control(
        f"bills/{open_bills[3]['id']}", {"amount": "999.99", "dueDate": "2027-01-31"}, "PATCH"
    )
    new_bills = smb.control("bills", {"count": 3})["bills"]
    (new_supplier,) = smb.control("suppliers", {"name": "New Supplies Ltd"})["suppliers"]
    # When Codat reads the books again (read.completed -> CompanyDataRead -> a run)
    runs_before = len(smb.runs())
    smb.read()
    wait_until(lambda: len(smb.runs()) > runs_before, timeout=60)
    wait_until(lambda: all(r["status"] != "RUNNING" for r in smb.runs()), timeout=120)
    assert all(r["status"] == "SUCCEEDED" for r in smb.runs())
    # Then the copy has every change
    copied = _same_as_codat(smb)
    assert copied[open_bills[0]["id"]]["status"] == "Paid"
    assert copied[open_bills[1]["id"]]["status"] == "PartiallyPaid"
    assert copied[open_bills[2]["id"]]["status"] == "Void"
    assert {b["id"] for b in new_bills} <= set(copied)
    edited = copied[open_bills[3]["id"]]
    assert (edited["totalAmount"], edited["dueDate"]) == ("999.99", "2027-01-31")
    with smb.api() as api:
        answer = api.get(f"/companies/{smb.company_id}/suppliers/{new_supplier['id']}")
    assert answer.status_code == 200
    assert answer.json()["supplierName"] == "New Supplies Ltd"


def test_the_next_run_reads_only_what_changed(product_with_codat):
    smb = linked_smb(product_with_codat, bills=300)
    smb.sync("initial")
    (bill,) = [b for b in smb.codat_bills().values() if b["status"] == "Open"][:1]
    smb.control(f"bills/{bill['id']}/pay")
    calls = smb.codat_calls()
    done = smb.sync("after-a-payment")
    # suppliers, bills and accounts changed since the watermark: one page each
    assert done["stats"]["pages"] == 3
    assert smb.codat_calls() - calls == 3
    assert done["stats"]["records"] < 300  # not the whole book again
    assert smb.copied_bills()[bill["id"]]["status"] == "Paid"


def test_two_runs_at_once_converge(product_with_codat):
    smb = linked_smb(product_with_codat, bills=400)
    first = smb.start_sync("run-a")
    second = smb.start_sync("run-b")
    # the platform changes while both read
    for bill in [b for b in smb.codat_bills().values() if b["status"] == "Open"][:5]:
        smb.control(f"bills/{bill['id']}/pay")
    smb.finished(first)
    smb.finished(second)
    third = smb.sync("after-both")  # the payments made during the two runs
    assert third["done"]
    _same_as_codat(smb)


def test_a_step_that_fails_resumes_from_the_last_page_it_stored(product_with_codat, monkeypatch):
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend

    from billpay.bills.repository import _CONFLICT_RETRIES

    smb = linked_smb(product_with_codat, bills=500)
    original = DynamoDBBackend.transact_write_items
    transactions = {"seen": 0, "failed": 0}

    def conflicting(self, transact_items):
        # The 3rd page's transaction is cancelled by "other writers" every time the step tries
        # it: the step gives up (WritesKeptConflictingError) and dies.
        if any(smb.company_id in str(a) for a in transact_items):
            transactions["seen"] += 1
            if 3 <= transactions["seen"] < 3 + _CONFLICT_RETRIES:
                transactions["failed"] += 1
                raise TransactionCanceledException(
                    [("TransactionConflict", "injected", None)] * len(transact_items)
                )
        return original(self, transact_items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", conflicting)
    calls = smb.codat_calls()
    run = smb.start_sync("with-a-failure")
    done = smb.finished(run)
    assert transactions["failed"] == _CONFLICT_RETRIES
    _same_as_codat(smb)
    # The step died once; run again, it went on from the cursor saved after the last page it
    # stored: one page read twice, none of the others
    history = product_with_codat.cloud.history(run)
    failed = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert len(failed) == 1
    assert "WritesKeptConflictingError" in str(failed[0])
    assert smb.codat_calls() - calls == done["stats"]["pages"] + 1
