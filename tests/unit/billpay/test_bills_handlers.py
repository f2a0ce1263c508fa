"""The payables sync's Lambda handlers: a step from a start request or a cursor, and the
EventBridge target that starts runs once per event."""

from dataclasses import dataclass

import pytest

from billpay.bills import handlers
from billpay.bills.sync import SyncRequest, sync_run_id

from .fakes import InMemoryCompanies
from .payables_fakes import FakeCodat, FakeSource, InMemoryPayables, bill, ready_company, supplier


@dataclass
class Context:
    remaining_ms: int = 300_000
    function_name: str = "sync"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:sync"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


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
    return handlers.SyncDependencies(companies, FakeSource(codat), InMemoryPayables())


def test_a_step_starts_from_a_request_and_goes_on_from_its_cursor(deps):
    state = handlers.sync_payables(
        {"companyId": "smb-1", "runId": "run-1", "pagesPerStep": 2}, Context(), deps=deps
    )
    assert state["done"] is False
    assert state["stats"]["pages"] == 2
    steps = 1
    while not state["done"]:
        state = handlers.sync_payables(state, Context(), deps=deps)
        steps += 1
    assert len(deps.store.bills_of("smb-1")) == 35
    assert steps == 3  # 1 + 4 + 1 pages, two a step


def test_a_step_hands_over_when_its_time_is_nearly_up(deps):
    state = handlers.sync_payables(
        {"companyId": "smb-1", "runId": "run-1"}, Context(remaining_ms=1_000), deps=deps
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
    first = handlers.request_sync(read, Context(), starter=starter)
    again = handlers.request_sync(read, Context(), starter=starter)
    assert first == again
    assert first["started"] is True
    (request,) = starter.started.values()
    assert request.modified_from.isoformat() == "2026-11-01T00:00:00+00:00"
    handlers.request_sync(_event("CompanyReady"), Context(), starter=starter)
    handlers.request_sync(_event("BillWriteFailed", pushId="p"), Context(), starter=starter)
    assert len(starter.started) == 3


def test_reads_that_touched_no_payables_and_other_events_start_nothing():
    starter = RecordingStarter()
    company_only = _event("CompanyDataRead", dataTypes=[{"dataType": "company"}])
    assert handlers.request_sync(company_only, Context(), starter=starter)["started"] is False
    assert (
        handlers.request_sync(_event("LinkReady"), Context(), starter=starter)["started"] is False
    )
    assert starter.started == {}


def test_a_run_id_is_a_valid_execution_name_for_the_longest_company_id():
    longest = "a" * 64
    run_id = sync_run_id(longest, "CompanyDataRead:" + "x" * 200)
    assert len(run_id) == 80
    assert sync_run_id(longest, "a") != sync_run_id(longest, "b")
