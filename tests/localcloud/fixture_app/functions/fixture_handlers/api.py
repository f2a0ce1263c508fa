"""One proxy handler behind every fixture route; each route exercises one gateway behaviour."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import boto3


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body),
    }


def handler(event: dict[str, Any], context: Any) -> Any:
    route = f"{event['httpMethod']} {event['resource']}"
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    if route == "POST /items":
        item = json.loads(event["body"] or "{}")
        table.put_item(Item={"pk": item["id"], "name": item["name"]})
        return _response(201, {"id": item["id"], "name": item["name"]})
    if route == "GET /items/{itemId}":
        found = table.get_item(Key={"pk": event["pathParameters"]["itemId"]}).get("Item")
        if found is None:
            return _response(404, {"message": "no such item"})
        return _response(200, {"id": found["pk"], "name": found["name"]})
    if route == "GET /secret":
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["SECRET_ARN"])
        return _response(200, {"length": len(secret["SecretString"])})
    if route == "GET /boom":
        raise RuntimeError("the fixture handler failed on purpose")
    if route == "GET /slow":
        time.sleep(float((event["queryStringParameters"] or {}).get("seconds", "1")))
        return _response(200, {"slept": True})
    if route == "GET /malformed":
        return "this is not a proxy response"
    if route == "POST /binary":
        raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else b""
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "multiValueHeaders": {"x-multi": ["a", "b"]},
            "body": base64.b64encode(raw[::-1]).decode(),
            "isBase64Encoded": True,
        }
    # GET /echo and ANY /proxy/{proxy+}: show the handler what it was given.
    return _response(
        200,
        {
            "event": event,
            "context": {
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "invoked_function_arn": context.invoked_function_arn,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
            "env": {"STAGE_LABEL": os.environ.get("STAGE_LABEL")},
        },
        headers={"x-fixture": "yes"},
    )
