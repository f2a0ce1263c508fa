"""What a python3.13 Lambda imports, rebuilt for this machine so that it can be imported here.

The shipped layer is for arm64: its native wheels (pydantic-core) cannot load on an x86 build
machine. So the replica is
- the code asset exactly as `make synth` staged it in cdk.out;
- the layer built the same way (same requirements, same pip options, same compiler, same
  compileall options) for this machine's architecture;
- the runtime's own packages (boto3 and what it needs, at the versions uv.lock pins for the local
  cloud), precompiled, as the Lambda runtime ships them in /var/runtime.

Used by the bytecode tests (tests/infra/test_bytecode.py) and the packaging benchmark. `-S` on every
run: no site-packages of the build machine's interpreter, only these folders, as on Lambda.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from infra import bytecode
from infra.constructs.dependency_layer import REQUIREMENTS, LayerBuildError, PipLayerBundling

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIME_MOUNT = "/var/runtime"
# What the Lambda Python runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3",)
# Run by the replica's interpreter: imports one handler and reports, as JSON, every file the
# import system compiled from source (SourceLoader.source_to_code is where that happens; a module
# loaded from a valid .pyc never reaches it), every module loaded, and whether the handler is
# callable. argv: module, attribute.
IMPORT_PROBE = """
import importlib, json, sys
from importlib import _bootstrap_external as external

compiled = []
to_code = external.SourceLoader.source_to_code

def spy(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return to_code(self, data, path, *args, **kwargs)

external.SourceLoader.source_to_code = spy
handler = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
print(json.dumps({
    "compiled": compiled,
    "files": files,
    "modules": sorted(sys.modules),
    "callable": callable(handler),
}))
"""
_HOST_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}


@dataclass(frozen=True)
class Handler:
    """One function's entry point, as the synthesized template declares it."""

    function: str  # "<stack>/<logical id>"
    handler: str  # "billpay.api.handler.handler"
    code: Path  # the staged code asset in cdk.out
    environment: tuple[str, ...]  # the names of its environment variables

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


def declared_handlers(cdk_out: Path, runtime: str) -> list[Handler]:
    """Every function of `runtime` in every stack of `cdk_out`, with its staged code asset."""
    handlers = []
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        template_file = artifact["properties"]["templateFile"]
        template = json.loads((cdk_out / template_file).read_text())
        assets_file = cdk_out / template_file.replace(".template.json", ".assets.json")
        files = json.loads(assets_file.read_text())["files"] if assets_file.exists() else {}
        stack = template_file.removesuffix(".template.json")
        for logical_id, resource in template.get("Resources", {}).items():
            props = resource.get("Properties", {})
            if resource["Type"] != "AWS::Lambda::Function" or props.get("Runtime") != runtime:
                continue
            asset = files[str(props["Code"]["S3Key"]).removesuffix(".zip")]["source"]["path"]
            variables = props.get("Environment", {}).get("Variables", {})
            handlers.append(
                Handler(
                    function=f"{stack}/{logical_id}",
                    handler=props["Handler"],
                    code=(cdk_out / asset).resolve(),
                    environment=tuple(sorted(variables)),
                )
            )
    return sorted(handlers, key=lambda h: h.function)


def host_platform() -> str:
    machine = platform.machine()
    if machine not in _HOST_PLATFORMS:
        raise LayerBuildError(f"no manylinux platform known for this machine ({machine})")
    return _HOST_PLATFORMS[machine]


def build_layer(dest: Path, compiler: bytecode.Interpreter | None, version: str) -> Path:
    """The dependency layer for this machine, built like the shipped one; returns its python/."""
    PipLayerBundling(
        requirements=REQUIREMENTS,
        platform=host_platform(),
        python_version=version,
        compiler=compiler,
    ).try_bundle(str(dest))
    return dest / "python"


def runtime_pins(lock: Path = REPO_ROOT / "uv.lock") -> list[str]:
    """`RUNTIME_PACKAGES` and everything they depend on, at the versions uv.lock pins."""
    packages = {p["name"]: p for p in tomllib.loads(lock.read_text())["package"]}
    wanted: set[str] = set()
    pending = list(RUNTIME_PACKAGES)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(d["name"] for d in packages[name].get("dependencies", []))
    return sorted(f"{name}=={packages[name]['version']}" for name in wanted)


def build_runtime(dest: Path, compiler: bytecode.Interpreter, version: str) -> Path:
    """The runtime's own packages for this machine, compiled; returns the folder."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",  # runtime_pins is the whole closure, pinned
        "--target",
        str(dest),
        "--platform",
        host_platform(),
        "--implementation",
        "cp",
        "--python-version",
        version,
        "--only-binary=:all:",
        *runtime_pins(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise LayerBuildError(f"pip could not install the runtime's packages:\n{result.stderr}")
    compiler.compile_tree(dest, mount=RUNTIME_MOUNT)
    return dest


def source_copy(tree: Path, dest: Path) -> Path:
    """`tree` as it would ship without bytecode."""
    shutil.copytree(tree, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@dataclass(frozen=True)
class Probe:
    compiled: tuple[str, ...]  # files compiled from source during the import
    files: tuple[str, ...]  # files of every module loaded
    modules: frozenset[str]
    handler_callable: bool

    def compiled_under(self, folder: Path) -> list[str]:
        return [f for f in self.compiled if Path(f).is_relative_to(folder)]

    def loaded_under(self, folder: Path) -> list[str]:
        return [f for f in self.files if Path(f).is_relative_to(folder)]


@dataclass(frozen=True)
class Replica:
    interpreter: bytecode.Interpreter
    layer: Path  # the layer's python/ folder, for this machine
    runtime: Path  # boto3 and friends, compiled

    def python_path(self, code: Path, layer: Path | None = None) -> str:
        """Lambda's order: the code, the layer, the runtime's packages."""
        return ":".join(str(p) for p in (code, layer or self.layer, self.runtime))

    def command(self, *args: str) -> list[str]:
        # -S: only the folders above and the standard library; -B: nothing written, so a module
        # without usable bytecode is compiled on every run, as on Lambda's read-only file system.
        return [str(self.interpreter.path), "-S", "-B", *args]

    def probe(self, handler: Handler, code: Path | None = None, layer: Path | None = None) -> Probe:
        """Import `handler` in a fresh interpreter (from `code` and `layer` if given)."""
        result = subprocess.run(  # noqa: S603 - our interpreter, our probe, no shell
            self.command("-P", "-c", IMPORT_PROBE, handler.module, handler.attribute),
            env=self.environment(code or handler.code, layer),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"importing {handler.handler} failed:\n{result.stderr}")
        report = json.loads(result.stdout)
        return Probe(
            compiled=tuple(report["compiled"]),
            files=tuple(report["files"]),
            modules=frozenset(report["modules"]),
            handler_callable=bool(report["callable"]),
        )

    def environment(self, code: Path, layer: Path | None = None) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": self.python_path(code, layer),
            "PYTHONDONTWRITEBYTECODE": "1",
        }


def build_replica(dest: Path, interpreter: bytecode.Interpreter) -> Replica:
    return Replica(
        interpreter=interpreter,
        layer=build_layer(dest / "layer", interpreter, interpreter.version),
        runtime=build_runtime(dest / "runtime", interpreter, interpreter.version),
    )
