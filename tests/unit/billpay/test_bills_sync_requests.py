"""What starts a run of the payables sync: the events on the integration bus it listens to."""

from billpay.bills.handlers import request_sync
from billpay.bills.sync import SyncRequest, sync_run_id

from .fakes import LambdaContext


class Starter:
    def __init__(self) -> None:
        self.started: list[SyncRequest] = []

    def start(self, request: SyncRequest) -> bool:
        fresh = request.run_id not in {r.run_id for r in self.started}
        self.started.append(request)
        return fresh


def _event(detail_type: str, **detail) -> dict:
    return {
        "source": "billpay",
        "detail-type": detail_type,
        "detail": {"eventId": "evt-1", "companyId": "smb-1", **detail},
    }


def test_a_company_reaching_ready_starts_the_initial_load_of_its_books():
    starter = Starter()
    answer = request_sync(
        _event("CompanyReady", connectionId="c-1"), LambdaContext("request-payables-sync"), starter
    )
    assert answer == {"started": True, "runId": sync_run_id("smb-1", "CompanyReady:evt-1")}
    (request,) = starter.started
    assert request.company_id == "smb-1"
    assert request.modified_from is None  # everything the company has (no watermark yet)


def test_a_read_of_the_books_starts_a_run_from_the_reads_modified_from_date():
    starter = Starter()
    event = _event(
        "CompanyDataRead",
        dataTypes=[{"dataType": "bills", "status": "Complete"}],
        modifiedFrom="2026-11-01T00:00:00+00:00",
    )
    assert request_sync(event, LambdaContext("request-payables-sync"), starter)["started"] is True
    assert starter.started[0].modified_from is not None


def test_a_read_that_touched_no_payables_and_other_events_start_nothing():
    starter = Starter()
    other_read = _event("CompanyDataRead", dataTypes=[{"dataType": "invoices"}])
    assert (
        request_sync(other_read, LambdaContext("request-payables-sync"), starter)["started"]
        is False
    )
    assert (
        request_sync(_event("LinkReady"), LambdaContext("request-payables-sync"), starter)[
            "started"
        ]
        is False
    )
    assert starter.started == []
