"""The payables sync's Lambda handlers: a step from a start request or a cursor, and the
EventBridge target that starts runs once per event and applies a write Codat reports refused to
the product's ledger of writes (on moto)."""

from datetime import UTC, datetime, timedelta

import pytest

from billpay.bills import codat_handlers, handlers
from billpay.bills.models import RequestState, WriteRequest
from billpay.bills.repository import DynamoPayablesRepository
from billpay.bills.sync import SyncRequest, sync_run_id

from .fakes import InMemoryCompanies, LambdaContext
from .payables_fakes import FakeCodat, FakeSource, InMemoryPayables, bill, ready_company, supplier

T_REPORT = datetime.now(UTC).replace(microsecond=0)


class RecordingStarter:
    def __init__(self) -> None:
        self.started: dict[str, SyncRequest] = {}

    def start(self, request: SyncRequest) -> bool:
        if request.run_id in self.started:
            return False
        self.started[request.run_id] = request
        return True


@pytest.fixture
def deps():
    companies = InMemoryCompanies()
    companies.create(ready_company())
    codat = FakeCodat(page_size=10)
    codat.put_supplier(supplier(0))
    for n in range(35):
        codat.put_bill(bill(n))
    return codat_handlers.SyncDependencies(companies, FakeSource(codat), InMemoryPayables())


def test_a_step_starts_from_a_request_and_goes_on_from_its_cursor(deps):
    state = codat_handlers.sync_payables(
        {"companyId": "smb-1", "runId": "run-1", "pagesPerStep": 2},
        LambdaContext("sync"),
        deps=deps,
    )
    assert state["done"] is False
    assert state["stats"]["pages"] == 2
    steps = 1
    while not state["done"]:
        state = codat_handlers.sync_payables(state, LambdaContext("sync"), deps=deps)
        steps += 1
    assert len(deps.store.bills_of("smb-1")) == 35
    assert steps == 3  # 1 + 4 + 1 pages, two a step


def test_a_step_hands_over_when_its_time_is_nearly_up(deps):
    state = codat_handlers.sync_payables(
        {"companyId": "smb-1", "runId": "run-1"},
        LambdaContext("sync", remaining_ms=1_000),
        deps=deps,
    )
    assert state["stats"]["pages"] == 0
    assert state["done"] is False


def _event(detail_type, **detail):
    return {
        "detail-type": detail_type,
        "source": "billpay",
        "detail": {"eventId": "wh-1", "companyId": "smb-1", **detail},
    }


def test_each_cause_starts_one_run_however_often_it_is_delivered():
    starter = RecordingStarter()
    read = _event(
        "CompanyDataRead",
        dataTypes=[{"dataType": "bills", "status": "Complete"}],
        modifiedFrom="2026-11-01T00:00:00Z",
    )
    first = handlers.request_sync(read, LambdaContext("sync"), starter=starter)
    again = handlers.request_sync(read, LambdaContext("sync"), starter=starter)
    assert first == again
    assert first["started"] is True
    (request,) = starter.started.values()
    assert request.modified_from.isoformat() == "2026-11-01T00:00:00+00:00"
    handlers.request_sync(_event("CompanyReady"), LambdaContext("sync"), starter=starter)
    handlers.request_sync(
        _event("SupplierWriteSucceeded", pushId="p"), LambdaContext("sync"), starter=starter
    )
    assert len(starter.started) == 3


def test_reads_that_touched_no_payables_and_other_events_start_nothing():
    starter = RecordingStarter()
    company_only = _event("CompanyDataRead", dataTypes=[{"dataType": "company"}])
    assert (
        handlers.request_sync(company_only, LambdaContext("sync"), starter=starter)["started"]
        is False
    )
    assert (
        handlers.request_sync(_event("LinkReady"), LambdaContext("sync"), starter=starter)[
            "started"
        ]
        is False
    )
    assert starter.started == {}


def test_a_run_id_is_a_valid_execution_name_for_the_longest_company_id():
    longest = "a" * 64
    run_id = sync_run_id(longest, "CompanyDataRead:" + "x" * 200)
    assert len(run_id) == 80
    assert sync_run_id(longest, "a") != sync_run_id(longest, "b")


# -- a write Codat reports refused after answering ------------------------------------------------


@pytest.fixture
def ledger(aws, payables_table):
    return DynamoPayablesRepository(aws("dynamodb"), payables_table)


def _pending(ledger, request_id, operation, at):
    entry = WriteRequest(
        request_id=request_id, operation=operation, fingerprint="f", created_at=at, attempt_at=at
    )
    assert ledger.begin_request("smb-1", entry) is None


def _refused(detail_type, record_id, write_type="Update", status="Failed", at=T_REPORT):
    return _event(
        detail_type,
        occurredAt=at.isoformat(),
        pushId="push-9",
        recordId=record_id,
        writeType=write_type,
        status=status,
    )


def _state(ledger, request_id):
    return ledger.request("smb-1", request_id).state


def test_a_refused_write_fails_the_pending_request_for_it_and_starts_a_run(ledger):
    before = T_REPORT - timedelta(minutes=2)
    _pending(ledger, "update-7", "updateBill:bill-7", before)
    _pending(ledger, "update-8", "updateBill:bill-8", before)  # another bill
    _pending(ledger, "upload-7", "uploadAttachment:bill-7", before)  # another write type
    _pending(ledger, "later-7", "updateBill:bill-7", T_REPORT + timedelta(seconds=1))
    _pending(ledger, "done-7", "updateBill:bill-7", before)
    ledger.settle_request("smb-1", "done-7", RequestState.DONE, {"status": 200, "body": {}})
    starter = RecordingStarter()
    event = _refused("BillWriteFailed", "bill-7")
    answer = handlers.request_sync(event, LambdaContext("sync"), starter=starter, ledger=ledger)
    assert answer["requestsFailed"] == ["update-7"]
    failed = ledger.request("smb-1", "update-7")
    assert failed.state is RequestState.FAILED
    assert "refused" in failed.outcome["message"]
    assert "push-9" in failed.outcome["message"]
    for untouched in ("update-8", "upload-7", "later-7"):
        assert _state(ledger, untouched) is RequestState.PENDING
    assert _state(ledger, "done-7") is RequestState.DONE
    assert len(starter.started) == 1  # and the books are read again
    # Delivered again: nothing left to fail, the same run
    again = handlers.request_sync(event, LambdaContext("sync"), starter=starter, ledger=ledger)
    assert "requestsFailed" not in again
    assert again["runId"] == answer["runId"]


def test_only_a_refusal_that_names_its_record_fails_a_request(ledger):
    before = T_REPORT - timedelta(minutes=2)
    _pending(ledger, "update-7", "updateBill:bill-7", before)
    _pending(ledger, "create", "createBill", before)
    _pending(ledger, "supplier-1", "updateSupplier:sup-1", before)
    starter = RecordingStarter()
    for event in (
        _refused("BillWriteFailed", "bill-7", status="TimedOut"),  # may have landed
        _refused("BillWriteFailed", None, write_type="Create"),  # which create? unknown
        _refused("SupplierWriteFailed", "bill-7"),  # a supplier's id, not the bill's
    ):
        answer = handlers.request_sync(event, LambdaContext("sync"), starter=starter, ledger=ledger)
        assert answer["started"] is True
        assert "requestsFailed" not in answer
    assert {_state(ledger, r) for r in ("update-7", "create", "supplier-1")} == {
        RequestState.PENDING
    }
    supplier_refused = _refused("SupplierWriteFailed", "sup-1")
    answer = handlers.request_sync(
        supplier_refused, LambdaContext("sync"), starter=starter, ledger=ledger
    )
    assert answer["requestsFailed"] == ["supplier-1"]
