"""The payables table (DynamoDB): the only module that reads or writes it.

One item collection per company (partition key `companyId`), sort key `recordKey`:

    bill#<billId>          a bill as Codat last reported it (written by the sync only); also in the
                           byDueDate and byStatusDueDate local indexes
    payments#<billId>      the payments the product made on that bill (`payments`, a list written
                           by the payments capability only): one writer per item, so neither
                           overwrites the other's part of the bill
    supplier#<supplierId>  a supplier
    accounts               the payment accounts, one item holding the whole (short) list
    sync#<dataType>        the sync's watermark for bills or suppliers
    run#<runId>            where a sync run is (its cursor, saved after each page); TTL'd
    request#<requestId>    the ledger of the product's writes through Codat (see billpay.bills.writes),
                           deleted by DynamoDB's TTL (`expiresAt`) after REQUEST_RETENTION

Local secondary indexes, so a company's bills are read by due date or by status and due date with
a Query on one partition, never a Scan:
    byDueDate        sort key `dueDate` ("2026-01-31")
    byStatusDueDate  sort key `statusDueDate` ("Open#2026-01-31")
Only bills carry these attributes, so only bills are in the indexes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from billpay.bills.models import (
    BillRecord,
    PaymentAccount,
    ProductPayment,
    RequestState,
    SupplierRecord,
    SyncedRecord,
    WriteRequest,
)
from billpay.bills.ports import BillFilter, DataType, SaveResult, StartKey
from billpay.core.dynamo import from_dynamo, to_attribute, to_dynamo
from billpay.core.money import to_money

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

PARTITION_KEY = "companyId"
SORT_KEY = "recordKey"
BY_DUE_DATE = "byDueDate"
BY_STATUS_DUE_DATE = "byStatusDueDate"
BILL_PREFIX = "bill#"
SUPPLIER_PREFIX = "supplier#"
PAYMENTS_PREFIX = "payments#"
REQUEST_PREFIX = "request#"
RUN_PREFIX = "run#"
# A run's saved cursor outlives the longest run (the state machine's timeout) by far.
RUN_RETENTION = timedelta(days=7)
# How long a request id is remembered: a retry after that is a new request.
REQUEST_RETENTION = timedelta(days=30)
ACCOUNTS_KEY = "accounts"
# DynamoDB's limits: 100 keys per BatchGetItem, 100 actions per TransactWriteItems.
_BATCH = 100
_CONFLICT_RETRIES = 5
# Why DynamoDB cancelled a transaction, for the items worth sending again: "None" is an item that
# was fine but went down with another one.
_RETRYABLE_CANCELLATIONS = frozenset({"None", "TransactionConflict", "ThrottlingError"})

R = TypeVar("R", bound=SyncedRecord)


class WritesKeptConflictingError(Exception):
    """Other writers kept cancelling this page's transaction: the sync step is retried."""


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
            actions = [self._conditional_put(company_id, k, r) for k, r in pending.items()]
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
        raise WritesKeptConflictingError(
            f"{len(pending)} records kept conflicting with other writers; the step is retried"
        )

    def _conditional_put(
        self, company_id: str, key: str, record: SyncedRecord
    ) -> TransactWriteItemTypeDef:
        item = {
            PARTITION_KEY: company_id,
            SORT_KEY: key,
            **_attributes(record.synced_fields()),
            **_index_attributes(record),
            "digest": record.digest(),
            "syncedAt": _instant(datetime.now(UTC)),
        }
        values: dict[str, Any]
        if record.source_modified_date is None:
            # Undated (voided or deleted): final, so it replaces any other version.
            condition = "attribute_not_exists(#k) OR digest <> :digest"
            values = {":digest": {"S": record.digest()}}
        else:
            condition = "attribute_not_exists(#k) OR sourceModifiedDate < :modified"
            values = {":modified": {"S": _instant(record.source_modified_date)}}
        return {
            "Put": {
                "TableName": self._table,
                "Item": to_dynamo(item),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#k": SORT_KEY},
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
                Item=to_dynamo(item),
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

    def add_payment_account(self, company_id: str, account: PaymentAccount, at: datetime) -> None:
        """Add an account the product just created to the stored listing, dated `at`: a listing
        taken before then, which may not have it, no longer replaces it."""
        for _ in range(_CONFLICT_RETRIES):
            item = self._get(company_id, ACCOUNTS_KEY) or {"accounts": [], "listedAt": ""}
            accounts = [a for a in item["accounts"] if a["id"] != account.account_id]
            accounts.append(_attributes(account.synced_fields()))
            stored = {
                PARTITION_KEY: company_id,
                SORT_KEY: ACCOUNTS_KEY,
                "accounts": accounts,
                "listedAt": max(_instant(at), item["listedAt"]),
            }
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=to_dynamo(stored),
                    # Unchanged since read (no item reads as listedAt ""): else read again.
                    ConditionExpression="attribute_not_exists(#k) OR listedAt = :seen",
                    ExpressionAttributeNames={"#k": SORT_KEY},
                    ExpressionAttributeValues={":seen": {"S": item["listedAt"]}},
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                continue
            return
        raise RuntimeError(f"the payment accounts of {company_id!r} kept changing")

    # -- the payments capability's write --------------------------------------------------------

    def record_payment(
        self, company_id: str, bill_id: str, payment: ProductPayment, version: int | None = None
    ) -> None:
        """List `payment` on the bill (`payments#<billId>`), replacing the entry with its id.

        Conditional on the list it read, so two payments of one bill listed at the same moment
        (one accepted while the other moves on) both stay. `version` is the payment record's:
        an entry listed from an older version than the one listed already changes nothing, so
        writers that list the same payment late or out of order (the workflow, the webhook
        processor, an operator) never take the bill back to an older status.
        """
        key = _key(company_id, PAYMENTS_PREFIX + bill_id)
        entry = _attributes(payment.model_dump(by_alias=True))
        for _ in range(_CONFLICT_RETRIES):
            item = self._get(company_id, PAYMENTS_PREFIX + bill_id)
            listed = [] if item is None else list(item.get("payments", []))
            versions = {} if item is None else dict(item.get("paymentVersions", {}))
            item_version = 0 if item is None else int(item.get("version", 0))
            seen = versions.get(payment.payment_id)
            if version is not None and seen is not None and int(seen) >= version:
                return  # a newer (or the same) state of this payment is listed already
            ids = [p.get("paymentId") for p in listed]
            if payment.payment_id in ids:  # in place: the list stays in the order of acceptance
                listed[ids.index(payment.payment_id)] = entry
            else:
                listed.append(entry)
            if version is not None:
                versions[payment.payment_id] = version
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **key,
                        **to_dynamo(
                            {
                                "payments": listed,
                                "paymentVersions": versions,
                                "version": item_version + 1,
                            }
                        ),
                    },
                    ConditionExpression="attribute_not_exists(#v) OR #v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": {"N": str(item_version)}},
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                continue
            return
        raise RuntimeError(f"the payments of bill {bill_id!r} kept changing; not recorded")

    # -- the ledger of the product's writes -----------------------------------------------------

    def begin_request(self, company_id: str, request: WriteRequest) -> WriteRequest | None:
        """Record `request` as PENDING; None if this call recorded it, else the one recorded."""
        item = {
            PARTITION_KEY: company_id,
            SORT_KEY: REQUEST_PREFIX + request.request_id,
            **_attributes(request.model_dump(by_alias=True)),
            # DynamoDB's TTL deletes it after that (within two days); reads check it too.
            "expiresAt": int((request.created_at + REQUEST_RETENTION).timestamp()),
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_dynamo(item),
                ConditionExpression="attribute_not_exists(#k) OR expiresAt < :now",
                ExpressionAttributeNames={"#k": SORT_KEY},
                ExpressionAttributeValues={":now": {"N": str(int(request.created_at.timestamp()))}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            stored = self._get(company_id, REQUEST_PREFIX + request.request_id)
            if stored is None:  # expired and deleted in between: record it again
                return self.begin_request(company_id, request)
            return WriteRequest.model_validate(stored)
        return None

    def request(self, company_id: str, request_id: str) -> WriteRequest | None:
        item = self._get(company_id, REQUEST_PREFIX + request_id)
        if item is None or item["expiresAt"] < int(datetime.now(UTC).timestamp()):
            return None  # DynamoDB deletes expired items within two days, not at once
        return WriteRequest.model_validate(item)

    def next_attempt(self, company_id: str, request_id: str, expected: int, at: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(company_id, REQUEST_PREFIX + request_id),
                UpdateExpression="SET attempt = :next, attemptAt = :at, attemptEnded = :no",
                ConditionExpression="attempt = :expected",
                ExpressionAttributeValues={
                    ":next": {"N": str(expected + 1)},
                    ":expected": {"N": str(expected)},
                    ":at": {"S": _instant(at)},
                    ":no": {"BOOL": False},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False  # another retry moved it first
        return True

    def end_attempt(self, company_id: str, request_id: str, attempt: int) -> None:
        # Only the attempt that ended: a newer attempt under way stays in progress.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key=_key(company_id, REQUEST_PREFIX + request_id),
                UpdateExpression="SET attemptEnded = :yes",
                ConditionExpression="attempt = :attempt",
                ExpressionAttributeValues={
                    ":yes": {"BOOL": True},
                    ":attempt": {"N": str(attempt)},
                },
            )

    def settle_request(
        self, company_id: str, request_id: str, state: RequestState, outcome: dict[str, Any]
    ) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_key(company_id, REQUEST_PREFIX + request_id),
            UpdateExpression="SET #s = :state, outcome = :outcome",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":state": {"S": state.value},
                ":outcome": to_attribute(_attributes(outcome)),
            },
        )

    def pending_requests(self, company_id: str, operations: Sequence[str]) -> list[WriteRequest]:
        """The company's PENDING requests for these operations: a Query of its ledger (30 days of
        requests at most, TTL), filtered on DynamoDB's side."""
        if not operations:
            return []
        names = {f":op{n}": {"S": op} for n, op in enumerate(operations)}
        query: dict[str, Any] = {
            "KeyConditionExpression": "#pk = :company AND begins_with(#sk, :prefix)",
            "FilterExpression": f"#s = :pending AND #op IN ({', '.join(names)})",
            "ExpressionAttributeNames": {
                "#pk": PARTITION_KEY,
                "#sk": SORT_KEY,
                "#s": "state",
                "#op": "operation",
            },
            "ExpressionAttributeValues": {
                ":company": {"S": company_id},
                ":prefix": {"S": REQUEST_PREFIX},
                ":pending": {"S": RequestState.PENDING.value},
                **names,
            },
        }
        found: list[WriteRequest] = []
        while True:
            answer = self._client.query(TableName=self._table, ConsistentRead=True, **query)
            now = int(datetime.now(UTC).timestamp())
            found += [
                WriteRequest.model_validate(item)
                for item in map(from_dynamo, answer["Items"])
                if item["expiresAt"] >= now
            ]
            last = answer.get("LastEvaluatedKey")
            if not last:
                return found
            query["ExclusiveStartKey"] = last

    def fail_pending_request(
        self, company_id: str, request_id: str, attempt: int, outcome: dict[str, Any]
    ) -> bool:
        """FAILED with `outcome`, if the request is still PENDING at `attempt`."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(company_id, REQUEST_PREFIX + request_id),
                UpdateExpression="SET #s = :failed, outcome = :outcome",
                ConditionExpression="#s = :pending AND attempt = :attempt",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":failed": {"S": RequestState.FAILED.value},
                    ":pending": {"S": RequestState.PENDING.value},
                    ":attempt": {"N": str(attempt)},
                    ":outcome": to_attribute(_attributes(outcome)),
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False  # answered, or a newer attempt started, in the meantime
        return True

    # -- where each sync run is -----------------------------------------------------------------

    def save_cursor(self, company_id: str, run_id: str, cursor: dict[str, Any]) -> None:
        item = {
            PARTITION_KEY: company_id,
            SORT_KEY: RUN_PREFIX + run_id,
            "cursor": json.dumps(cursor),
            "expiresAt": int((datetime.now(UTC) + RUN_RETENTION).timestamp()),
        }
        self._client.put_item(TableName=self._table, Item=to_dynamo(item))

    def saved_cursor(self, company_id: str, run_id: str) -> dict[str, Any] | None:
        item = self._get(company_id, RUN_PREFIX + run_id)
        if item is None:
            return None
        cursor: dict[str, Any] = json.loads(item["cursor"])
        return cursor

    # -- the product's reads --------------------------------------------------------------------

    def bill(self, company_id: str, bill_id: str) -> BillRecord | None:
        item = self._get(company_id, BILL_PREFIX + bill_id)
        if item is None:
            return None
        return self._with_payments(company_id, [BillRecord.model_validate(item)])[0]

    def supplier(self, company_id: str, supplier_id: str) -> SupplierRecord | None:
        item = self._get(company_id, SUPPLIER_PREFIX + supplier_id)
        return None if item is None else SupplierRecord.model_validate(item)

    def query_bills(
        self, company_id: str, where: BillFilter, limit: int, start: StartKey | None
    ) -> tuple[list[BillRecord], StartKey | None]:
        """One page of the company's bills in due date order, through a local index."""
        names = {"#c": PARTITION_KEY}
        values: dict[str, Any] = {":c": {"S": company_id}}
        lowest, highest = where.due_range()
        if where.status is not None:
            index, attribute = BY_STATUS_DUE_DATE, "statusDueDate"
            lowest, highest = f"{where.status}#{lowest}", f"{where.status}#{highest}"
        else:
            index, attribute = BY_DUE_DATE, "dueDate"
        names["#i"] = attribute
        values[":lo"], values[":hi"] = {"S": lowest}, {"S": highest}
        bills, last = self._query_page(
            BillRecord,
            IndexName=index,
            KeyConditionExpression="#c = :c AND #i BETWEEN :lo AND :hi",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            Limit=limit,
            start=start,
        )
        return self._with_payments(company_id, bills), last

    def _with_payments(self, company_id: str, bills: list[BillRecord]) -> list[BillRecord]:
        """The bills with the payments the product made on them (one BatchGetItem per 100)."""
        found: dict[str, list[Any]] = {}
        for chunk in _chunks([PAYMENTS_PREFIX + b.bill_id for b in bills], _BATCH):
            request: Any = {
                self._table: {
                    "Keys": [_key(company_id, key) for key in chunk],
                    "ConsistentRead": True,
                }
            }
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self._table, []):
                    data = from_dynamo(item)
                    found[data[SORT_KEY].removeprefix(PAYMENTS_PREFIX)] = data.get("payments", [])
                request = answer.get("UnprocessedKeys") or {}
        return [
            b.model_copy(update={"payments": _listed_payments(found[b.bill_id], b.currency)})
            if b.bill_id in found
            else b
            for b in bills
        ]

    def list_suppliers(
        self, company_id: str, limit: int, start: StartKey | None
    ) -> tuple[list[SupplierRecord], StartKey | None]:
        return self._query_page(
            SupplierRecord,
            KeyConditionExpression="#c = :c AND begins_with(#k, :prefix)",
            ExpressionAttributeNames={"#c": PARTITION_KEY, "#k": SORT_KEY},
            ExpressionAttributeValues={
                ":c": {"S": company_id},
                ":prefix": {"S": SUPPLIER_PREFIX},
            },
            Limit=limit,
            start=start,
        )

    def _query_page(
        self, model: type[R], *, start: StartKey | None, **query: Any
    ) -> tuple[list[R], StartKey | None]:
        if start is not None:
            query["ExclusiveStartKey"] = {name: {"S": value} for name, value in start.items()}
        answer = self._client.query(TableName=self._table, ConsistentRead=True, **query)
        records = [model.model_validate(from_dynamo(item)) for item in answer["Items"]]
        last = answer.get("LastEvaluatedKey")
        if not last:
            return records, None
        return records, {name: value["S"] for name, value in last.items()}

    def payment_accounts(self, company_id: str) -> list[PaymentAccount]:
        item = self._get(company_id, ACCOUNTS_KEY)
        if item is None:
            return []
        return [PaymentAccount.model_validate(account) for account in item["accounts"]]

    def _get(self, company_id: str, key: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=_key(company_id, key), ConsistentRead=True
        ).get("Item")
        return None if item is None else from_dynamo(item)


def _sync_key(data_type: DataType) -> str:
    return f"sync#{data_type}"


def _listed_payments(entries: list[Any], currency: str) -> tuple[ProductPayment, ...]:
    """The payments listed on a bill, amounts in the currency's places again (DynamoDB gives
    100 back for 100.00)."""
    listed = (ProductPayment.model_validate(entry) for entry in entries)
    return tuple(p.model_copy(update={"amount": to_money(p.amount, currency)}) for p in listed)


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


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
