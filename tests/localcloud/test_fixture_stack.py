"""The local cloud on its own fixture CDK app: deploy, the local API over HTTP, the state machine."""

from __future__ import annotations

import base64
import json
import secrets
import time

import httpx
import pytest

from localcloud.deploy import Handling
from localcloud.gateway import LocalApi
from localcloud.routes import IncomingRequest


@pytest.fixture(scope="module")
def http(fixture_cloud):
    with httpx.Client(base_url=fixture_cloud.api_url, timeout=20) as client:
        yield client


def _handled(cloud) -> dict[str, Handling]:
    return {item.resource_type: item.handling for item in cloud.deployment.handled}


def test_deploy_creates_both_stacks_and_resolves_outputs(fixture_cloud):
    outputs = fixture_cloud.deployment.all_outputs()
    assert set(outputs) == {"Fixture-State", "Fixture-Service"}
    for stack_outputs in outputs.values():
        for value in stack_outputs.values():
            assert "<moto." not in value
    table = fixture_cloud.output("TableName")
    described = fixture_cloud.client("dynamodb").describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_unsupported_types_are_stripped_or_emulated_and_reported(fixture_cloud):
    handled = _handled(fixture_cloud)
    assert handled["AWS::CloudWatch::Alarm"] is Handling.STRIP
    assert handled["AWS::ApiGateway::Account"] is Handling.STRIP
    assert handled["AWS::ApiGateway::Stage"] is Handling.EMULATE
    assert handled["AWS::SecretsManager::Secret"] is Handling.EMULATE
    assert handled["AWS::ApiGateway::Model"] is Handling.STRIP
    assert handled["AWS::ApiGateway::RequestValidator"] is Handling.STRIP


def test_secret_is_created_through_the_api_with_a_generated_value(fixture_cloud):
    arn = fixture_cloud.output("SecretArn")
    assert arn.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:ApiKey")
    value = fixture_cloud.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert len(value) == 40
    assert value.isalnum()


def test_stage_is_created_on_the_deployed_rest_api(fixture_cloud):
    api_id = fixture_cloud.local_api.api.api_id
    stage = fixture_cloud.client("apigateway").get_stage(restApiId=api_id, stageName="test")
    assert stage["stageName"] == "test"


def test_route_writes_and_reads_dynamodb_through_the_local_api(http):
    item_id = f"item-{secrets.token_hex(4)}"
    created = http.post("/items", json={"id": item_id, "name": "widget"})
    assert created.status_code == 201
    fetched = http.get(f"/items/{item_id}")
    assert fetched.status_code == 200
    assert fetched.json() == {"id": item_id, "name": "widget"}
    assert http.get("/items/never-created").status_code == 404


@pytest.mark.parametrize(
    "body", [b'{"id": 7, "name": "x"}', b'{"name": "no id"}', b"not json", b""]
)
def test_request_validator_rejects_bodies_that_break_the_model(http, body):
    response = http.post("/items", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid request body"}


def test_handler_reads_the_generated_secret(http):
    assert http.get("/secret").json() == {"length": 40}


def test_proxy_event_has_the_rest_api_shape(http, fixture_cloud):
    response = http.get("/echo?single=1&multi=a&multi=b", headers={"X-Trace": "t1"})
    assert response.status_code == 200
    assert response.headers["x-fixture"] == "yes"
    assert response.headers["x-amzn-requestid"]
    body = response.json()
    event = body["event"]
    assert event["resource"] == "/echo"
    assert event["path"] == "/echo"
    assert event["httpMethod"] == "GET"
    assert event["headers"]["X-Trace"] == "t1"
    assert event["multiValueHeaders"]["X-Trace"] == ["t1"]
    assert event["queryStringParameters"] == {"single": "1", "multi": "b"}
    assert event["multiValueQueryStringParameters"] == {"single": ["1"], "multi": ["a", "b"]}
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "test"
    assert context["resourcePath"] == "/echo"
    assert context["httpMethod"] == "GET"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == response.headers["x-amzn-requestid"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == fixture_cloud.local_api.api.api_id
    lambda_context = body["context"]
    assert lambda_context["function_name"] == fixture_cloud.output("ApiFunctionName")
    assert lambda_context["memory_limit_in_mb"] == 128
    assert lambda_context["invoked_function_arn"].endswith(lambda_context["function_name"])
    assert 0 < lambda_context["remaining_ms"] <= 10_000
    assert body["env"] == {"STAGE_LABEL": "fixture"}


def test_greedy_proxy_route_and_any_method(http):
    event = http.delete("/proxy/a/b/c").json()["event"]
    assert event["resource"] == "/proxy/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c"}
    assert event["httpMethod"] == "DELETE"


def test_stage_prefixed_paths_are_served_like_the_aws_url(http):
    event = http.get("/test/echo").json()["event"]
    assert event["resource"] == "/echo"
    assert event["path"] == "/echo"


def test_binary_bodies_round_trip_base64_with_multi_value_headers(http):
    raw = bytes(range(256))
    response = http.post(
        "/binary", content=raw, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200
    assert response.content == raw[::-1]
    assert response.headers.get_list("x-multi") == ["a", "b"]


def test_cors_preflight_mock_integration_answers_with_its_static_headers(http):
    response = http.options("/cors", headers={"Origin": "https://app.example"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-methods"] == "GET"
    assert response.content == b""


def test_iam_auth_methods_are_served_without_sigv4(http):
    # Documented difference: SigV4 is not verified locally.
    assert http.get("/iam").status_code == 200


def test_raising_handler_gives_502_promptly(http):
    started = time.monotonic()
    response = http.get("/boom")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    assert time.monotonic() - started < 5


def test_malformed_proxy_response_gives_502(http):
    response = http.get("/malformed")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/no-such-route"), ("DELETE", "/echo"), ("GET", "/items"), ("GET", "/")],
)
def test_unknown_route_is_404_missing_authentication_token(http, method, path):
    response = http.request(method, path)
    assert response.status_code == 404
    assert response.json() == {"message": "Missing Authentication Token"}


def test_integration_running_past_the_timeout_is_a_504_not_a_hang(fixture_cloud):
    impatient = LocalApi(fixture_cloud.deployment, fixture_cloud.clients, integration_timeout=0.3)
    try:
        started = time.monotonic()
        status, _, body = impatient.handle(
            IncomingRequest("GET", "/slow", [], [("seconds", "1.5")], b"", "127.0.0.1")
        )
        elapsed = time.monotonic() - started
    finally:
        impatient.close()
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}
    assert elapsed < 1.25
    time.sleep(1.3)  # let the abandoned invocation finish before the next test


def _attempts(cloud, run_id: str) -> int:
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.output("TableName"), Key={"pk": {"S": f"run#{run_id}"}}
    )["Item"]
    return int(item["attempts"]["N"])


def test_state_machine_runs_to_succeeded_with_a_60s_wait_compressed(fixture_cloud):
    run_id = secrets.token_hex(4)
    started = time.monotonic()
    execution = fixture_cloud.run_state_machine(
        fixture_cloud.output("StateMachineArn"), {"runId": run_id}
    )
    elapsed = time.monotonic() - started
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["attempts"] == 1
    assert output["layer"] == "hello from the fixture layer"
    assert elapsed < 3.0  # 60 s of Wait; real time would be over a minute


def test_retry_recovers_from_failing_attempts(fixture_cloud):
    run_id = secrets.token_hex(4)
    started = time.monotonic()
    execution = fixture_cloud.run_state_machine(
        fixture_cloud.output("StateMachineArn"), {"runId": run_id, "failTimes": 2}
    )
    elapsed = time.monotonic() - started
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["attempts"] == 3
    failures = [
        e["lambdaFunctionFailedEventDetails"]["error"]
        for e in fixture_cloud.history(execution["executionArn"])
        if e["type"] == "LambdaFunctionFailed"
    ]
    assert failures == ["FlakyError", "FlakyError"]
    # 30 s + 60 s of back-off and a 60 s Wait, compressed.
    assert elapsed < 5.0


def test_catch_takes_over_when_retries_are_exhausted(fixture_cloud):
    run_id = secrets.token_hex(4)
    execution = fixture_cloud.run_state_machine(
        fixture_cloud.output("StateMachineArn"), {"runId": run_id, "failTimes": 5}
    )
    assert execution["status"] == "FAILED"
    assert execution["error"] == "FixtureGaveUp"
    assert _attempts(fixture_cloud, run_id) == 3
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in fixture_cloud.history(execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Record", "GaveUp"]
    failed_input = json.loads(
        next(
            e["stateEnteredEventDetails"]["input"]
            for e in fixture_cloud.history(execution["executionArn"])
            if e.get("stateEnteredEventDetails", {}).get("name") == "GaveUp"
        )
    )
    assert failed_input["error"]["Error"] == "FlakyError"
    assert "attempt 3 failed on purpose" in failed_input["error"]["Cause"]


def test_binary_event_body_is_base64_for_binary_media_types(fixture_cloud):
    status, _, body = fixture_cloud.local_api.handle(
        IncomingRequest(
            "POST",
            "/binary",
            [("Content-Type", "application/octet-stream")],
            [],
            b"\x00\x01",
            "127.0.0.1",
        )
    )
    assert status == 200
    assert body == b"\x01\x00"
    assert base64.b64encode(body)


def test_chunked_request_bodies_are_read(http):
    item_id = f"chunked-{secrets.token_hex(4)}"
    payload = json.dumps({"id": item_id, "name": "streamed"}).encode()

    def chunks():
        yield payload[:10]
        yield payload[10:]

    response = http.post("/items", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert http.get(f"/items/{item_id}").json()["name"] == "streamed"
