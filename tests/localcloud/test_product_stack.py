"""The product's own synthesized cdk.out (from `make synth`) on the local cloud: deploy, route, run."""

from __future__ import annotations

import platform
import secrets
import sys

import httpx
import pytest

from localcloud.deploy import Handling, read_assembly
from localcloud.lambda_runner import layer_is_host_compatible


@pytest.fixture(scope="module")
def http(product_cloud):
    with httpx.Client(base_url=product_cloud.api_url, timeout=30) as client:
        yield client


def test_every_stack_of_the_assembly_is_deployed(product_cloud, product_cdk_out):
    assert set(product_cloud.deployment.stacks) == {a.name for a in read_assembly(product_cdk_out)}
    for outputs in product_cloud.deployment.all_outputs().values():
        assert outputs
        assert not [v for v in outputs.values() if "<moto." in v]


def test_what_moto_lacks_is_reported_never_dropped_silently(product_cloud, product_cdk_out):
    handled = {(i.stack, i.logical_id) for i in product_cloud.deployment.handled}
    for artifact in read_assembly(product_cdk_out):
        created = product_cloud.deployment.stacks[artifact.name].created
        for logical_id in artifact.template()["Resources"]:
            assert (artifact.name, logical_id) in handled or logical_id in created, logical_id


def test_secrets_are_real_secrets_manager_secrets(product_cloud):
    emulated = [
        i
        for i in product_cloud.deployment.handled
        if i.resource_type == "AWS::SecretsManager::Secret"
    ]
    assert emulated
    assert all(i.handling is Handling.EMULATE for i in emulated)
    for item in emulated:
        arn = product_cloud.deployment.stacks[item.stack].physical_ids[item.logical_id]
        secret = product_cloud.client("secretsmanager").get_secret_value(SecretId=arn)
        assert secret["SecretString"]


def test_reading_a_company_that_is_not_registered_goes_through_to_the_function(http):
    # The onboarding journey itself, against the Codat emulator: tests/localcloud/test_onboarding.py
    response = http.get(f"/companies/lc-{secrets.token_hex(4)}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


def test_body_breaking_the_request_model_is_rejected_by_the_gateway(http):
    response = http.post(
        "/companies", json={"companyId": "bad id!", "name": "x", "platformKey": "gbol"}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid request body"}


def test_unknown_route_is_404(http):
    response = http.get(f"/no-such-route-{secrets.token_hex(2)}")
    assert response.status_code == 404
    assert response.json() == {"message": "Missing Authentication Token"}


def test_the_dependency_layer_is_used_only_where_it_can_load(product_cdk_out):
    """The layer is built for the Lambda runtime (python3.13/arm64); elsewhere the venv serves."""
    layers = [
        resource["Properties"]["Content"]["S3Key"].removesuffix(".zip")
        for artifact in read_assembly(product_cdk_out)
        for resource in artifact.template()["Resources"].values()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    ]
    assert layers
    for asset_hash in layers:
        python_dir = product_cdk_out / f"asset.{asset_hash}" / "python"
        assert any(python_dir.rglob("*.so")), "expected compiled dependencies in the layer"
        runs_here = sys.version_info[:2] == (3, 13) and platform.machine() == "aarch64"
        assert layer_is_host_compatible(python_dir) is runs_here
