"""The payables sync's rules, over in-memory ports: what it reads, what it keeps, how it resumes."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billpay.bills.models import BillStatus, CompanyNotReadyError
from billpay.bills.ports import DataType
from billpay.bills.sync import (
    MAX_BUSY_WAITS,
    OVERLAP,
    SyncCursor,
    SyncRequest,
    SyncStalledError,
    bills_query,
    plan_sync,
    sync_step,
)
from billpay.codat.errors import CodatRejectedError
from billpay.companies.models import CompanyStatus
from billpay.core.errors import NotFoundError

from .fakes import InMemoryCompanies
from .payables_fakes import (
    T0,
    FakeCodat,
    FakeSource,
    InMemoryPayables,
    Pages,
    account,
    bill,
    busy,
    ready_company,
    supplier,
)


class World:
    def __init__(self, bills: int = 250, suppliers: int = 3, page_size: int = 100) -> None:
        self.companies = InMemoryCompanies()
        self.companies.create(ready_company())
        self.codat = FakeCodat(page_size=page_size)
        for n in range(suppliers):
            self.codat.put_supplier(supplier(n))
        statuses = list(BillStatus)
        for n in range(bills):
            self.codat.put_bill(bill(n, T0 + timedelta(minutes=n), statuses[n % len(statuses)]))
        self.codat.accounts = [account(1), account(2, "USD")]
        self.store = InMemoryPayables()
        self.source = FakeSource(self.codat)
        self.clock = T0 + timedelta(days=1)
        self.runs = 0

    def now(self):
        return self.clock

    def plan(self, **request):
        self.runs += 1
        body = {"companyId": "smb-1", "runId": f"run-{self.runs}", **request}
        return plan_sync(SyncRequest.model_validate(body), self.companies, self.store, self.now())

    def step(self, cursor, budget=None):
        return sync_step(
            cursor, self.companies, self.source, self.store, budget or Pages(), self.now
        )

    def sync(self, **request) -> SyncCursor:
        cursor = self.plan(**request)
        while not cursor.done:
            cursor = self.step(cursor)
        return cursor


def test_the_first_run_loads_every_supplier_bill_and_account_in_every_status():
    world = World(bills=250)
    done = world.sync()
    bills = world.store.bills_of("smb-1")
    assert len(bills) == 250
    assert {b.status for b in bills.values()} == set(BillStatus)  # not only Open/PartiallyPaid
    assert len(world.store.suppliers_of("smb-1")) == 3
    assert [a.account_id for a in world.store.accounts["smb-1"][1]] == ["acc-1", "acc-2"]
    # One Codat call per page: 1 of suppliers, 3 of bills, 1 of accounts.
    assert [c[0] for c in world.codat.calls] == ["suppliers"] + ["bills"] * 3 + ["paymentAccounts"]
    assert done.stats.pages == 5
    assert done.stats.records == 3 + 250 + 2
    # The watermark is the latest source modified date each data type had.
    assert world.store.watermark("smb-1", DataType.BILLS) == T0 + timedelta(minutes=249)
    assert world.store.watermark("smb-1", DataType.SUPPLIERS) == T0


def test_the_next_run_reads_only_what_changed_since_the_watermark_and_applies_it():
    world = World(bills=250)
    world.sync()
    world.codat.calls.clear()
    later = T0 + timedelta(days=2)
    # Given changes in the accounting software: paid outside, voided, a new bill, a new supplier
    paid = world.store.bills_of("smb-1")["bill-1"]
    world.codat.put_bill(paid.model_copy(update={"status": BillStatus.PAID, "amount_due": Decimal("0.00"),
                                                 "source_modified_date": later}))  # fmt: skip
    world.codat.put_bill(bill(7, later, BillStatus.VOID))
    world.codat.put_bill(bill(900, later))
    world.codat.put_supplier(supplier(9, later))
    # When the next run goes
    done = world.sync()
    # Then it asked Codat for records modified since the watermark (minus the overlap) only
    queries = [q for what, q, _ in world.codat.calls if what == "bills"]
    since = T0 + timedelta(minutes=249) - OVERLAP
    assert queries == [bills_query(since)]
    assert done.stats.pages == 3
    # And the store has every change
    bills = world.store.bills_of("smb-1")
    assert bills["bill-1"].status is BillStatus.PAID
    assert bills["bill-7"].status is BillStatus.VOID
    assert "bill-900" in bills
    assert "sup-9" in world.store.suppliers_of("smb-1")
    assert world.store.watermark("smb-1", DataType.BILLS) == later


def test_a_stale_version_never_replaces_a_newer_stored_one():
    world = World(bills=5)
    world.sync()
    newer = world.store.bills_of("smb-1")["bill-0"].model_copy(
        update={
            "status": BillStatus.PAID,
            "amount_due": Decimal("0.00"),
            "source_modified_date": T0 + timedelta(days=3),
        }
    )
    world.store.save_newer("smb-1", [newer])
    world.sync(full=True)  # Codat still holds the older version
    assert world.store.bills_of("smb-1")["bill-0"].status is BillStatus.PAID


def test_the_read_webhooks_modified_from_date_widens_the_window_below_the_watermark():
    world = World(bills=5)
    world.sync()
    early = T0 - timedelta(days=10)
    cursor = world.plan(modifiedFrom=early.isoformat())
    assert cursor.since[DataType.BILLS] == early
    late = T0 + timedelta(days=10)
    cursor = world.plan(modifiedFrom=late.isoformat())
    assert cursor.since[DataType.BILLS] == world.store.watermark("smb-1", DataType.BILLS) - OVERLAP


def test_a_full_run_ignores_the_watermarks():
    world = World(bills=5)
    world.sync()
    assert world.plan(full=True).since == {DataType.SUPPLIERS: None, DataType.BILLS: None}


def test_a_step_stops_when_its_time_is_spent_and_the_next_resumes_at_the_next_page():
    world = World(bills=250)
    cursor = world.plan()
    steps = 0
    while not cursor.done:
        cursor = world.step(cursor, Pages(1))
        steps += 1
    assert steps == 5
    assert len(world.codat.calls) == 5  # no page read twice
    assert len(world.store.bills_of("smb-1")) == 250


def test_a_step_that_dies_resumes_at_the_last_page_it_stored(monkeypatch):
    world = World(bills=250)
    start = world.plan()
    # A step reads suppliers and two pages of bills, then dies storing the third page
    saves = {"n": 0}
    save_newer = world.store.save_newer

    def dying(company_id, records):
        saves["n"] += 1
        if saves["n"] == 4:
            raise TimeoutError("the Lambda ran out of time")
        return save_newer(company_id, records)

    monkeypatch.setattr(world.store, "save_newer", dying)
    with pytest.raises(TimeoutError):
        world.step(start)
    # Step Functions runs the step again with the same input: it goes on from the saved cursor
    cursor = world.step(start)
    assert cursor.done
    assert len(world.codat.calls) == 6  # 5 pages + the one whose storing died
    assert len(world.store.bills_of("smb-1")) == 250
    # and a run started again with the same id (its first step's input) resumes too
    assert world.plan(runId="run-1").done


def test_codat_busy_makes_the_step_ask_for_a_wait_and_resume_at_the_same_page():
    world = World(bills=250)
    cursor = world.step(world.plan(), Pages(2))
    world.codat.faults = [busy("429", 7)]
    waiting = world.step(cursor)
    assert waiting.wait_seconds == 7
    assert waiting.continuation == cursor.continuation
    assert waiting.to_state()["waitSeconds"] == 7
    assert waiting.to_state()["done"] is False
    resumed = world.step(waiting)
    assert resumed.done
    assert resumed.wait_seconds == 0
    assert len(world.store.bills_of("smb-1")) == 250


def test_codat_busy_for_too_long_stalls_the_run():
    world = World(bills=5)
    cursor = world.plan()
    world.codat.faults = [busy() for _ in range(MAX_BUSY_WAITS + 1)]
    for _ in range(MAX_BUSY_WAITS):
        cursor = world.step(cursor)
        assert cursor.wait_seconds == 30
    with pytest.raises(SyncStalledError):
        world.step(cursor)


def test_a_rejected_continuation_token_restarts_the_phase_and_loses_nothing():
    world = World(bills=250)
    cursor = world.step(world.plan(), Pages(2))
    assert cursor.phase is DataType.BILLS
    assert cursor.continuation
    world.codat.faults = [CodatRejectedError("expired", status=400)]
    done = world.step(cursor)
    assert done.done
    assert len(world.store.bills_of("smb-1")) == 250


def test_a_continuation_token_refused_twice_is_an_error():
    world = World(bills=250)
    cursor = world.step(world.plan(), Pages(2))
    world.codat.faults = [CodatRejectedError("expired", status=400)]
    cursor = world.step(cursor, Pages(2))  # restarted, then the first page again
    assert cursor.restarted
    assert cursor.continuation
    world.codat.faults = [CodatRejectedError("expired", status=400)]
    with pytest.raises(CodatRejectedError):
        world.step(cursor)


def test_a_rejected_first_page_is_an_error():
    world = World(bills=5)
    world.codat.faults = [CodatRejectedError("no", status=400)]
    with pytest.raises(CodatRejectedError):
        world.step(world.plan())


def test_two_runs_interleaved_page_by_page_converge_to_the_newest_versions():
    world = World(bills=250)
    first, second = world.plan(), world.plan()
    # Codat changes between the pages the two runs read
    changed_at = T0 + timedelta(days=2)
    while not (first.done and second.done):
        if not first.done:
            first = world.step(first, Pages(1))
        world.codat.put_bill(bill(3, changed_at, BillStatus.PAID))
        if not second.done:
            second = world.step(second, Pages(1))
    bills = world.store.bills_of("smb-1")
    assert len(bills) == 250
    assert bills["bill-3"].status is BillStatus.PAID


def test_only_companies_with_a_connection_sync():
    world = World(bills=1)
    world.companies.items["smb-1"] = ready_company(status=CompanyStatus.PENDING_LINK)
    with pytest.raises(CompanyNotReadyError):
        world.plan()
    world.companies.items["smb-1"] = ready_company(status=CompanyStatus.INITIAL_READ)
    world.plan()  # onboarding's initial load
    with pytest.raises(NotFoundError):
        plan_sync(
            SyncRequest.model_validate({"companyId": "nobody", "runId": "r"}),
            world.companies,
            world.store,
            T0,
        )


def test_the_bills_query_asks_for_every_status():
    query = bills_query(None)
    assert set(query.split("||")) == {f"status={s}" for s in BillStatus}
    since = bills_query(T0)
    assert since.endswith("&&sourceModifiedDate>=2026-11-02T09:00:00.000Z")
    assert since.startswith("{status=")


def test_the_cursor_survives_the_state_machine():
    world = World(bills=250)
    cursor = world.step(world.plan(), Pages(2))
    assert SyncCursor.model_validate(cursor.to_state()) == cursor
