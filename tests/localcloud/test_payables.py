"""Bills, suppliers and payment accounts on the local cloud against the Codat emulator: synced and
re-synced (through Codat's webhooks), two runs at once, the product's queries, its writes through
Codat applied once, and every bad input refused with nothing created.

One product per module (the deploy costs seconds); each test makes its own SMB.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from decimal import Decimal

from billpay.onboarding.events import CompanyReady
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


def test_the_products_listings_are_queries_never_scans(product_with_codat, monkeypatch):
    from moto.dynamodb.models import DynamoDBBackend

    smb = linked_smb(product_with_codat, bills=300)
    smb.sync("initial")
    codat = smb.codat_bills()
    calls: list[tuple[str, str | None]] = []
    scan, query = DynamoDBBackend.scan, DynamoDBBackend.query

    def recording_scan(self, table_name, *args, **kwargs):
        calls.append(("Scan", table_name))  # any table
        return scan(self, table_name, *args, **kwargs)

    payables_table = product_with_codat.cloud.output("PayablesTableName")

    def recording_query(self, table_name, *args, **kwargs):
        if table_name == payables_table:  # (the webhook processor queries the companies' index)
            calls.append(("Query", kwargs.get("index_name")))
        return query(self, table_name, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "scan", recording_scan)
    monkeypatch.setattr(DynamoDBBackend, "query", recording_query)

    def listing(**params) -> list[dict]:
        found, token = [], None
        with smb.api() as api:
            while True:
                query_params = {**params, "limit": "40", **({"pageToken": token} if token else {})}
                answer = api.get(f"/companies/{smb.company_id}/bills", params=query_params)
                assert answer.status_code == 200, answer.text
                found += answer.json()["items"]
                token = answer.json().get("nextPageToken")
                if token is None:
                    return found

    after, before = "2026-01-01", "2027-06-30"
    for params, expected in (
        ({"status": "Open"}, {i for i, b in codat.items() if b["status"] == "Open"}),
        (
            {"dueAfter": after, "dueBefore": before},
            {i for i, b in codat.items() if after < b["dueDate"][:10] < before},
        ),
        (
            {"status": "PartiallyPaid", "dueAfter": after},
            {
                i
                for i, b in codat.items()
                if b["status"] == "PartiallyPaid" and b["dueDate"][:10] > after
            },
        ),
    ):
        found = listing(**params)
        assert {b["id"] for b in found} == expected, params
        assert [b["dueDate"] for b in found] == sorted(b["dueDate"] for b in found)
    assert calls
    assert not [c for c in calls if c[0] == "Scan"]
    assert {index for _, index in calls} == {"byDueDate", "byStatusDueDate"}


def _bill_body(smb: LinkedSmb, request_id: str, **changes) -> dict:
    supplier = next(s for s in smb.codat_suppliers().values() if s["status"] == "Active")
    options = smb.product.emulator.store.bill_mapping_options(
        smb.codat_company_id, smb.connection_id
    )
    return {
        "requestId": request_id,
        "bill": {
            "supplierId": supplier["id"],
            "reference": f"REF-{request_id}",
            "issueDate": "2026-11-01",
            "dueDate": "2026-12-15",
            "currency": "GBP",
            "lineItems": [
                {
                    "description": "Paper",
                    "unitAmount": "120.10",
                    "quantity": 2,
                    "accountId": options["accounts"][0]["id"],
                }
            ],
            **changes,
        },
    }


def test_each_write_through_codat_is_applied_once_under_a_retried_request(product_with_codat):
    smb = linked_smb(product_with_codat, bills=20)
    smb.sync("initial")
    emulator = product_with_codat.emulator
    path = f"/companies/{smb.company_id}"

    def references() -> list[str]:
        return [b.get("reference") for b in smb.codat_bills().values()]

    with smb.api() as api:
        # A bill: Codat applies it, then the answer is lost (a 500); the product retries
        emulator.faults.add_rule(
            kind="applied_then_error", route="/companies/*/connections/*/payables/bills",
            method="POST", count=1,
        )  # fmt: skip
        first = api.post(f"{path}/bills", json=_bill_body(smb, "bill-1"))
        assert first.status_code == 503, first.text
        second = api.post(f"{path}/bills", json=_bill_body(smb, "bill-1"))
        assert second.status_code == 201, second.text
        third = api.post(f"{path}/bills", json=_bill_body(smb, "bill-1"))
        assert (third.status_code, third.json()) == (201, second.json())
        assert third.headers["Idempotent-Replayed"] == "true"
        assert references().count("REF-bill-1") == 1
        bill = second.json()
        assert bill["totalAmount"] == "240.20"
        # readable at once, before any sync
        assert api.get(f"{path}/bills/{bill['id']}").json()["reference"] == "REF-bill-1"

        # The same bill updated twice under one request id: one update
        update = _bill_body(smb, "update-1", reference="REF-updated")
        assert api.put(f"{path}/bills/{bill['id']}", json=update).status_code == 200
        assert api.put(f"{path}/bills/{bill['id']}", json=update).status_code == 200
        assert smb.codat_bills()[bill["id"]]["reference"] == "REF-updated"

        # A supplier, created once
        supplier = {"requestId": "supplier-1", "supplier": {"supplierName": "Once Ltd"}}
        created = api.post(f"{path}/suppliers", json=supplier)
        assert created.status_code == 201, created.text
        assert api.post(f"{path}/suppliers", json=supplier).json() == created.json()
        names = [s["supplierName"] for s in smb.codat_suppliers().values()]
        assert names.count("Once Ltd") == 1

        # Replaced whole (every field sent), once
        whole = {
            "requestId": "supplier-2",
            "supplier": {
                "supplierName": "Once & Again Ltd", "contactName": None, "emailAddress": None,
                "phone": "+44 20 7946 0000", "addresses": [], "status": "Active",
                "defaultCurrency": "GBP",
            },
        }  # fmt: skip
        replaced = api.put(f"{path}/suppliers/{created.json()['id']}", json=whole)
        assert replaced.status_code == 200, replaced.text
        assert smb.codat_suppliers()[created.json()["id"]]["phone"] == "+44 20 7946 0000"

        # An attachment: uploaded, the answer lost; the retry finds it on the bill
        emulator.faults.add_rule(
            kind="applied_then_error", route="/companies/*/connections/*/payables/bills/*/attachments",
            method="POST", count=1,
        )  # fmt: skip
        upload = {
            "requestId": "scan-1",
            "fileName": "invoice.pdf",
            "contentType": "application/pdf",
            "content": base64.b64encode(b"%PDF-1.7 an invoice").decode(),
        }
        assert api.post(f"{path}/bills/{bill['id']}/attachments", json=upload).status_code == 503
        attached = api.post(f"{path}/bills/{bill['id']}/attachments", json=upload)
        assert attached.status_code == 201, attached.text
        assert len(smb.codat_attachments(bill["id"])) == 1

        # A bank account: created once, listed at once
        account = {
            "requestId": "account-1",
            "bankAccount": {"name": "Payables", "accountNumber": "12345678", "sortCode": "40-11-62", "currency": "GBP"},
        }  # fmt: skip
        opened = api.post(f"{path}/payment-accounts", json=account)
        assert opened.status_code == 201, opened.text
        assert api.post(f"{path}/payment-accounts", json=account).json() == opened.json()
        listed = api.get(f"{path}/payment-accounts").json()["items"]
        assert [a["id"] for a in listed].count(opened.json()["id"]) == 1
    # and the next sync agrees with what the writes stored
    smb.sync("after-writes")
    _same_as_codat(smb)


def test_a_write_codat_reports_refused_after_a_lost_answer_is_refused_on_retry(
    product_with_codat,
):
    from billpay.bills.models import RequestState

    smb = linked_smb(product_with_codat, bills=10)
    smb.sync("initial")
    bill_id = next(b["id"] for b in smb.codat_bills().values() if b["status"] == "Open")
    path = f"/companies/{smb.company_id}/bills/{bill_id}"
    update = _bill_body(smb, "late-1", reference="REF-late")
    with smb.api() as api:
        # Given an update whose answer never came (Codat's 500): the request stays PENDING
        product_with_codat.emulator.faults.add_rule(
            kind="error", route="/companies/*/connections/*/payables/bills/*", method="PUT",
            count=1,
        )  # fmt: skip
        assert api.put(path, json=update).status_code == 503
        assert smb.copy().request(smb.company_id, "late-1").state is RequestState.PENDING
        # When Codat reports the write refused by the platform (bills.write.unsuccessful)
        smb.control(
            "write-results",
            {"dataType": "bills", "type": "Update", "successful": False, "status": "Failed",
             "recordId": bill_id},
        )  # fmt: skip
        # Then the product's request is FAILED with Codat's reason
        wait_until(
            lambda: smb.copy().request(smb.company_id, "late-1").state is RequestState.FAILED, 60
        )
        # (the refusal also starts a sync run: let it end before counting Codat's calls)
        wait_until(lambda: len(smb.runs()) == 2, 60)
        wait_until(lambda: all(r["status"] != "RUNNING" for r in smb.runs()), 60)
        # and a retry is refused with it, nothing sent to Codat again
        calls = smb.codat_calls()
        retried = api.put(path, json=update)
        assert retried.status_code == 422, retried.text
        assert "Codat reported it Failed" in retried.text
        assert smb.codat_calls() == calls
    assert smb.codat_bills()[bill_id]["reference"] != "REF-late"


def test_every_bad_input_is_refused_and_nothing_reaches_codat(product_with_codat):
    from billpay.companies.models import CompanyStatus
    from billpay.companies.repository import DynamoCompanyRepository

    smb = linked_smb(product_with_codat, bills=30)
    quickbooks = linked_smb(product_with_codat, bills=10, platform_key="qhyg")
    freeagent = linked_smb(product_with_codat, bills=10, platform_key="fbrh")
    for each in (smb, quickbooks, freeagent):
        each.sync("initial")
    # A company that is still onboarding (LINKED)
    cloud = product_with_codat.cloud
    companies = DynamoCompanyRepository(
        cloud.client("dynamodb"), cloud.output("CompaniesTableName")
    )
    linking = companies.get(freeagent.company_id).model_copy(
        update={"company_id": "smb-linking", "status": CompanyStatus.LINKED}
    )
    assert companies.create(linking)

    bill_id = next(iter(smb.codat_bills()))
    paid = next(i for i, b in smb.codat_bills().items() if b["status"] == "Paid")
    with smb.api() as api:
        first_page = api.get(f"/companies/{smb.company_id}/bills", params={"limit": "5"}).json()
    foreign_token = first_page["nextPageToken"]
    body = _bill_body(smb, "bad-1")
    qbo_body = _bill_body(quickbooks, "bad-2", reference="R" * 22)
    fa_line = _bill_body(freeagent, "bad-3")["bill"]["lineItems"][0]
    fa_body = _bill_body(freeagent, "bad-3", lineItems=[fa_line] * 41)

    def upload(name, content):
        return {
            "requestId": f"upload-{name}",
            "fileName": name,
            "contentType": "application/octet-stream",
            "content": base64.b64encode(content).decode(),
        }

    cases = [
        # (method, path, params, body, status, code)
        ("GET", "/companies/nobody/bills", None, None, 404, "NotFound"),
        ("GET", "/companies/smb-linking/bills", None, None, 409, "CompanyNotReady"),
        ("POST", "/companies/smb-linking/bills", None, body, 409, "CompanyNotReady"),
        ("GET", "/companies/not%20an%20id/bills", None, None, 400, "MalformedRequest"),
        ("GET", f"/companies/{smb.company_id}/bills/no%20such%20bill", None, None, 400, "MalformedRequest"),
        ("GET", f"/companies/{smb.company_id}/bills/unknown-bill", None, None, 404, "NotFound"),
        ("GET", f"/companies/{smb.company_id}/suppliers/unknown", None, None, 404, "NotFound"),
        ("GET", f"/companies/{smb.company_id}/bills", {"status": "Settled"}, None, 400, "ValidationError"),
        ("GET", f"/companies/{smb.company_id}/bills", {"dueBefore": "next week"}, None, 400, "ValidationError"),
        ("GET", f"/companies/{smb.company_id}/bills", {"dueAfter": "2027-01-01", "dueBefore": "2026-01-01"}, None, 400, "ValidationError"),
        ("GET", f"/companies/{smb.company_id}/bills", {"sort": "amount"}, None, 400, "ValidationError"),
        ("GET", f"/companies/{smb.company_id}/bills", {"pageToken": "eyJ2IjoxfQ.AAAA"}, None, 400, "InvalidPageToken"),
        ("GET", f"/companies/{quickbooks.company_id}/bills", {"limit": "5", "pageToken": foreign_token}, None, 400, "InvalidPageToken"),
        ("GET", f"/companies/{smb.company_id}/bills", {"status": "Open", "pageToken": foreign_token}, None, 400, "InvalidPageToken"),
        ("POST", f"/companies/{quickbooks.company_id}/bills", None, qbo_body, 422, "PlatformRule"),
        ("POST", f"/companies/{freeagent.company_id}/bills", None, fa_body, 422, "PlatformRule"),
        ("POST", f"/companies/{smb.company_id}/bills", None, _bill_body(smb, "bad-4", supplierId="nobody"), 422, "PlatformRule"),
        ("POST", f"/companies/{smb.company_id}/bills", None, {"bill": body["bill"]}, 400, "ValidationError"),
        ("PUT", f"/companies/{smb.company_id}/bills/{paid}", None, _bill_body(smb, "bad-5"), 409, "Conflict"),
        ("PUT", f"/companies/{smb.company_id}/bills/unknown-bill", None, _bill_body(smb, "bad-6"), 404, "NotFound"),
        ("PUT", f"/companies/{smb.company_id}/suppliers/unknown-supplier", None, {"requestId": "bad-9", "supplier": {"supplierName": "Nobody Ltd"}}, 404, "NotFound"),
        ("POST", f"/companies/{smb.company_id}/bills/unknown-bill/attachments", None, upload("scan.pdf", b"%PDF"), 404, "NotFound"),
        ("PUT", f"/companies/{smb.company_id}/suppliers/{body['bill']['supplierId']}", None, {"requestId": "bad-7", "supplier": {"supplierName": "Half"}}, 422, "PlatformRule"),
        ("POST", f"/companies/{smb.company_id}/bills/{bill_id}/attachments", None, upload("big.pdf", b"x" * (4 * 1024 * 1024 + 1)), 413, "AttachmentTooLarge"),
        ("POST", f"/companies/{smb.company_id}/bills/{bill_id}/attachments", None, upload("run.exe", b"MZ"), 415, "AttachmentTypeRefused"),
        ("POST", f"/companies/{freeagent.company_id}/bills/{next(iter(freeagent.codat_bills()))}/attachments", None, upload("sheet.xlsx", b"PK"), 415, "AttachmentTypeRefused"),
        ("POST", f"/companies/{smb.company_id}/payment-accounts", None, {"requestId": "bad-8", "bankAccount": {"name": "No number", "currency": "GBP"}}, 400, "ValidationError"),
    ]  # fmt: skip
    calls = {each.company_id: each.codat_calls() for each in (smb, quickbooks, freeagent)}
    bills = {each.company_id: len(each.codat_bills()) for each in (smb, quickbooks, freeagent)}
    with smb.api() as api:
        for method, path, params, payload, status, code in cases:
            answer = api.request(method, path, params=params, json=payload)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (
                method, path, answer.text,
            )  # fmt: skip
            assert answer.json()["error"]["message"]
    # Nothing reached Codat: no call, no bill, no attachment
    assert {each.company_id: each.codat_calls() for each in (smb, quickbooks, freeagent)} == calls
    assert {
        each.company_id: len(each.codat_bills()) for each in (smb, quickbooks, freeagent)
    } == bills
    assert smb.codat_attachments(bill_id) == []


def test_a_company_made_ready_gets_its_initial_load(product_with_codat):
    # Given an SMB onboarding has just made READY: it publishes CompanyReady
    smb = linked_smb(product_with_codat, bills=40)
    cloud = product_with_codat.cloud
    ready = CompanyReady(
        event_id=f"onboarding-{smb.company_id}-ready",
        occurred_at=datetime.now(UTC),
        company_id=smb.company_id,
        codat_company_id=smb.codat_company_id,
        connection_id=smb.connection_id,
    )
    event = {
        "Source": "billpay",
        "DetailType": CompanyReady.DETAIL_TYPE,
        "EventBusName": cloud.output("EventBusName"),
        "Detail": json.dumps(ready.detail()),
    }
    # When the event is delivered twice
    for _ in range(2):
        assert cloud.client("events").put_events(Entries=[event])["FailedEntryCount"] == 0
    # Then one run loads the company's books
    wait_until(lambda: smb.runs() and all(r["status"] != "RUNNING" for r in smb.runs()), 120)
    (run,) = smb.runs()
    assert run["status"] == "SUCCEEDED"
    _same_as_codat(smb)


def test_the_sync_benchmark_measures_one_codat_call_a_page_and_no_scan(product_with_codat):
    # benchmarks/payables_sync.py at a small size: what docs/benchmarks.md reports at 20,000
    from benchmarks import payables_sync

    figures = payables_sync.measure(product_with_codat, bills=150, changes=5, seed=None)
    assert figures.same
    first, then = figures.initial, figures.incremental
    assert first["codat_calls"] == first["pages"] == figures.expected_pages
    assert first["written"] >= figures.bills + figures.suppliers
    # one transaction a page of suppliers or bills; no scan
    assert first["transactions"] == figures.expected_pages - 1
    assert first["scans"] == then["scans"] == 0
    # the incremental run reads one page of each, and writes the five bills paid
    assert then["codat_calls"] == then["pages"] == 3
    assert 5 <= then["written"] < first["written"]
