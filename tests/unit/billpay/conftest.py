"""Unit fixtures for the adapters: moto in-process (no sockets), fresh per test."""

import boto3
import pytest
from moto import mock_aws

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
def payables_table(aws):
    """The payables table as the state stack defines it (infra/constructs/state.py).

    With the local cloud's moto patches: moto copies a whole table per transaction action
    otherwise (localcloud/moto_runtime.py, patch 8).
    """
    from billpay.bills import repository
    from localcloud import moto_runtime

    moto_runtime.install_patches()

    def lsi(name, attribute):
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": repository.PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": attribute, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    aws("dynamodb").create_table(
        TableName="payables",
        KeySchema=[
            {"AttributeName": repository.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": repository.SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in (repository.PARTITION_KEY, repository.SORT_KEY, "dueDate", "statusDueDate")
        ],
        LocalSecondaryIndexes=[
            lsi(repository.BY_DUE_DATE, "dueDate"),
            lsi(repository.BY_STATUS_DUE_DATE, "statusDueDate"),
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return "payables"
