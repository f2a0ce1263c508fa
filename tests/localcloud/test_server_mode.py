"""`make dev`'s path: moto as a server, handlers in subprocesses, and the CLI's lifecycle."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from types import SimpleNamespace

import boto3
import httpx
import pytest

from localcloud import lambda_runner, moto_runtime
from localcloud.cli import port_is_free
from localcloud.deploy import client_factory, deploy_assembly
from localcloud.testing import LocalCloud
from tests.dev_process import DevProcess


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def fake_credentials(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_subprocess_runner_on_a_moto_server_runs_the_state_machine(
    fixture_cdk_out, fake_credentials
):
    with moto_runtime.moto_server(port=0, runner_mode=lambda_runner.RunnerMode.SUBPROCESS) as url:
        clients = client_factory("us-east-1", url)
        deployment = deploy_assembly(fixture_cdk_out, clients)
        cloud = LocalCloud(deployment, clients, "", local_api=None)  # type: ignore[arg-type]
        moto_runtime.set_time_scale(0.001)
        try:
            execution = cloud.run_state_machine(
                deployment.output("StateMachineArn"), {"runId": "server", "failTimes": 1}
            )
        finally:
            moto_runtime.set_time_scale(1.0)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["attempts"] == 2
    # The handler ran in its own process, with the layer (built for this interpreter) on its path.
    assert output["pid"] != os.getpid()
    assert output["layer"] == "hello from the fixture layer"
    assert lambda_runner.current_mode() is lambda_runner.RunnerMode.IN_PROCESS


def _stub_function(source: str, handler: str, timeout: int) -> SimpleNamespace:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("stub_handler.py", source)
    return SimpleNamespace(
        code_bytes=buffer.getvalue(),
        layers=[],
        account_id="123456789012",
        region="us-east-1",
        handler=f"stub_handler.{handler}",
        run_time="python3.11",
        function_name="stub",
        memory_size=128,
        version="$LATEST",
        logs_group_name="/aws/lambda/stub",
        environment_vars={"STUB": "1"},
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:stub",
        timeout=timeout,
    )


STUB = """
import os, time
def slow(event, context):
    time.sleep(30)
def boom(event, context):
    raise KeyError("missing " + os.environ["STUB"])
"""


PUBLISHER = """
import json, time
import boto3
from botocore.config import Config

def publish(event, context):
    # One attempt with a short read timeout: a PutEvents that waits for its own delivery fails.
    config = Config(read_timeout=5, retries={"total_max_attempts": 1})
    started = time.monotonic()
    boto3.client("events", config=config).put_events(
        Entries=[{"Source": "app", "DetailType": "t", "Detail": "{}", "EventBusName": "bus"}]
    )
    return {"seconds": time.monotonic() - started}

def record(event, context):
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="seen")["QueueUrl"],
                     MessageBody=json.dumps(event))
"""


def test_an_in_process_handler_on_a_moto_server_publishes_to_a_lambda_target(fake_credentials):
    # `make dev`'s default: in-process handlers (one at a time) behind a moto server. The
    # publisher holds the runner while its PutEvents is answered on a server thread; the rule's
    # Lambda target runs once the publisher is done, as EventBridge invokes targets
    # asynchronously, and exactly once (no retried PutEvents).
    with moto_runtime.moto_server(port=0, runner_mode=lambda_runner.RunnerMode.IN_PROCESS) as url:
        clients = client_factory("us-east-1", url)
        role = clients("iam").create_role(
            RoleName="publisher", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("publisher_probe.py", PUBLISHER)
        arns = {
            name: clients("lambda").create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role,
                Handler=f"publisher_probe.{name}",
                Code={"ZipFile": buffer.getvalue()},
            )["FunctionArn"]
            for name in ("publish", "record")
        }
        sqs = clients("sqs")
        seen = sqs.create_queue(QueueName="seen")["QueueUrl"]
        events = clients("events")
        events.create_event_bus(Name="bus")
        events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"source": ["app"]}))
        events.put_targets(
            Rule="r", EventBusName="bus", Targets=[{"Id": "fn", "Arn": arns["record"]}]
        )
        answer = clients("lambda").invoke(FunctionName="publish", Payload=b"{}")
        result = json.loads(answer["Payload"].read())
        assert "FunctionError" not in answer, result
        deadline = time.monotonic() + 30
        delivered: list[dict[str, object]] = []
        while time.monotonic() < deadline and not delivered:
            messages = sqs.receive_message(QueueUrl=seen, WaitTimeSeconds=1).get("Messages", [])
            delivered += [json.loads(m["Body"]) for m in messages]
        # A duplicate delivery would follow at once: one more second's long poll for it.
        more = sqs.receive_message(QueueUrl=seen, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        delivered += [json.loads(m["Body"]) for m in more.get("Messages", [])]
    assert [event["source"] for event in delivered] == ["app"]
    assert result["seconds"] < 5


def test_subprocess_runner_enforces_the_function_timeout():
    lambda_runner.configure(lambda_runner.RunnerMode.SUBPROCESS, "http://127.0.0.1:9")
    try:
        started = time.monotonic()
        payload, errored, _ = lambda_runner._run_subprocess(
            _stub_function(STUB, "slow", timeout=1), {}, "req-1"
        )
        elapsed = time.monotonic() - started
    finally:
        lambda_runner.configure(lambda_runner.RunnerMode.IN_PROCESS, None)
    assert errored
    assert json.loads(payload)["errorType"] == "Sandbox.Timedout"
    assert elapsed < 5


def test_subprocess_runner_reports_errors_like_lambda():
    lambda_runner.configure(lambda_runner.RunnerMode.SUBPROCESS, "http://127.0.0.1:9")
    try:
        payload, errored, _ = lambda_runner._run_subprocess(
            _stub_function(STUB, "boom", timeout=10), {}, "req-2"
        )
    finally:
        lambda_runner.configure(lambda_runner.RunnerMode.IN_PROCESS, None)
    error = json.loads(payload)
    assert errored
    assert error["errorType"] == "KeyError"
    assert error["errorMessage"] == "'missing 1'"
    assert error["requestId"] == "req-2"


def test_subprocess_mode_needs_a_server():
    with pytest.raises(ValueError, match="moto server"):
        lambda_runner.configure(lambda_runner.RunnerMode.SUBPROCESS, None)


def _dev(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localcloud", "dev", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("which", ["--api-port", "--moto-port"])
def test_dev_reports_a_busy_port_and_exits_non_zero(fixture_cdk_out, which):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = "--moto-port" if which == "--api-port" else "--api-port"
        process = _dev(
            "--cdk-out", str(fixture_cdk_out), which, str(port), other, str(_free_port())
        )
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 3
    assert f"port {port} on 127.0.0.1 is already in use" in stderr
    assert which in stderr


def test_dev_ports_come_from_the_environment_too(fixture_cdk_out):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = _dev(
            "--cdk-out",
            str(fixture_cdk_out),
            env={"LOCALCLOUD_API_PORT": str(port), "LOCALCLOUD_MOTO_PORT": str(_free_port())},
        )
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 3
    assert f"port {port}" in stderr


def test_dev_without_a_cloud_assembly_says_to_synthesize(tmp_path):
    process = _dev("--cdk-out", str(tmp_path / "nothing"), "--api-port", "0", "--moto-port", "0")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "make synth" in stderr


def test_dev_serves_until_ctrl_c_then_stops_cleanly(fixture_cdk_out):
    api_port, moto_port = _free_port(), _free_port()
    dev = DevProcess(
        "--cdk-out", fixture_cdk_out, "--api-port", str(api_port), "--moto-port", str(moto_port)
    )
    try:
        banner = dev.read_until("Ctrl-C stops it.", timeout=120)
        assert f"local API:   http://127.0.0.1:{api_port}" in banner
        assert f"moto server: http://127.0.0.1:{moto_port}" in banner
        assert "StateMachineArn = arn:aws:states:" in banner
        # What it is doing is printed as it starts, not only once it is up.
        assert banner.index("deploying") < banner.index("local cloud up")
        response = httpx.get(f"http://127.0.0.1:{api_port}/echo", timeout=30)
        assert response.status_code == 200
        # The moto server is usable by any client, e.g. to look at what the handlers wrote.
        tables = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{moto_port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        ).list_tables()["TableNames"]
        assert len(tables) == 1
        assert dev.interrupt(timeout=20) == 0
    finally:
        dev.kill()
    dev.assert_stopped_cleanly()


def test_a_dev_that_exits_early_is_reported_with_its_stderr_at_once(fixture_cdk_out):
    # A crash before the banner must not look like a slow start: the wait ends when stdout closes.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        dev = DevProcess("--cdk-out", fixture_cdk_out, "--api-port", "0", "--moto-port", str(port))
        started = time.monotonic()
        with pytest.raises(AssertionError) as failure:
            dev.read_until("Ctrl-C stops it.", timeout=120)
    assert time.monotonic() - started < 60
    assert "the process ended before 'Ctrl-C stops it.'" in str(failure.value)
    assert "exit code 3" in str(failure.value)
    assert f"port {port} on 127.0.0.1 is already in use" in str(failure.value)


def test_dev_checks_the_ports_after_api_port_for_the_other_rest_apis(product_cdk_out):
    # The product has two REST APIs: the webhooks API is served on --api-port + 1.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert port_is_free("127.0.0.1", port - 1), "unlucky: the port before is taken too"
        process = _dev(
            "--cdk-out", str(product_cdk_out), "--api-port", str(port - 1), "--moto-port", "0"
        )
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 3
    assert f"port {port} on 127.0.0.1 is already in use, so REST API number 2" in stderr
    assert "--api-port (0 for free ports)" in stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--onboard", "(#)", "the name has no character Codat accepts"),
        ("--platform", "nope", "unknown platform key 'nope'"),
    ],
)
def test_dev_refuses_an_onboarding_the_api_would_refuse_before_starting(
    product_cdk_out, option, value, message
):
    args = {"--onboard": "Acme Ltd", "--platform": "gbol", option: value}
    process = _dev(
        "--cdk-out",
        str(product_cdk_out),
        "--api-port",
        "0",
        "--moto-port",
        "0",
        *[item for pair in args.items() for item in pair],
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 5
    assert message in stderr
    assert "--onboard '" in stderr
