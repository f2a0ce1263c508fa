"""The store: events, indexes, money and the quota, without HTTP."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codat_emulator.store import (
    BankAccount,
    Bill,
    DataSet,
    NotLinked,
    Store,
    Supplier,
    ValidationFailed,
)

BASE = "http://127.0.0.1:4010"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 6, 1, 23, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def linked_store(bills: list[Bill] | None = None, clock: Clock | None = None):
    store = Store(clock=clock or Clock(), daily_quota_base=10)
    company = store.create_company("Acme", BASE)["id"]
    connection = store.create_connection(company, "gbol", BASE)["id"]
    store.set_connection_status(company, connection, "Linked")
    store.load_dataset(
        company,
        connection,
        DataSet(
            suppliers=[Supplier("s1", "Paper Co")],
            bank_accounts=[BankAccount("a1", "Current", "Debit", "1", "GBP")],
            bills=bills or [],
        ),
    )
    return store, company, connection


def bill(n: int, status: str = "Open", total: str = "100.00") -> Bill:
    due = Decimal(total) if status in ("Open", "Draft") else Decimal(0)
    return Bill(f"b{n}", "s1", "2024-01-01", "2024-02-01", "GBP", status, Decimal(total), due)


def test_events_are_published_after_the_lock_and_a_raising_subscriber_is_contained():
    store = Store()
    seen: list[tuple[str, bool]] = []

    def lock_is_free(event) -> None:
        # Another thread can take the store's lock while we are called: we do not hold it.
        acquired: list[bool] = []

        def try_lock() -> None:
            got = store._lock.acquire(timeout=1)
            acquired.append(got)
            if got:
                store._lock.release()

        thread = threading.Thread(target=try_lock)
        thread.start()
        thread.join()
        seen.append((event.kind, acquired[0]))

    store.subscribe(lambda event: 1 / 0)
    store.subscribe(lock_is_free)
    company = store.create_company("Acme", BASE)["id"]
    connection = store.create_connection(company, "fbrh", BASE)["id"]
    store.set_connection_status(company, connection, "Linked")
    assert seen == [
        ("company.created", True),
        ("connection.created", True),
        ("connection.status_changed", True),
    ]


def test_status_change_event_carries_the_previous_status():
    store = Store()
    events = []
    store.subscribe(events.append)
    company = store.create_company("Acme", BASE)["id"]
    connection = store.create_connection(company, "gbol", BASE)["id"]
    store.set_connection_status(company, connection, "Linked")
    store.set_connection_status(company, connection, "Deauthorized")
    changes = [e.data for e in events if e.kind == "connection.status_changed"]
    assert [(c["previous_status"], c["connection"]["status"]) for c in changes] == [
        ("PendingAuth", "Linked"),
        ("Linked", "Deauthorized"),
    ]


def test_payment_moves_the_bill_between_status_indexes():
    store, company, connection = linked_store([bill(1)])
    store.create_payment(company, connection, "b1", Decimal("99.99"), "2024-06-01", "a1")
    assert store.count_bills(company, connection)["PartiallyPaid"] == 1
    store.create_payment(company, connection, "b1", Decimal("0.01"), "2024-06-01", "a1")
    counts = store.count_bills(company, connection)
    assert (counts["Open"], counts["PartiallyPaid"], counts["Paid"]) == (0, 0, 1)
    with pytest.raises(ValidationFailed):
        store.create_payment(company, connection, "b1", Decimal("0.01"), "2024-06-01", "a1")


def test_external_payment_needs_no_link_and_emits_events():
    store, company, connection = linked_store([bill(1)])
    store.set_connection_status(company, connection, "Unlinked")
    events = []
    store.subscribe(events.append)
    with pytest.raises(NotLinked):
        store.create_payment(company, connection, "b1", Decimal(1), "2024-06-01", "a1")
    paid = store.record_external_payment(company, connection, "b1")
    assert (paid["status"], paid["amountDue"]) == ("Paid", 0.0)
    assert [e.kind for e in events] == ["payment.created", "bill.updated"]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.sampled_from(["Open", "Paid", "Void", "Draft"]), min_size=1, max_size=40),
    st.integers(1, 7),
)
def test_paging_by_status_visits_each_matching_bill_once_in_order(statuses, page_size):
    store, company, connection = linked_store([bill(n, s) for n, s in enumerate(statuses)])
    wanted = frozenset({"Open", "Draft"})
    seen: list[str] = []
    after = 0
    while True:
        page = store.list_bills(company, connection, after, page_size, wanted)
        seen += [b["id"] for b in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [f"b{n}" for n, s in enumerate(statuses) if s in wanted]


def test_quota_exhausts_and_resets_at_midnight_utc():
    clock = Clock()
    store, company, _ = linked_store(clock=clock)
    events = []
    store.subscribe(events.append)
    limit = 10 * (1 + 1)  # one company with a Linked connection
    results = [store.consume_quota(company)[0] for _ in range(limit + 1)]
    assert results == [True] * limit + [False]
    assert [e.kind for e in events] == ["quota.exhausted"]
    assert events[0].data["dailyQuota"] == limit
    clock.now += timedelta(hours=1)  # past 00:00 UTC
    allowed, state = store.consume_quota(company)
    assert allowed
    assert state.remaining == limit - 1
    assert [e.kind for e in events] == ["quota.exhausted", "quota.reset"]


def test_set_quota_exhausts_on_demand():
    store, company, _ = linked_store()
    store.set_quota(company, remaining=0)
    assert store.consume_quota(company)[0] is False
    store.reset_quota(company)
    assert store.consume_quota(company)[0] is True


def test_every_change_moves_source_modified_date_past_any_the_store_holds():
    clock = Clock()  # frozen: every change happens at the same instant
    later_today = clock.now + timedelta(hours=3)
    seeded = bill(1)
    seeded.source_modified_date = later_today  # a seeded record dated after "now"
    store, company, connection = linked_store([seeded, bill(2)], clock)
    changed = [
        store.record_external_payment(company, connection, "b1", Decimal("1.00")),
        store.record_external_payment(company, connection, "b2", Decimal("1.00")),
        store.record_external_payment(company, connection, "b1", Decimal("1.00")),
    ]
    stamps = [b["sourceModifiedDate"] for b in changed]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 3
    assert stamps[0] > later_today.strftime("%Y-%m-%dT%H:%M:%S")


def test_deauthorize_and_cancel_record_codats_connection_errors():
    store, company, connection = linked_store()
    deauthorized = store.deauthorize_connection(company, connection)
    assert deauthorized["status"] == "Deauthorized"
    assert deauthorized["dataConnectionErrors"][-1]["statusCode"] == "401"
    again = store.deauthorize_connection(company, connection)
    assert len(again["dataConnectionErrors"]) == 1  # deauthorizing twice records it once
    cancelled = store.fail_connection(company, connection, "User cancelled", "403", "Cancelled")
    assert (cancelled["status"], cancelled["dataConnectionErrors"][-1]["statusCode"]) == (
        "Deauthorized",
        "403",
    )
