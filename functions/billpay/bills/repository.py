"""The payables table (DynamoDB): the only module that reads or writes it.

One item collection per company (partition key `companyId`), sort key `recordKey`:

    bill#<billId>          a bill; also in the byDueDate and byStatusDueDate local indexes
    supplier#<supplierId>  a supplier
    accounts               the payment accounts, one item holding the whole (short) list
    sync#<dataType>        the sync's watermark for bills or suppliers
    request#<requestId>    the ledger of the product's writes through Codat (see billpay.bills.writes)

Local secondary indexes, so a company's bills are read by due date or by status and due date with
a Query on one partition, never a Scan:
    byDueDate        sort key `dueDate` ("2026-01-31")
    byStatusDueDate  sort key `statusDueDate` ("Open#2026-01-31")
Only bills carry these attributes, so only bills are in the indexes.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from billpay.bills.models import BillRecord, PaymentAccount, SupplierRecord, SyncedRecord
from billpay.bills.ports import DataType, SaveResult

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

PARTITION_KEY = "companyId"
SORT_KEY = "recordKey"
BY_DUE_DATE = "byDueDate"
BY_STATUS_DUE_DATE = "byStatusDueDate"
BILL_PREFIX = "bill#"
SUPPLIER_PREFIX = "supplier#"
ACCOUNTS_KEY = "accounts"
# DynamoDB's limits: 100 keys per BatchGetItem, 100 actions per TransactWriteItems.
_BATCH = 100
_CONFLICT_RETRIES = 5
# Why DynamoDB cancelled a transaction, for the items worth sending again: "None" is an item that
# was fine but went down with another one.
_RETRYABLE_CANCELLATIONS = frozenset({"None", "TransactionConflict", "ThrottlingError"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def record_key(record: SyncedRecord) -> str:
    return _prefix(record) + record.record_id


def _prefix(record: SyncedRecord) -> str:
    if isinstance(record, BillRecord):
        return BILL_PREFIX
    if isinstance(record, SupplierRecord):
        return SUPPLIER_PREFIX
    raise TypeError(f"{type(record).__name__} is not stored one item per record")


class DynamoPayablesRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- the sync's writes ----------------------------------------------------------------------

    def save_newer(self, company_id: str, records: Sequence[SyncedRecord]) -> SaveResult:
        """Compare with what is stored (one BatchGetItem per 100), then write the newer records
        (one TransactWriteItems per 100), each conditional on what it replaces."""
        newest: dict[str, SyncedRecord] = {}
        for record in records:  # a page could list a record twice: keep its latest version
            key = record_key(record)
            held = newest.get(key)
            if held is None or record.is_newer_than(held.source_modified_date, held.digest()):
                newest[key] = record
        reads = writes = written = 0
        for chunk in _chunks(list(newest.items()), _BATCH):
            stored, calls = self._stored_versions(company_id, [key for key, _ in chunk])
            reads += calls
            changed = [
                (key, record)
                for key, record in chunk
                if record.is_newer_than(*stored.get(key, (None, None)))
            ]
            if changed:
                count, calls = self._write_conditionally(company_id, changed)
                written += count
                writes += calls
        return SaveResult(
            written=written,
            unchanged=len(records) - written,
            read_requests=reads,
            write_requests=writes,
        )

    def _stored_versions(
        self, company_id: str, keys: list[str]
    ) -> tuple[dict[str, tuple[datetime | None, str | None]], int]:
        request: Any = {
            self._table: {
                "Keys": [_key(company_id, key) for key in keys],
                "ProjectionExpression": "#k, sourceModifiedDate, digest",
                "ExpressionAttributeNames": {"#k": SORT_KEY},
            }
        }
        found: dict[str, tuple[datetime | None, str | None]] = {}
        calls = 0
        while request:
            answer = self._client.batch_get_item(RequestItems=request)
            calls += 1
            for item in answer["Responses"].get(self._table, []):
                modified = item.get("sourceModifiedDate", {}).get("S")
                found[item[SORT_KEY]["S"]] = (
                    datetime.fromisoformat(modified) if modified else None,
                    item.get("digest", {}).get("S"),
                )
            request = answer.get("UnprocessedKeys") or {}
            if request:
                time.sleep(0.05 * calls)
        return found, calls

    def _write_conditionally(
        self, company_id: str, changed: list[tuple[str, SyncedRecord]]
    ) -> tuple[int, int]:
        """Write each record unless the stored one became newer meanwhile; (written, calls)."""
        pending = dict(changed)
        calls = 0
        for attempt in range(_CONFLICT_RETRIES):
            actions = [self._conditional_update(company_id, k, r) for k, r in pending.items()]
            calls += 1
            try:
                self._client.transact_write_items(
                    TransactItems=actions, ClientRequestToken=_request_token(company_id, pending)
                )
            except self._client.exceptions.TransactionCanceledException as cancelled:
                reasons = cancelled.response.get("CancellationReasons", [])
                retry: dict[str, SyncedRecord] = {}
                for (key, record), reason in zip(pending.items(), reasons, strict=True):
                    code = reason.get("Code", "None")
                    if code == "ConditionalCheckFailed":
                        continue  # another run stored a newer version: keep it
                    if code not in _RETRYABLE_CANCELLATIONS:
                        raise
                    retry[key] = record  # cancelled because of another item, or a conflict
                pending = retry
                if not pending:
                    return 0, calls  # a cancelled transaction wrote nothing
                time.sleep(0.02 * (attempt + 1))
                continue
            return len(pending), calls
        raise RuntimeError(f"{len(pending)} records kept conflicting; the step will be retried")

    def _conditional_update(
        self, company_id: str, key: str, record: SyncedRecord
    ) -> TransactWriteItemTypeDef:
        fields = {**_attributes(record.synced_fields()), **_index_attributes(record)}
        fields["digest"] = record.digest()
        fields["syncedAt"] = _instant(datetime.now(UTC))
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": _serializer.serialize(value) for i, value in enumerate(fields.values())}
        update = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        if record.source_modified_date is None:
            # Undated (voided or deleted): final, so it replaces any other version.
            condition = "attribute_not_exists(#k) OR digest <> :digest"
            values[":digest"] = {"S": record.digest()}
        else:
            condition = "attribute_not_exists(#k) OR sourceModifiedDate < :modified"
            values[":modified"] = {"S": _instant(record.source_modified_date)}
        return {
            "Update": {
                "TableName": self._table,
                "Key": _key(company_id, key),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {**names, "#k": SORT_KEY},
                "ExpressionAttributeValues": values,
            }
        }

    def replace_payment_accounts(
        self, company_id: str, accounts: Sequence[PaymentAccount], listed_at: datetime
    ) -> bool:
        item = {
            PARTITION_KEY: company_id,
            SORT_KEY: ACCOUNTS_KEY,
            "accounts": [_attributes(a.synced_fields()) for a in accounts],
            "listedAt": _instant(listed_at),
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_dynamo(item),
                ConditionExpression="attribute_not_exists(#k) OR listedAt < :listed",
                ExpressionAttributeNames={"#k": SORT_KEY},
                ExpressionAttributeValues={":listed": {"S": _instant(listed_at)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False  # a later listing is stored already
        return True

    def watermark(self, company_id: str, data_type: DataType) -> datetime | None:
        item = self._client.get_item(
            TableName=self._table, Key=_key(company_id, _sync_key(data_type)), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return datetime.fromisoformat(item["watermark"]["S"])

    def advance_watermark(self, company_id: str, data_type: DataType, to: datetime) -> None:
        mark = _instant(to)
        # Another run that already went further makes the condition fail: its mark stays.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key=_key(company_id, _sync_key(data_type)),
                UpdateExpression="SET watermark = :mark",
                ConditionExpression="attribute_not_exists(watermark) OR watermark < :mark",
                ExpressionAttributeValues={":mark": {"S": mark}},
            )

    # -- the product's reads --------------------------------------------------------------------

    def bill(self, company_id: str, bill_id: str) -> BillRecord | None:
        item = self._get(company_id, BILL_PREFIX + bill_id)
        return None if item is None else BillRecord.model_validate(item)

    def supplier(self, company_id: str, supplier_id: str) -> SupplierRecord | None:
        item = self._get(company_id, SUPPLIER_PREFIX + supplier_id)
        return None if item is None else SupplierRecord.model_validate(item)

    def payment_accounts(self, company_id: str) -> list[PaymentAccount]:
        item = self._get(company_id, ACCOUNTS_KEY)
        if item is None:
            return []
        return [PaymentAccount.model_validate(account) for account in item["accounts"]]

    def _get(self, company_id: str, key: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=_key(company_id, key), ConsistentRead=True
        ).get("Item")
        return None if item is None else _from_dynamo(item)


def _sync_key(data_type: DataType) -> str:
    return f"sync#{data_type}"


def _key(company_id: str, key: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": company_id}, SORT_KEY: {"S": key}}


def _index_attributes(record: SyncedRecord) -> dict[str, Any]:
    if isinstance(record, BillRecord):
        due = record.due_date.isoformat()
        return {"dueDate": due, "statusDueDate": f"{record.status}#{due}"}
    return {}


def _instant(moment: datetime) -> str:
    """Fixed-width UTC, so that DynamoDB's string order is time order."""
    if moment.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _attributes(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A model's JSON fields as DynamoDB values: amounts as numbers (Decimal), instants fixed-width."""
    return {name: _attribute(value) for name, value in fields.items()}


def _attribute(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _attribute(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_attribute(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        raise TypeError("floats never reach the table: amounts are Decimal")
    return value


def _request_token(company_id: str, records: Mapping[str, SyncedRecord]) -> str:
    """Makes a transaction botocore re-sends after a lost answer idempotent (10 minutes)."""
    digest = hashlib.sha256(company_id.encode())
    for key, record in records.items():
        digest.update(f"{key}={record.digest()};".encode())
    return digest.hexdigest()[:36]


def _to_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items()}


def _from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
