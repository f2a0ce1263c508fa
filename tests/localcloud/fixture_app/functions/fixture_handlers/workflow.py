"""State machine task: fails on its first `failTimes` attempts, counting attempts in DynamoDB."""

from __future__ import annotations

import os
from typing import Any

import boto3
import fixture_layer_dep


class FlakyError(Exception):
    """Raised on purpose so the state machine's Retry and Catch are exercised."""


def record_attempt(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    updated = table.update_item(
        Key={"pk": f"run#{event['runId']}"},
        UpdateExpression="ADD attempts :one",
        ExpressionAttributeValues={":one": 1},
        ReturnValues="UPDATED_NEW",
    )
    attempts = int(updated["Attributes"]["attempts"])
    if attempts <= int(event.get("failTimes", 0)):
        raise FlakyError(f"attempt {attempts} failed on purpose")
    return {
        "runId": event["runId"],
        "attempts": attempts,
        "layer": fixture_layer_dep.GREETING,
        "pid": os.getpid(),
    }
