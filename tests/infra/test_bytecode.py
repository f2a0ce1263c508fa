"""Bytecode: what ships is compiled by the runtime's own Python version, and it is really used.

The shipped-asset tests read cdk.out (`make synth`, which `make test` runs first). They need a
Python of the runtime's version on this machine; without one they fail and say how to get it.
"""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bytecode, constants, lambda_replica
from infra.constructs.functions import RUNTIME

ROOT = Path(__file__).resolve().parents[2]
CDK_OUT = ROOT / "cdk.out"
VERSION = RUNTIME.name.removeprefix("python")


@pytest.fixture(scope="module")
def interpreter() -> bytecode.Interpreter:
    found = bytecode.find_interpreter(VERSION)
    if found is None:
        pytest.fail(bytecode.missing_interpreter_warning(VERSION))
    return found


@pytest.fixture(scope="module")
def handlers() -> list[lambda_replica.Handler]:
    if not (CDK_OUT / "manifest.json").exists():
        pytest.fail("cdk.out is missing: run `make synth` first (make test does)")
    declared = lambda_replica.declared_handlers(CDK_OUT, RUNTIME.name)
    names = {h.handler for h in declared}
    assert {constants.API_HANDLER, constants.REGISTER_COMPANY_HANDLER} <= names, names
    return declared


@pytest.fixture(scope="module")
def replica(tmp_path_factory, interpreter) -> lambda_replica.Replica:
    return lambda_replica.build_replica(tmp_path_factory.mktemp("replica"), interpreter)


def _nowhere(tmp_path: Path) -> dict[str, str]:
    """An environment in which no discovery route leads to an interpreter."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    return {
        "PATH": str(empty),
        "HOME": str(empty),
        "PYENV_ROOT": str(empty),
        "UV_PYTHON_INSTALL_DIR": str(empty),
    }


# Discovery


def test_discovery_pointed_at_nothing_finds_nothing(tmp_path):
    assert bytecode.find_interpreter(VERSION, env=_nowhere(tmp_path)) is None


def test_an_interpreter_of_another_version_is_never_taken(tmp_path):
    assert bytecode.identify(sys.executable, VERSION) is None  # this venv's Python 3.11
    env = {**_nowhere(tmp_path), "UV_PYTHON": sys.executable}
    assert bytecode.find_interpreter(VERSION, env=env) is None


def test_uv_python_names_the_interpreter(tmp_path, interpreter):
    env = {**_nowhere(tmp_path), "UV_PYTHON": str(interpreter.path)}
    found = bytecode.find_interpreter(VERSION, env=env)
    assert found == interpreter


def test_pyenv_installs_are_found_newest_first_skipping_broken_ones(tmp_path, interpreter):
    root = tmp_path / "pyenv"
    working = root / "versions" / f"{VERSION}.0" / "bin"
    broken = root / "versions" / f"{VERSION}.99" / "bin"
    working.mkdir(parents=True)
    broken.mkdir(parents=True)
    (working / f"python{VERSION}").symlink_to(interpreter.path)
    (broken / f"python{VERSION}").write_text("#!/bin/sh\nexit 1\n")
    (broken / f"python{VERSION}").chmod(0o755)
    env = {**_nowhere(tmp_path), "PYENV_ROOT": str(root)}
    found = bytecode.find_interpreter(VERSION, env=env)
    assert found is not None
    assert found.path == working / f"python{VERSION}"


# Compiling and checking


def _package(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("VALUE = 1\n")
    return root


def test_compiled_tree_is_unchecked_hash_bytecode_for_every_module(tmp_path, interpreter):
    root = _package(tmp_path / "code")
    stale = root / "pkg" / "__pycache__" / "mod.cpython-311.pyc"
    stale.parent.mkdir()
    stale.write_bytes(b"left over by a local test run")
    interpreter.compile_tree(root, mount="/var/task")
    pycs = sorted(p.name for p in root.rglob("*.pyc"))
    assert pycs == [f"__init__.{interpreter.cache_tag}.pyc", f"mod.{interpreter.cache_tag}.pyc"]
    mod = root / "pkg" / "__pycache__" / f"mod.{interpreter.cache_tag}.pyc"
    assert bytecode.pyc_header(mod) == (interpreter.magic, 1)  # 1: hash-based, never checked
    assert b"/var/task/pkg/mod.py" in mod.read_bytes()  # the deployed path, not this machine's
    assert bytecode.check_tree(root, interpreter) == []


def test_bytecode_of_another_python_is_caught(tmp_path, interpreter):
    root = _package(tmp_path / "code")
    interpreter.compile_tree(root, mount="/var/task")
    # This venv's Python 3.11 writes its own magic number under the runtime's file name: the
    # runtime would reject it and compile the source on every cold start.
    forged = root / "pkg" / "__pycache__" / f"mod.{interpreter.cache_tag}.pyc"
    py_compile.compile(
        str(root / "pkg" / "mod.py"),
        cfile=str(forged),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    (root / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(forged.read_bytes())
    (root / "pkg" / "new.py").write_text("")
    problems = bytecode.check_tree(root, interpreter)
    assert any(f"is not Python {VERSION}'s" in p and "mod." in p for p in problems), problems
    assert any("for another Python" in p and "cpython-311" in p for p in problems), problems
    assert any("missing bytecode" in p and "new." in p for p in problems), problems


def test_source_that_does_not_compile_stops_the_build(tmp_path, interpreter):
    root = _package(tmp_path / "code")
    (root / "pkg" / "broken.py").write_text("def (:\n")
    with pytest.raises(bytecode.BytecodeError, match=r"broken\.py"):
        interpreter.compile_tree(root, mount="/var/task")


# What `make synth` shipped


def _shipped_trees(handlers) -> dict[str, Path]:
    layers = json.loads((CDK_OUT / "BillPay-dev-Service.template.json").read_text())["Resources"]
    files = json.loads((CDK_OUT / "BillPay-dev-Service.assets.json").read_text())["files"]
    trees = {f"code of {h.function}": h.code for h in handlers}
    for logical_id, resource in layers.items():
        if resource["Type"] == "AWS::Lambda::LayerVersion":
            key = str(resource["Properties"]["Content"]["S3Key"]).removesuffix(".zip")
            trees[f"layer {logical_id}"] = CDK_OUT / files[key]["source"]["path"]
    return trees


def test_every_shipped_pyc_carries_the_runtime_pythons_magic_number(handlers, interpreter):
    """`interpreter.magic` is importlib.util.MAGIC_NUMBER as the 3.13 interpreter reports it."""
    trees = _shipped_trees(handlers)
    assert any(name.startswith("layer") for name in trees)
    for name, tree in trees.items():
        assert list(tree.rglob("*.pyc")), f"{name} ships no bytecode"
        assert bytecode.check_tree(tree, interpreter) == [], name


def test_every_handler_imports_from_shipped_bytecode_only(handlers, replica):
    """Our code and the layer: not one module compiled from source on import."""
    problems: dict[str, object] = {}
    from_layer = []
    for handler in handlers:
        try:
            probe = replica.probe(handler)
        except RuntimeError as error:  # the handler does not import at all
            problems[handler.handler] = str(error).strip().splitlines()[-1]
            continue
        from_layer += probe.loaded_under(replica.layer)
        if not probe.handler_callable:
            problems[handler.handler] = "not callable"
        elif not probe.loaded_under(handler.code):
            problems[handler.handler] = "loaded none of our modules"
        elif probe.compiled_under(handler.code) or probe.compiled_under(replica.layer):
            problems[handler.handler] = {
                "compiled from source": [
                    *probe.compiled_under(handler.code),
                    *probe.compiled_under(replica.layer),
                ]
            }
    assert problems == {}
    assert from_layer, "no handler loaded anything from the layer"


def test_the_import_probe_sees_modules_compiled_from_source(handlers, replica, tmp_path):
    """The check above can fail: the same imports from source-only copies are all compiled."""
    code = lambda_replica.source_copy(handlers[0].code, tmp_path / "code")
    layer = lambda_replica.source_copy(replica.layer, tmp_path / "layer")
    probe = replica.probe(handlers[0], code=code, layer=layer)
    for folder in (code, layer):
        loaded = [f for f in probe.loaded_under(folder) if f.endswith(".py")]  # not extensions
        assert loaded
        # Every module loaded was compiled (and a few that failed to import, e.g. Windows-only).
        assert set(loaded) <= set(probe.compiled_under(folder))


def test_without_the_runtime_python_synth_ships_source_and_says_so_once(tmp_path, handlers):
    """Discovery pointed at nothing: synth still succeeds, with no .pyc anywhere, and warns once."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = shutil.which("node")
    assert node, "node is needed to synthesize"
    (bin_dir / "node").symlink_to(node)
    env = {k: v for k, v in os.environ.items() if k != "UV_PYTHON"}
    env |= _nowhere(tmp_path) | {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root")}
    outdir = tmp_path / "cdk.out"
    script = f"from infra.app import build_app; build_app(outdir={str(outdir)!r})[0].synth()"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count(f"WARNING: no Python {VERSION} found") == 1, result.stderr[-3000:]
    assert "uv python install" in result.stderr
    source_only = lambda_replica.declared_handlers(outdir, RUNTIME.name)
    assert {h.handler for h in source_only} == {h.handler for h in handlers}
    for tree in _assets(outdir):
        assert list(tree.rglob("*.py")), tree
        assert not list(tree.rglob("*.pyc")), tree
    # The asset hash follows how it is compiled: this is another asset than the shipped one.
    assert {h.code.name for h in source_only}.isdisjoint({h.code.name for h in handlers})


def _assets(outdir: Path) -> list[Path]:
    return [p for p in outdir.iterdir() if p.is_dir() and p.name.startswith("asset.")]


def test_asset_hashes_are_the_same_in_every_synth(dev, handlers):
    """The infra tests' own synth (another process, bundling skipped) names the same assets as
    `make synth`: unchanged code and requirements are never bundled again."""
    shipped = json.loads((CDK_OUT / "BillPay-dev-Service.template.json").read_text())["Resources"]
    ours = dev.service.to_json()["Resources"]
    for kind, key in (("AWS::Lambda::Function", "Code"), ("AWS::Lambda::LayerVersion", "Content")):
        hashes = {
            logical_id: resource["Properties"][key]["S3Key"]
            for logical_id, resource in ours.items()
            if resource["Type"] == kind
        }
        assert hashes
        for logical_id, s3_key in hashes.items():
            assert shipped[logical_id]["Properties"][key]["S3Key"] == s3_key, (
                f"{logical_id}: cdk.out is stale (run `make synth`) or the hash is not stable"
            )
