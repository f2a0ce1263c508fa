"""The companies table (DynamoDB): the only module that reads or writes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billpay.companies.models import CompanyRecord
from billpay.core.dynamo import from_dynamo, to_dynamo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Index of the companies table by Codat's company id (webhooks name only Codat's id).
CODAT_COMPANY_INDEX = "byCodatCompanyId"


class DynamoCompanyRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, company_id: str) -> CompanyRecord | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"companyId": {"S": company_id}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if item is None:
            return None
        return CompanyRecord.model_validate(from_dynamo(item))

    def find_by_codat_company_id(self, codat_company_id: str) -> str | None:
        """The product's id of the company Codat knows as `codat_company_id`, if there is one."""
        answer = self._client.query(
            TableName=self._table,
            IndexName=CODAT_COMPANY_INDEX,
            KeyConditionExpression="codatCompanyId = :id",
            ExpressionAttributeValues={":id": {"S": codat_company_id}},
            Limit=1,
        )
        items = answer.get("Items", [])
        return items[0]["companyId"]["S"] if items else None

    def create(self, record: CompanyRecord) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_dynamo(record.to_item()),
                ConditionExpression="attribute_not_exists(companyId)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def replace(self, record: CompanyRecord, expected_version: int) -> bool:
        """Write `record` if the stored one is still at `expected_version`; False if it moved on."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_dynamo(record.to_item()),
                ConditionExpression="version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
