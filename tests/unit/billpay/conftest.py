"""Unit fixtures for billpay: see tests/unit/conftest.py (moto, tables)."""

import pytest


@pytest.fixture
def payables_table(aws):
    """The payables table as the state stack defines it (infra/constructs/state.py).

    With the local cloud's moto patches: moto copies a whole table per transaction action
    otherwise (localcloud/moto_runtime.py, patch 10).
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
