"""The one dependency layer, built on this machine with pip: no Docker, ever.

pip is told the Lambda platform (manylinux for the target architecture, CPython, the runtime's Python
version) and to accept wheels only, so the layer matches Lambda even when built on an x86 laptop
running another Python. Then a Python of the runtime's version compiles it to bytecode
(`infra/bytecode.py`), or, when the machine has none, it ships source only. The asset hash follows
layers/requirements.txt, the pip target and how it is compiled, so the layer is rebuilt only when
one of them changes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import bytecode

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER_SOURCE = REPO_ROOT / "layers"
REQUIREMENTS = LAYER_SOURCE / "requirements.txt"

_PLATFORMS = {
    lambda_.Architecture.ARM_64.name: "manylinux2014_aarch64",
    lambda_.Architecture.X86_64.name: "manylinux2014_x86_64",
}


class LayerBuildError(RuntimeError):
    """pip could not build the layer; raised instead of falling back to Docker."""


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """An ILocalBundling that runs `pip install --platform ... --only-binary=:all: --target`, then
    compiles the result with `compiler` (a Python of the runtime's version), if there is one."""

    def __init__(
        self,
        *,
        requirements: Path,
        platform: str,
        python_version: str,
        compiler: bytecode.Interpreter | None,
    ) -> None:
        self._requirements = requirements
        self._platform = platform
        self._python_version = python_version
        self._compiler = compiler
        if compiler is not None and compiler.version != python_version:
            raise ValueError(
                f"Python {compiler.version} cannot compile a layer for Python {python_version}"
            )

    @property
    def hash_inputs(self) -> dict[str, str]:
        """What the layer's content follows besides the requirements (see DependencyLayer)."""
        return {
            "PIP_TARGET": f"{self._platform} cp{self._python_version}",
            "PYTHON_BYTECODE": self._compiler.mode if self._compiler else bytecode.SOURCE_ONLY,
        }

    def pip_command(self, output_dir: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # pip's own Python is not the runtime's: its .pyc would be dead weight
            "--requirement",
            str(self._requirements),
            "--target",
            str(Path(output_dir) / "python"),
            "--platform",
            self._platform,
            "--implementation",
            "cp",
            "--python-version",
            self._python_version,
            "--only-binary=:all:",
        ]

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            self.pip_command(output_dir), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise LayerBuildError(
                f"pip could not build the dependency layer (exit {result.returncode}):\n"
                f"{result.stderr.strip()}"
            )
        site = Path(output_dir) / "python"
        if self._compiler is None:
            bytecode.strip_bytecode(site)
        else:
            self._compiler.compile_tree(site, mount=f"{bytecode.LAYER_MOUNT}/python")
        return True


class DependencyLayer(Construct):
    """The third-party dependencies of every function, for one runtime and architecture."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
    ) -> None:
        super().__init__(scope, construct_id)
        python_version = runtime.name.removeprefix("python")
        bundler = PipLayerBundling(
            requirements=REQUIREMENTS,
            platform=_PLATFORMS[architecture.name],
            python_version=python_version,
            compiler=bytecode.compiler_for(python_version),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(
                str(LAYER_SOURCE),
                asset_hash_type=AssetHashType.SOURCE,
                bundling=BundlingOptions(
                    # Never pulled: local bundling always succeeds or raises LayerBuildError.
                    image=DockerImage.from_registry("unused-local-bundling-only"),
                    local=bundler,
                    # Never given to a container either: here so the asset hash follows them.
                    environment=bundler.hash_inputs,
                ),
            ),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description=f"Third-party dependencies for {runtime.name}/{architecture.name}",
        )
