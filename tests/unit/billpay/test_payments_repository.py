"""The payments table adapter and the payments listed on a bill, on moto (no sockets)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billpay.bills.models import BillStatus, ProductPayment
from billpay.bills.repository import DynamoPayablesRepository
from billpay.payments import repository
from billpay.payments.models import BillSnapshot, PaymentRecord, PaymentRequest, PaymentStatus
from billpay.payments.repository import DynamoPaymentStore

from .payments_fakes import T0, open_bill


@pytest.fixture
def store(aws):
    """The payments table as the state stack defines it (infra/constructs/state.py)."""
    aws("dynamodb").create_table(
        TableName="payments",
        KeySchema=[
            {"AttributeName": repository.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": repository.SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": repository.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": repository.SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoPaymentStore(aws("dynamodb"), "payments")


def payment(payment_id: str = "pay-1", amount: str = "10.50") -> PaymentRecord:
    request = PaymentRequest.model_validate(
        {
            "paymentId": payment_id,
            "amount": amount,
            "date": "2026-11-25",
            "accountId": "acc-1",
            "currencyRate": "1.123456789",
        }
    )
    return PaymentRecord(
        company_id="smb-1",
        payment_id=payment_id,
        intent=request.intent("bill-1"),
        currency="GBP",
        status=PaymentStatus.PENDING,
        reason="accepted",
        created_at=T0,
        updated_at=T0,
        accepted_bill=BillSnapshot(
            amount_due=Decimal("100.00"), status=BillStatus.OPEN, taken_at=T0
        ),
    )


def test_a_payment_round_trips_exactly(store):
    record = payment()
    assert store.create(record)
    stored = store.get("smb-1", "pay-1")
    assert stored == record
    assert stored.intent.amount == Decimal("10.50")
    assert str(stored.intent.currency_rate) == "1.123456789"
    assert stored.accepted_bill.amount_due == Decimal("100.00")
    assert store.get("smb-1", "pay-2") is None


def test_create_refuses_a_second_payment_with_the_id(store):
    assert store.create(payment())
    assert not store.create(payment(amount="99.00"))
    assert store.get("smb-1", "pay-1").intent.amount == Decimal("10.50")


def test_replace_is_conditional_on_the_version(store):
    record = payment()
    store.create(record)
    moved = record.moved_to(PaymentStatus.SUBMITTED, "sent", T0 + timedelta(seconds=1))
    assert store.replace(moved.model_copy(update={"version": 1}), expected_version=0)
    assert not store.replace(moved.model_copy(update={"version": 1}), expected_version=0)
    stored = store.get("smb-1", "pay-1")
    assert stored.status is PaymentStatus.SUBMITTED
    assert [t.status for t in stored.history] == [PaymentStatus.PENDING, PaymentStatus.SUBMITTED]


def test_one_payment_holds_a_bill_until_it_lets_go(store):
    assert store.lock_bill("smb-1", "bill-1", "pay-1", T0) == "pay-1"
    assert store.lock_bill("smb-1", "bill-1", "pay-2", T0) == "pay-1"
    assert store.lock_bill("smb-1", "bill-2", "pay-2", T0) == "pay-2"
    assert store.lock_bill("smb-2", "bill-1", "pay-3", T0) == "pay-3"
    store.unlock_bill("smb-1", "bill-1", "pay-2")  # not the holder: nothing happens
    assert store.lock_bill("smb-1", "bill-1", "pay-2", T0) == "pay-1"
    store.unlock_bill("smb-1", "bill-1", "pay-1")
    assert store.lock_bill("smb-1", "bill-1", "pay-2", T0) == "pay-2"


def test_every_taker_after_the_first_is_told_the_first(store):
    # One UpdateItem with if_not_exists: atomic in DynamoDB (moto's is not across threads).
    holders = {store.lock_bill("smb-1", "bill-1", f"pay-{n}", T0) for n in range(16)}
    assert holders == {"pay-0"}


def test_a_stale_holder_is_taken_over_once(store):
    store.lock_bill("smb-1", "bill-1", "pay-1", T0)
    assert store.take_over_bill("smb-1", "bill-1", "pay-1", "pay-2", T0)
    assert not store.take_over_bill("smb-1", "bill-1", "pay-1", "pay-3", T0)
    assert store.lock_bill("smb-1", "bill-1", "pay-4", T0) == "pay-2"


# --- the payments listed on the bill (the payables table) ---------------------------------------


def listed(payment_id: str, status: str, amount: str = "10.00") -> ProductPayment:
    return ProductPayment.model_validate(
        {"paymentId": payment_id, "amount": Decimal(amount), "status": status, "updatedAt": T0}
    )


def test_a_bills_payments_are_listed_with_the_bill_in_order_and_updated_in_place(
    aws, payables_table
):
    payables = DynamoPayablesRepository(aws("dynamodb"), payables_table)
    payables.save_newer("smb-1", [open_bill()])
    payables.record_payment("smb-1", "bill-1", listed("pay-1", "PENDING"))
    payables.record_payment("smb-1", "bill-1", listed("pay-2", "PENDING", "5.00"))
    payables.record_payment("smb-1", "bill-1", listed("pay-1", "PAID"))
    bill = payables.bill("smb-1", "bill-1")
    assert [(p.payment_id, p.status, p.amount) for p in bill.payments] == [
        ("pay-1", "PAID", Decimal("10.00")),
        ("pay-2", "PENDING", Decimal("5.00")),
    ]
    # The sync rewriting the bill leaves its payments alone.
    payables.save_newer("smb-1", [open_bill(source_modified_date=T0 + timedelta(days=1))])
    assert len(payables.bill("smb-1", "bill-1").payments) == 2


def test_a_payment_listed_late_from_an_older_record_version_changes_nothing(aws, payables_table):
    # Given the webhook processor or an operator listed version 6 (PAID) of the payment
    payables = DynamoPayablesRepository(aws("dynamodb"), payables_table)
    payables.save_newer("smb-1", [open_bill()])
    payables.record_payment("smb-1", "bill-1", listed("pay-1", "PAID"), version=6)
    # When the workflow's listing of version 5 (UNKNOWN) lands after it, and again the same one
    payables.record_payment("smb-1", "bill-1", listed("pay-1", "UNKNOWN"), version=5)
    payables.record_payment("smb-1", "bill-1", listed("pay-1", "UNKNOWN"), version=6)
    # Then the bill still lists the newest state; a newer version replaces it
    assert [p.status for p in payables.bill("smb-1", "bill-1").payments] == ["PAID"]
    payables.record_payment("smb-1", "bill-1", listed("pay-1", "PAID", "10.00"), version=7)
    payables.record_payment("smb-1", "bill-1", listed("pay-2", "PENDING"), version=0)
    listing = payables.bill("smb-1", "bill-1").payments
    assert [(p.payment_id, p.status, str(p.amount)) for p in listing] == [
        ("pay-1", "PAID", "10.00"),  # in the bill's places again (DynamoDB keeps 10)
        ("pay-2", "PENDING", "10.00"),
    ]


def test_a_payment_listed_while_another_is_being_listed_does_not_erase_it(aws, payables_table):
    # moto's conditional writes are not atomic across threads, so the race is staged: another
    # writer lists pay-2 between this writer's read and its write.
    payables = DynamoPayablesRepository(aws("dynamodb"), payables_table)
    other = DynamoPayablesRepository(aws("dynamodb"), payables_table)
    payables.save_newer("smb-1", [open_bill()])
    payables.record_payment("smb-1", "bill-1", listed("pay-0", "PAID"))
    put_item = payables._client.put_item
    raced = []

    def put_after_a_rival(**kwargs):
        if not raced:
            raced.append(True)
            other.record_payment("smb-1", "bill-1", listed("pay-2", "PENDING"))
        return put_item(**kwargs)

    payables._client = type("Client", (), {})()
    payables._client.put_item = put_after_a_rival
    payables._client.get_item = other._client.get_item
    payables._client.exceptions = other._client.exceptions
    payables.record_payment("smb-1", "bill-1", listed("pay-1", "PENDING"))
    assert raced
    assert [p.payment_id for p in other.bill("smb-1", "bill-1").payments] == [
        "pay-0",
        "pay-2",
        "pay-1",
    ]
