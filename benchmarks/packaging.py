"""What a deploy costs and what a cold start pays: synth time, asset sizes, handler import time.

    .venv/bin/python -m benchmarks.packaging [--repeats 15]

Synth is timed in a fresh output folder with bundling skipped (what the infra tests pay) and in
cdk.out with the assets already built (what `make synth` pays on a warm checkout).

Import time is measured for every module holding a handler the synthesized templates declare,
with a Python of the runtime's version, inside fresh interpreters (`-S -B`: nothing from this machine's site-packages,
nothing written): the time `import <handler module>` takes, i.e. what it adds to a bare
interpreter's start. Lambda's arm64 layer cannot load on this machine, so the layer is rebuilt for
this machine's architecture with the same requirements, pip options and compiler
(`infra/lambda_replica.py`); the code is the staged asset from cdk.out; boto3 is precompiled, as
the Lambda runtime ships it. "From bytecode" is what ships now; "from source" is the same code and
layer without their .pyc (what shipped before, and what ships when synth finds no 3.13). The two
are interleaved, run by run, so that machine noise hits both alike; compare the ratio.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from infra import bytecode, lambda_replica
from infra.constructs.functions import RUNTIME

ROOT = Path(__file__).resolve().parents[1]
CDK_OUT = ROOT / "cdk.out"
ENV = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
MIB = 1024 * 1024
CODAT_SDK = "codat_sync_for_payables"
# Times importing boto3 in an interpreter that has botocore's session already: what boto3 adds
# (s3transfer, multiprocessing, its resources), which the functions no longer import.
_BOTO3_ON_TOP = (
    "import botocore.config, botocore.session, time\n"
    "wall = time.perf_counter()\n"
    "import boto3\n"
    "print(time.perf_counter() - wall)\n"
)
# Prints the wall-clock and CPU seconds the imports take in this fresh interpreter. argv: modules.
_TIMED_IMPORT = (
    "import importlib, sys, time\n"
    "wall, cpu = time.perf_counter(), time.process_time()\n"
    "for module in sys.argv[1:]:\n"
    "    importlib.import_module(module)\n"
    "print(time.perf_counter() - wall, time.process_time() - cpu)\n"
)
# The third-party floor, written as modules so that they can be compiled like the code asset:
# what every function imports before any module of ours. botocore's session and config are what
# every function needs to make its AWS clients (the runtime's botocore, precompiled, so the same
# in both columns); the second adds pydantic with one model built and Powertools' Logger, which
# every function but the webhook ingress imports.
_FLOORS = {
    "_floor_botocore": (
        "botocore's session and config alone (every function; the webhook ingress's floor)",
        "import botocore.config\nimport botocore.session\n",
    ),
    "_floor_stack": (
        "botocore + pydantic with one model + Powertools' Logger (every other function's floor)",
        "import botocore.config\nimport botocore.session\n"
        "from aws_lambda_powertools import Logger\nfrom pydantic import BaseModel\n\n\n"
        "class One(BaseModel):\n    x: int\n",
    ),
}


def _run(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env or ENV, check=True, capture_output=True)  # noqa: S603
    return time.perf_counter() - start


def synth_seconds() -> dict[str, str]:
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
    return {"synth, bundling skipped (s)": f"{cold:.1f}", "synth, assets cached (s)": f"{warm:.1f}"}


def _folder_sizes(folder: Path, keep: Callable[[Path], bool] = lambda _: True) -> tuple[int, int]:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and keep(p)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    return sum(p.stat().st_size for p in files), buffer.tell()


def _source_only(path: Path) -> bool:
    return path.suffix != ".pyc"


def asset_sizes() -> dict[str, str]:
    template = json.loads((CDK_OUT / "BillPay-dev-Service.template.json").read_text())
    files = json.loads((CDK_OUT / "BillPay-dev-Service.assets.json").read_text())["files"]

    def folder(s3_key: str) -> Path:
        return CDK_OUT / str(files[s3_key.removesuffix(".zip")]["source"]["path"])

    resources = template["Resources"].values()
    (layer,) = [r for r in resources if r["Type"] == "AWS::Lambda::LayerVersion"]
    code = next(r for r in resources if r["Type"] == "AWS::Lambda::Function")
    layer_dir = folder(layer["Properties"]["Content"]["S3Key"])
    code_dir = folder(code["Properties"]["Code"]["S3Key"])
    layer_raw, layer_zip = _folder_sizes(layer_dir)
    layer_src_raw, layer_src_zip = _folder_sizes(layer_dir, _source_only)
    code_raw, code_zip = _folder_sizes(code_dir)
    code_src_raw, code_src_zip = _folder_sizes(code_dir, _source_only)
    return {
        "layer as shipped (arm64, bytecode), unzipped / zipped (MiB)": (
            f"{layer_raw / MIB:.1f} / {layer_zip / MIB:.1f}"
        ),
        "the same layer without its .pyc, unzipped / zipped (MiB)": (
            f"{layer_src_raw / MIB:.1f} / {layer_src_zip / MIB:.1f}"
        ),
        "code as shipped (bytecode), unzipped / zipped (KiB)": (
            f"{code_raw / 1024:.1f} / {code_zip / 1024:.1f}"
        ),
        "the same code without its .pyc, unzipped / zipped (KiB)": (
            f"{code_src_raw / 1024:.1f} / {code_src_zip / 1024:.1f}"
        ),
    }


def _timed_import(
    replica: lambda_replica.Replica, modules: tuple[str, ...], code: Path, layer: Path | None
) -> tuple[float, float]:
    result = subprocess.run(  # noqa: S603 - our interpreter, fixed script
        replica.command("-P", "-c", _TIMED_IMPORT, *modules),
        env=replica.environment(code, layer),
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = result.stdout.split()
    return float(wall), float(cpu)


def dominant_packages(
    replica: lambda_replica.Replica,
    modules: tuple[str, ...],
    code: Path,
    runs: int = 7,
    top: int = 5,
) -> list[tuple[str, float]]:
    """The top-level packages whose own module bodies take longest (`-X importtime`, from
    bytecode), as medians over `runs` fresh interpreters."""
    samples: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
    for _ in range(runs):
        result = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
            replica.command("-X", "importtime", "-c", f"import {', '.join(modules)}"),
            env=replica.environment(code),
            capture_output=True,
            text=True,
            check=True,
        )
        totals: collections.Counter[str] = collections.Counter()
        for line in result.stderr.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if len(fields) == 3 and fields[0].strip().isdigit():
                totals[fields[2].strip().partition(".")[0]] += int(fields[0])
        for name, microseconds in totals.items():
            samples[name].append(microseconds)
    medians = {
        name: statistics.median(values + [0] * (runs - len(values)))
        for name, values in samples.items()
    }
    ranked = sorted(medians.items(), key=lambda item: item[1], reverse=True)[:top]
    return [(name, us / 1000) for name, us in ranked]


def import_times(repeats: int) -> tuple[list[list[str]], list[str], list[str]]:
    version = RUNTIME.name.removeprefix("python")
    interpreter = bytecode.find_interpreter(version)
    if interpreter is None:
        raise SystemExit(bytecode.missing_interpreter_warning(version))
    handlers = lambda_replica.declared_handlers(CDK_OUT, RUNTIME.name)
    rows: list[list[str]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        replica = lambda_replica.build_replica(work, interpreter)
        source_layer = lambda_replica.source_copy(replica.layer, work / "layer-source")
        source_code: dict[Path, Path] = {}
        for handler in handlers:
            if handler.code not in source_code:
                target = work / f"code-source-{len(source_code)}"
                source_code[handler.code] = lambda_replica.source_copy(handler.code, target)
        # One row per module the handlers live in (functions sharing a module import the same).
        entries = lambda_replica.entry_modules(handlers)
        measured: list[tuple[str, tuple[str, ...], Path, Path]] = [
            (entry.label, (entry.module,), entry.code, source_code[entry.code]) for entry in entries
        ]
        # For scale: the Codat SDK on its own, what a function that calls Codat adds; and the
        # third-party floors, compiled (or not) like the code asset.
        code = entries[0].code
        measured.append(
            (f"`import {CODAT_SDK}` alone, for scale", (CODAT_SDK,), code, source_code[code])
        )
        floors = work / "floors"
        floors.mkdir()
        for module, (_, text) in _FLOORS.items():
            (floors / f"{module}.py").write_text(text)
        interpreter.compile_tree(floors, mount=bytecode.CODE_MOUNT)
        floors_source = lambda_replica.source_copy(floors, work / "floors-source")
        for module, (label, _) in _FLOORS.items():
            measured.append((f"floor: {label}", (module,), floors, floors_source))
        for label, modules, compiled_code, source_only_code in measured:
            compiled: list[tuple[float, float]] = []
            source: list[tuple[float, float]] = []
            try:
                _timed_import(replica, modules, compiled_code, None)  # warm the file cache
            except subprocess.CalledProcessError as error:
                reason = error.stderr.strip().splitlines()[-1]
                rows.append([label, *(["does not import"] * 6)])
                notes.append(f"- {label}: does not import: {reason}")
                continue
            cases = [
                (compiled, compiled_code, None),
                (source, source_only_code, source_layer),
            ]
            for run in range(repeats):
                # Alternate which case goes first, so that a burst of noise favours neither.
                for results, folder, layer in cases if run % 2 == 0 else cases[::-1]:
                    results.append(_timed_import(replica, modules, folder, layer))
            row = [label]
            for clock in (0, 1):  # wall, then CPU
                from_bytecode = 1000 * statistics.median(run[clock] for run in compiled)
                from_source = 1000 * statistics.median(run[clock] for run in source)
                row += [
                    f"{from_bytecode:.0f}",
                    f"{from_source:.0f}",
                    f"**{from_bytecode / from_source:.2f}**",
                ]
            rows.append(row)
            top = dominant_packages(replica, modules, compiled_code)
            notes.append(f"- {label}: " + ", ".join(f"{name} {ms:.0f}" for name, ms in top))
        boto3_on_top = statistics.median(
            float(
                subprocess.run(  # noqa: S603 - our interpreter, fixed script
                    replica.command("-P", "-c", _BOTO3_ON_TOP),
                    env=replica.environment(entries[0].code),
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(repeats)
        )
        notes.append(
            f"- `import boto3` after botocore's session (what the functions no longer import): "
            f"{1000 * boto3_on_top:.0f} ms wall, median"
        )
        host_raw, host_zip = _folder_sizes(replica.layer.parent)
    context = [
        f"Python {interpreter.version} ({interpreter.path}), {repeats} fresh interpreters per "
        f"case; the layer built for this machine ({lambda_replica.host_platform()}) with the "
        f"shipped layer's options: {host_raw / MIB:.1f} MiB unzipped, {host_zip / MIB:.1f} MiB zipped."
    ]
    return rows, notes, context


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="fresh interpreters per case")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        parser.error("--repeats must be at least 7")
    if not (CDK_OUT / "BillPay-dev-Service.template.json").exists():
        raise SystemExit("cdk.out is missing: run `make synth` first")
    figures = {**synth_seconds(), **asset_sizes()}
    print("| figure | value |\n| --- | --- |")
    for name, value in figures.items():
        print(f"| {name} | {value} |")
    load_before = os.getloadavg()[0]
    rows, notes, context = import_times(args.repeats)
    context.append(
        f"Load average ({os.cpu_count()} CPUs) {load_before:.1f} before the import runs, "
        f"{os.getloadavg()[0]:.1f} after."
    )
    print("\n" + " ".join(context))
    print(
        "\n| handler | from bytecode, wall (ms) | from source, wall (ms) | ratio | "
        "from bytecode, CPU (ms) | from source, CPU (ms) | ratio |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        "\nWhere a handler's imports go: the top-level packages whose own module bodies take "
        "longest\n(`-X importtime` self time, medians of 7 runs, from bytecode, ms):\n"
    )
    print("\n".join(notes))


if __name__ == "__main__":
    main()
