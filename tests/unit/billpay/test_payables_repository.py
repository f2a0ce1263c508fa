"""The payables table adapter against moto's DynamoDB (in-process: no sockets)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billpay.bills.models import BillStatus
from billpay.bills.ports import BillFilter, DataType
from billpay.bills.repository import DynamoPayablesRepository

from .payables_fakes import T0, account, bill, supplier


@pytest.fixture
def calls(aws):
    """DynamoDB operations the repository made (botocore's before-call event)."""
    made = []
    client = aws("dynamodb")
    client.meta.events.register(
        "before-parameter-build.dynamodb.*",
        lambda model, params, **_: made.append((model.name, params.get("IndexName"))),
    )
    return client, made


@pytest.fixture
def repository(calls, payables_table):
    return DynamoPayablesRepository(calls[0], payables_table)


def test_records_round_trip_with_decimal_amounts_and_dates(repository):
    stored = bill(1, total_amount=Decimal("1234.50"), amount_due=Decimal("0.10"))
    result = repository.save_newer("smb-1", [stored, supplier(1)])
    assert result.written == 2
    read = repository.bill("smb-1", "bill-1")
    assert read == stored
    assert read.total_amount == Decimal("1234.50")
    assert str(read.amount_due) == "0.10"  # the currency's places, though DynamoDB says 0.1
    assert repository.supplier("smb-1", "sup-1") == supplier(1)
    assert repository.bill("smb-2", "bill-1") is None


def test_only_newer_versions_are_written_and_unchanged_ones_cost_no_write(repository, calls):
    repository.save_newer("smb-1", [bill(n) for n in range(150)])
    calls[1].clear()
    later = T0 + timedelta(hours=1)
    result = repository.save_newer(
        "smb-1",
        [bill(n) for n in range(150)]  # the same again
        + [bill(1, later, BillStatus.PAID)]  # newer
        + [bill(2, T0 - timedelta(hours=1), BillStatus.VOID)],  # older
    )
    operations = sorted(name for name, _ in calls[1])
    assert operations == ["BatchGetItem", "BatchGetItem", "TransactWriteItems"]
    assert result.written == 1
    assert result.unchanged == 151
    assert repository.bill("smb-1", "bill-1").status is BillStatus.PAID
    assert repository.bill("smb-1", "bill-2").status is BillStatus.OPEN


def test_a_newer_version_stored_between_compare_and_write_wins(repository):
    # Another run stores a newer version after this one compared: the conditional write refuses.
    repository.save_newer("smb-1", [bill(1)])
    stale = bill(1, T0 + timedelta(minutes=1), BillStatus.PAID)
    newer = bill(1, T0 + timedelta(minutes=2), BillStatus.VOID)
    repository.save_newer("smb-1", [newer])
    written, _ = repository._write_conditionally(
        "smb-1", [("bill#bill-1", stale), ("bill#bill-9", bill(9))]
    )
    assert written == 1  # bill-9 only, after one retry without bill-1
    assert repository.bill("smb-1", "bill-1").status is BillStatus.VOID
    assert repository.bill("smb-1", "bill-9") == bill(9)


def test_an_undated_version_is_final(repository):
    repository.save_newer("smb-1", [bill(1)])
    voided = bill(1, status=BillStatus.VOID).model_copy(update={"source_modified_date": None})
    assert repository.save_newer("smb-1", [voided]).written == 1
    assert repository.save_newer("smb-1", [bill(1, T0 + timedelta(days=1))]).written == 0
    assert repository.bill("smb-1", "bill-1").status is BillStatus.VOID


def test_the_sync_never_touches_the_payments_the_product_recorded(repository, calls):
    repository.save_newer("smb-1", [bill(1)])
    # The payments capability keeps its list in its own item, next to the bill's
    payment = {"paymentId": {"S": "p1"}, "amount": {"N": "20"}, "status": {"S": "Paid"}}
    calls[0].put_item(
        TableName="payables",
        Item={
            "companyId": {"S": "smb-1"},
            "recordKey": {"S": "payments#bill-1"},
            "payments": {"L": [{"M": payment}]},
        },
    )
    repository.save_newer("smb-1", [bill(1, T0 + timedelta(days=1), BillStatus.PARTIALLY_PAID)])
    stored = repository.bill("smb-1", "bill-1")
    assert stored.status is BillStatus.PARTIALLY_PAID
    assert [(p.payment_id, p.amount) for p in stored.payments] == [("p1", Decimal(20))]
    listed, _ = repository.query_bills("smb-1", BillFilter(), 10, None)
    assert [p.payment_id for p in listed[0].payments] == ["p1"]


def test_watermarks_only_rise(repository):
    assert repository.watermark("smb-1", DataType.BILLS) is None
    repository.advance_watermark("smb-1", DataType.BILLS, T0)
    repository.advance_watermark("smb-1", DataType.BILLS, T0 - timedelta(days=1))
    assert repository.watermark("smb-1", DataType.BILLS) == T0
    assert repository.watermark("smb-1", DataType.SUPPLIERS) is None


def test_payment_accounts_are_replaced_by_a_later_listing_only(repository):
    assert repository.payment_accounts("smb-1") == []
    assert repository.replace_payment_accounts("smb-1", [account(1), account(2)], T0) is True
    assert repository.replace_payment_accounts("smb-1", [account(3)], T0 - timedelta(1)) is False
    assert [a.account_id for a in repository.payment_accounts("smb-1")] == ["acc-1", "acc-2"]
    assert repository.replace_payment_accounts("smb-1", [account(3)], T0 + timedelta(1)) is True
    assert [a.account_id for a in repository.payment_accounts("smb-1")] == ["acc-3"]


def test_bills_are_queried_by_status_and_due_date_through_the_indexes(repository, calls):
    statuses = [BillStatus.OPEN, BillStatus.PAID, BillStatus.VOID]
    repository.save_newer("smb-1", [bill(n, status=statuses[n % 3]) for n in range(60)])
    repository.save_newer("smb-2", [bill(n) for n in range(5)])
    calls[1].clear()

    def everything(where, limit=7):
        found, start = [], None
        while True:
            page, start = repository.query_bills("smb-1", where, limit, start)
            assert len(page) <= limit
            found += page
            if start is None:
                return found

    open_bills = everything(BillFilter(status=BillStatus.OPEN))
    assert len(open_bills) == 20
    assert {b.status for b in open_bills} == {BillStatus.OPEN}
    assert [b.due_date for b in open_bills] == sorted(b.due_date for b in open_bills)

    after, before = date(2026, 11, 5), date(2026, 11, 10)
    window = everything(BillFilter(due_after=after, due_before=before))
    assert window
    assert all(after < b.due_date < before for b in window)
    assert len(window) == len([n for n in range(60) if after < bill(n).due_date < before])

    paid_window = everything(BillFilter(status=BillStatus.PAID, due_after=after, due_before=before))
    assert paid_window
    assert all(b.status is BillStatus.PAID and after < b.due_date < before for b in paid_window)

    assert len(everything(BillFilter())) == 60  # smb-2's bills are not in smb-1's partition
    queries = [index for name, index in calls[1] if name == "Query"]
    assert {name for name, _ in calls[1]} == {"Query", "BatchGetItem"}  # + the payments
    assert set(queries) == {"byDueDate", "byStatusDueDate"}


def test_suppliers_are_listed_from_the_company_partition(repository, calls):
    repository.save_newer("smb-1", [supplier(n) for n in range(12)] + [bill(1)])
    calls[1].clear()
    page, start = repository.list_suppliers("smb-1", 10, None)
    rest, end = repository.list_suppliers("smb-1", 10, start)
    assert end is None
    assert len(page) + len(rest) == 12
    assert [name for name, _ in calls[1]] == ["Query", "Query"]
