"""In-process handlers get a warm container each: module state never crosses functions or
deployments, as with separate Lambda containers."""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile
from pathlib import Path

import boto3
import httpx

from localcloud import lambda_runner, moto_runtime
from localcloud.product import running_product

SOURCE = """
import json
import os

import boto3

INVOCATIONS = 0


def count(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    return {"invocations": INVOCATIONS, "module": __name__}


def call_other(event, context):
    other = boto3.client("lambda").invoke(FunctionName=event["other"], Payload=b"{}")
    return {"mine": count(event, context), "other": json.loads(other["Payload"].read())}
"""


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("isolation_probe/__init__.py", "")
        archive.writestr("isolation_probe/handlers.py", SOURCE)
    return buffer.getvalue()


def _deploy_functions(*names: str) -> None:
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="isolation", AssumeRolePolicyDocument=json.dumps(trust))
    for name in names:
        boto3.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler=f"isolation_probe.handlers.{'call_other' if name == 'caller' else 'count'}",
            Code={"ZipFile": _zip()},
        )


def _invoke(name: str, payload: dict | None = None) -> dict:
    result = boto3.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(payload or {}).encode()
    )
    assert "FunctionError" not in result, result["Payload"].read()
    return json.loads(result["Payload"].read())


def test_each_function_keeps_its_own_module_state():
    with moto_runtime.in_process_moto():
        _deploy_functions("first", "second")
        assert _invoke("first")["invocations"] == 1
        assert _invoke("first")["invocations"] == 2
        assert _invoke("second")["invocations"] == 1
        assert _invoke("first")["invocations"] == 3
    # Nothing of the functions' code is left importable in the test process.
    assert "isolation_probe" not in sys.modules
    assert not any("localcloud-lambda-" in entry for entry in sys.path)


def test_the_runner_counts_every_invocation_per_function():
    with moto_runtime.in_process_moto():
        _deploy_functions("caller", "callee")
        before = lambda_runner.invocation_counts()
        _invoke("callee")
        _invoke("caller", {"other": "callee"})
        after = lambda_runner.invocation_counts()
    counted = {name: after[name] - before.get(name, 0) for name in ("caller", "callee")}
    assert counted == {"caller": 1, "callee": 2}


def test_a_new_deployment_starts_cold():
    with moto_runtime.in_process_moto():
        _deploy_functions("first")
        assert _invoke("first")["invocations"] == 1
    with moto_runtime.in_process_moto():
        _deploy_functions("first")
        assert _invoke("first")["invocations"] == 1


def test_a_handler_may_invoke_another_function_synchronously():
    with moto_runtime.in_process_moto():
        _deploy_functions("caller", "callee")
        _invoke("callee")
        result = _invoke("caller", {"other": "callee"})
    assert result["mine"]["invocations"] == 1
    assert result["other"]["invocations"] == 2


def test_the_product_runs_again_after_a_second_deployment_in_the_same_process(product_cdk_out):
    """Cached settings and clients of one deployment (the Codat client and its API key included)
    must not reach the next one's handlers."""
    for attempt in range(2):
        with (
            running_product(Path(product_cdk_out)) as product,
            httpx.Client(base_url=product.cloud.api_url, timeout=30) as http,
        ):
            company_id = f"redeploy-{attempt}"
            started = http.post(
                "/companies",
                json={"companyId": company_id, "name": "Again Ltd", "platformKey": "gbol"},
            )
            assert started.status_code == 202, started.text
            # Onboarding reaches this deployment's emulator, with this deployment's API key
            deadline = time.monotonic() + 60
            while True:
                company = http.get(f"/companies/{company_id}").json()
                if company.get("waitingFor") == "authorization":
                    break
                assert time.monotonic() < deadline, company
                time.sleep(0.05)
            assert company["linkUrl"].startswith(product.emulator.base_url)
