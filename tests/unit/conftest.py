"""Unit tier: pure code. Every socket is blocked, so a test that reaches for the network fails."""

import boto3
import pytest
from moto import mock_aws


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: None) -> None:
    """pytest-socket's fixture turns socket creation into an error for the whole test."""


REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch):
    """Credentials for moto and no endpoint override; yields a boto3 client factory."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


@pytest.fixture
def companies_table(aws):
    """The companies table as the state stack defines it (key companyId); returns its name."""
    aws("dynamodb").create_table(
        TableName="companies",
        KeySchema=[{"AttributeName": "companyId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "companyId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "companies"


@pytest.fixture
def webhook_events_table(aws):
    """The webhook events table as the state stack defines it (key, replay indexes)."""
    from billpay.webhooks.store import BY_COMPANY_INDEX, BY_DAY_INDEX

    def index(name, partition):
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": "receivedAt", "KeyType": "RANGE"},
            ],
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": ["eventType", "status", "expiresAt"],
            },
        }

    aws("dynamodb").create_table(
        TableName="webhook-events",
        KeySchema=[{"AttributeName": "webhookId", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("webhookId", "receivedDay", "companyId", "receivedAt")
        ],
        GlobalSecondaryIndexes=[
            index(BY_DAY_INDEX, "receivedDay"),
            index(BY_COMPANY_INDEX, "companyId"),
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return "webhook-events"
