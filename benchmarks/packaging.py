"""What a deploy costs and what a cold start pays: synth time, asset sizes, handler import time.

    .venv/bin/python -m benchmarks.packaging

Synth is timed in a fresh output folder with bundling skipped (what the infra tests pay) and in
cdk.out with the layer already built (what `make synth` pays on a warm checkout). Import times are
the median of fresh interpreters importing one handler module: the cold-start work our code adds
on top of the runtime's own start. Run on an idle machine; compare figures from one run.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from infra import constants

ROOT = Path(__file__).resolve().parents[1]
CDK_OUT = ROOT / "cdk.out"
ENV = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def _run(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env or ENV, check=True, capture_output=True)  # noqa: S603
    return time.perf_counter() - start


def synth_seconds() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        cold = _run(
            [
                sys.executable,
                "-c",
                "from infra.app import build_app;"
                f"build_app(outdir={out!r}, context={{'aws:cdk:bundling-stacks': []}})[0].synth()",
            ]
        )
    warm = _run([sys.executable, "app.py"])
    return {"synth, bundling skipped (s)": cold, "synth, layer cached (s)": warm}


def _folder_sizes(folder: Path) -> tuple[int, int]:
    unzipped = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return unzipped, buffer.tell()


def asset_sizes() -> dict[str, float]:
    template = json.loads((CDK_OUT / "BillPay-dev-Service.template.json").read_text())
    files = json.loads((CDK_OUT / "BillPay-dev-Service.assets.json").read_text())["files"]

    def folder(s3_key: str) -> Path:
        return CDK_OUT / files[s3_key.removesuffix(".zip")]["source"]["path"]

    resources = template["Resources"].values()
    (layer,) = [r for r in resources if r["Type"] == "AWS::Lambda::LayerVersion"]
    code = next(r for r in resources if r["Type"] == "AWS::Lambda::Function")
    layer_raw, layer_zip = _folder_sizes(folder(layer["Properties"]["Content"]["S3Key"]))
    code_raw, code_zip = _folder_sizes(folder(code["Properties"]["Code"]["S3Key"]))
    mib = 1024 * 1024
    return {
        "layer unzipped (MiB)": layer_raw / mib,
        "layer zipped (MiB)": layer_zip / mib,
        "code unzipped (KiB)": code_raw / 1024,
        "code zipped (KiB)": code_zip / 1024,
    }


def import_seconds(repeats: int = 7) -> dict[str, float]:
    """Two cases. From source: no bytecode anywhere, as on Lambda, whose read-only /opt and
    /var/task hold the layer and code without .pyc (pip ran with --no-compile for another Python)
    and cannot cache any. From bytecode: a warm __pycache__, the best a cold start could do."""
    source_env = {**ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    source_env.pop("PYTHONPYCACHEPREFIX", None)
    figures = {}
    with tempfile.TemporaryDirectory() as cache:
        cached_env = {**ENV, "PYTHONPYCACHEPREFIX": cache}
        cached_env.pop("PYTHONDONTWRITEBYTECODE", None)
        for handler in (constants.API_HANDLER, constants.REGISTER_COMPANY_HANDLER):
            module = handler.rpartition(".")[0]
            statement = [sys.executable, "-c", f"import {module}"]
            bare = [sys.executable, "-c", "pass"]
            _run(statement, cached_env)  # fill the bytecode cache
            for label, env in (("from source", source_env), ("from bytecode", cached_env)):
                runs = [_run(statement, env) for _ in range(repeats)]
                baseline = [_run(bare, env) for _ in range(repeats)]
                figures[f"import {module}, {label} (ms over bare python)"] = 1000 * (
                    statistics.median(runs) - statistics.median(baseline)
                )
    return figures


def main() -> None:
    if not (CDK_OUT / "BillPay-dev-Service.template.json").exists():
        raise SystemExit("cdk.out is missing: run `make synth` first")
    figures = {**synth_seconds(), **asset_sizes(), **import_seconds()}
    print("| figure | value |\n| --- | --- |")
    for name, value in figures.items():
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main()
