"""The payments table (DynamoDB): the only module that reads or writes it.

One item collection per company (partition key `companyId`), sort key `itemKey`:

    payment#<paymentId>   a payment (`PaymentRecord`), every write conditional on its version
    bill#<billId>         which payment of the bill is in flight (`holder`), while one is

A payment's history lives with it, so the table is the audit trail of every payment the product
made: point-in-time recovery on, retained in prod (infra/constructs/state.py).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from billpay.core.dynamo import from_dynamo, to_dynamo
from billpay.payments.models import PaymentRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PARTITION_KEY = "companyId"
SORT_KEY = "itemKey"
PAYMENT_PREFIX = "payment#"
BILL_PREFIX = "bill#"


class DynamoPaymentStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- payments --------------------------------------------------------------------------------

    def get(self, company_id: str, payment_id: str) -> PaymentRecord | None:
        item = self._client.get_item(
            TableName=self._table,
            Key=_key(company_id, PAYMENT_PREFIX + payment_id),
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return PaymentRecord.model_validate(from_dynamo(item))

    def create(self, record: PaymentRecord) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(record),
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": SORT_KEY},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def replace(self, record: PaymentRecord, expected_version: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(record),
                ConditionExpression="#v = :expected",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- one payment of a bill in flight ---------------------------------------------------------

    def lock_bill(self, company_id: str, bill_id: str, payment_id: str, now: datetime) -> str:
        # One atomic update: the holder stays whoever got there first.
        answer = self._client.update_item(
            TableName=self._table,
            Key=_key(company_id, BILL_PREFIX + bill_id),
            UpdateExpression="SET holder = if_not_exists(holder, :me), since = if_not_exists(since, :now)",
            ExpressionAttributeValues={":me": {"S": payment_id}, ":now": {"S": _instant(now)}},
            ReturnValues="ALL_NEW",
        )
        return answer["Attributes"]["holder"]["S"]

    def take_over_bill(
        self, company_id: str, bill_id: str, stale_holder: str, payment_id: str, now: datetime
    ) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(company_id, BILL_PREFIX + bill_id),
                UpdateExpression="SET holder = :me, since = :now",
                ConditionExpression="holder = :stale",
                ExpressionAttributeValues={
                    ":me": {"S": payment_id},
                    ":now": {"S": _instant(now)},
                    ":stale": {"S": stale_holder},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def bill_holders(self, company_id: str) -> list[str]:
        """The payments holding a bill of the company: those in flight (one Query on the
        company's `bill#` items, a handful at most; never a scan)."""
        holders: list[str] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "#c = :c AND begins_with(#k, :bill)",
                "ExpressionAttributeNames": {"#c": PARTITION_KEY, "#k": SORT_KEY},
                "ExpressionAttributeValues": {
                    ":c": {"S": company_id},
                    ":bill": {"S": BILL_PREFIX},
                },
                "ConsistentRead": True,
            }
            if start:
                request["ExclusiveStartKey"] = start
            page = self._client.query(**request)
            holders.extend(item["holder"]["S"] for item in page["Items"] if "holder" in item)
            start = page.get("LastEvaluatedKey")
            if not start:
                return holders

    def unlock_bill(self, company_id: str, bill_id: str, payment_id: str) -> None:
        # Held by another payment (or by none): the condition fails and nothing changes.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self._table,
                Key=_key(company_id, BILL_PREFIX + bill_id),
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": payment_id}},
            )


def _key(company_id: str, item_key: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": company_id}, SORT_KEY: {"S": item_key}}


def _item(record: PaymentRecord) -> dict[str, Any]:
    fields = record.to_item()
    return {
        **to_dynamo(fields),
        **_key(record.company_id, PAYMENT_PREFIX + record.payment_id),
    }


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
