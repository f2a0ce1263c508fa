"""AWS clients, created once per cold start and shared by the adapters.

botocore's, not boto3's: `import boto3` also imports s3transfer and multiprocessing, about a tenth
of a cold start's imports (docs/benchmarks.md), and the functions use only clients.
AWS_ENDPOINT_URL (set by the local cloud) and the region and credentials Lambda sets are honoured
by botocore itself.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.session import Session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient

# Fail fast inside a Lambda: the workflow retries with back-off, the client should not.
_CONFIG = Config(
    connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}
)


@cache
def _session() -> Session:
    return Session()


def client(service: str, config: Config = _CONFIG) -> Any:
    """A new client of this cold start's session (for a function that needs its own timeouts)."""
    return _session().create_client(service, config=config)


@cache
def dynamodb() -> DynamoDBClient:
    dynamo: DynamoDBClient = client("dynamodb")
    return dynamo


@cache
def stepfunctions() -> SFNClient:
    sfn: SFNClient = client("stepfunctions")
    return sfn


@cache
def eventbridge() -> EventBridgeClient:
    events: EventBridgeClient = client("events")
    return events


@cache
def secretsmanager() -> SecretsManagerClient:
    secrets: SecretsManagerClient = client("secretsmanager")
    return secrets
