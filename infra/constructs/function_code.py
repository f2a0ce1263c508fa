"""The one code asset every function runs: `functions/`, copied and compiled to bytecode locally.

Like the layer, it is bundled on this machine (no Docker): the source is copied without any local
bytecode or tool caches, then compiled by a Python of the runtime's version (`infra/bytecode.py`),
or shipped as source when the machine has none. The asset hash follows the source (minus
`EXCLUDES`) and how it is compiled, so unchanged code is not bundled again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import bytecode

FUNCTIONS_SOURCE = Path(__file__).resolve().parents[2] / "functions"
# Left out of the asset and of its hash: local bytecode (for whatever Python ran the tests) and
# tool caches. The copy below leaves out the same names.
_EXCLUDED_NAMES = ("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache", ".ruff_cache")
EXCLUDES = [f"**/{name}" for name in _EXCLUDED_NAMES]


@jsii.implements(ILocalBundling)
class CodeBundling:
    """An ILocalBundling that copies the source tree and compiles it with `compiler`, if any."""

    def __init__(self, *, source: Path, compiler: bytecode.Interpreter | None) -> None:
        self._source = source
        self._compiler = compiler

    @property
    def hash_inputs(self) -> dict[str, str]:
        return {"PYTHON_BYTECODE": self._compiler.mode if self._compiler else bytecode.SOURCE_ONLY}

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        out = Path(output_dir)
        shutil.copytree(
            self._source, out, ignore=shutil.ignore_patterns(*_EXCLUDED_NAMES), dirs_exist_ok=True
        )
        if self._compiler is None:
            bytecode.strip_bytecode(out)
        else:
            self._compiler.compile_tree(out, mount=bytecode.CODE_MOUNT)
        return True


def function_code(runtime: lambda_.Runtime) -> lambda_.Code:
    version = runtime.name.removeprefix("python")
    bundler = CodeBundling(source=FUNCTIONS_SOURCE, compiler=bytecode.compiler_for(version))
    return lambda_.Code.from_asset(
        str(FUNCTIONS_SOURCE),
        exclude=EXCLUDES,
        asset_hash_type=AssetHashType.SOURCE,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("unused-local-bundling-only"),
            local=bundler,
            # Never given to a container either: here so the asset hash follows them.
            environment=bundler.hash_inputs,
        ),
    )
