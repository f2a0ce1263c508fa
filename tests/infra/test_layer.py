"""The dependency layer: built by pip for the Lambda platform, in sync with the lock."""

import json
import subprocess
from pathlib import Path

import pytest

from infra.constructs.dependency_layer import REQUIREMENTS, PipLayerBundling

ROOT = Path(__file__).resolve().parents[2]
CDK_OUT = ROOT / "cdk.out"


def test_pip_is_told_the_lambda_platform_and_wheels_only():
    command = PipLayerBundling(
        requirements=REQUIREMENTS,
        platform="manylinux2014_aarch64",
        python_version="3.13",
        compiler=None,
    ).pip_command("/out")
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--python-version 3.13" in joined
    assert "--implementation cp" in joined
    assert "--only-binary=:all:" in command
    assert "--target /out/python" in joined


def test_layer_requirements_match_the_lock():
    uv = ROOT / "build" / "tools" / "bin" / "uv"
    exported = subprocess.run(
        [
            str(uv),
            "export",
            "--frozen",
            "--only-group",
            "lambda",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--no-emit-project",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pinned = [line for line in REQUIREMENTS.read_text().splitlines() if not line.startswith("#")]
    assert pinned == [line for line in exported.splitlines() if line], (
        "layers/requirements.txt drifted from uv.lock: regenerate it with the command in its header"
    )


def _service_template() -> dict:
    path = CDK_OUT / "BillPay-dev-Service.template.json"
    if not path.exists():
        pytest.fail("cdk.out is missing: run `make synth` first (make test does)")
    return json.loads(path.read_text())


def _asset_dir(s3_key: dict | str) -> Path:
    """The staged folder behind a resource's S3Key, found through the stack's asset manifest."""
    assets = json.loads((CDK_OUT / "BillPay-dev-Service.assets.json").read_text())["files"]
    asset_hash = str(s3_key).removesuffix(".zip")
    return CDK_OUT / assets[asset_hash]["source"]["path"]


def _resources(kind: str) -> list[dict]:
    return [r for r in _service_template()["Resources"].values() if r["Type"] == kind]


def _layer_asset() -> Path:
    (layer,) = _resources("AWS::Lambda::LayerVersion")
    return _asset_dir(layer["Properties"]["Content"]["S3Key"])


def test_synthesized_layer_holds_arm64_cp313_binaries_and_every_requirement():
    site = _layer_asset() / "python"
    cores = list(site.glob("pydantic_core/_pydantic_core*.so"))
    assert cores, "pydantic_core's compiled module is missing from the layer"
    assert all("cpython-313-aarch64-linux-gnu" in so.name for so in cores), cores
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in site.glob("*.dist-info")}
    for line in REQUIREMENTS.read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split("==")[0].lower() in installed


def test_code_asset_is_only_the_functions_package():
    keys = {r["Properties"]["Code"]["S3Key"] for r in _resources("AWS::Lambda::Function")}
    assert len(keys) == 1
    asset = _asset_dir(keys.pop())
    assert sorted(p.name for p in asset.iterdir()) == ["billpay"]
