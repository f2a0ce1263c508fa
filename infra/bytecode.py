"""Bytecode for the Lambda runtime, compiled at bundling time by a Python of the runtime's version.

Lambda mounts the code at /var/task and layers at /opt, both read-only: a module shipped without a
matching `.pyc` is compiled from source on every cold start and the result thrown away. So the
code asset and the layer are compiled here, by an interpreter of exactly the runtime's minor
version (a `.pyc` carries its version's magic number; any other version's file is silently
ignored), found on the build machine in this order:

1. `UV_PYTHON`: a path to an interpreter, or a request uv understands (`3.13`, `cpython@3.13`);
2. uv's own discovery (`uv python find 3.13`): managed installs (`uv python install 3.13`), PATH;
3. pyenv's installs (`$PYENV_ROOT/versions/3.13.*`, `~/.pyenv` by default);
4. `python3.13` on PATH.

Each candidate is run once to confirm its version; the first that is really 3.13 compiles. With
none, the synth still works and ships source only, and says so once on stderr.

The `.pyc` files use unchecked-hash invalidation: CDK zips assets with fixed timestamps, so a
timestamp-checked `.pyc` would be judged stale against its source and recompiled every cold start,
and a checked-hash one would cost a hash of every source file. Unchecked means "trust the `.pyc`",
which holds because the code and its bytecode ship together and never change in place.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PINNED_UV = REPO_ROOT / "build" / "tools" / "bin" / "uv"

# compileall's options, everything but the paths. Part of each asset's hash (see `mode`), so that
# changing them rebuilds the assets.
COMPILE_OPTIONS = ("-q", "-j", "0", "--invalidation-mode", "unchecked-hash")
# The hash input of an asset shipped without bytecode.
SOURCE_ONLY = "source only"
# Where Lambda puts the code and the layer: compiled-in file names match the deployed files.
CODE_MOUNT = "/var/task"
LAYER_MOUNT = "/opt"

# The .pyc header: 4 bytes of magic, then 4 bytes of flags (bit 0: hash-based, bit 1: check the
# source). Unchecked hash-based is flags == 1.
_UNCHECKED_HASH_FLAGS = 1
_PROBE = (
    "import importlib.util, sys;"
    "print(f'{sys.version_info[0]}.{sys.version_info[1]}', sys.implementation.name,"
    " sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex())"
)


class BytecodeError(RuntimeError):
    """Compiling failed, or the result would not be used by the runtime; the build stops."""


@dataclass(frozen=True)
class Interpreter:
    """A CPython of the runtime's minor version, as it reported itself."""

    path: Path
    version: str  # "3.13"
    cache_tag: str  # "cpython-313": the middle of every .pyc file name it writes and reads
    magic: bytes  # importlib.util.MAGIC_NUMBER: the first 4 bytes of every .pyc it accepts

    @property
    def mode(self) -> str:
        """How assets are compiled, for their hash: same mode, same bytes."""
        return f"{self.cache_tag} magic={self.magic.hex()} {' '.join(COMPILE_OPTIONS)}"

    def compile_tree(self, root: Path, *, mount: str) -> None:
        """Compile every .py under `root` in place; file names inside read as `mount`/..."""
        root = root.resolve()
        _remove_bytecode(root)
        command = [
            str(self.path),
            "-S",  # nothing from this interpreter's site-packages runs or gets imported
            "-m",
            "compileall",
            *COMPILE_OPTIONS,
            "-s",
            str(root),
            "-p",
            mount,
            str(root),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise BytecodeError(
                f"Python {self.version} ({self.path}) could not compile {root}:\n"
                f"{(result.stdout + result.stderr).strip()}"
            )
        problems = check_tree(root, self)
        if problems:
            raise BytecodeError("\n".join(problems[:20]))


def _remove_bytecode(root: Path) -> None:
    """Drop whatever bytecode is already there (a wheel's, a local run's): it is for another
    Python or another copy of the source, and would be at best dead weight."""
    for cache in sorted(root.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    for stray in root.rglob("*.py[co]"):
        stray.unlink()


def strip_bytecode(root: Path) -> None:
    """What ships when no interpreter of the runtime's version exists: source, no .pyc at all."""
    _remove_bytecode(root)


def pyc_header(path: Path) -> tuple[bytes, int]:
    header = path.read_bytes()[:8]
    return header[:4], int.from_bytes(header[4:8], "little")


def check_tree(root: Path, interpreter: Interpreter) -> list[str]:
    """Every way the bytecode under `root` would be ignored or stale on the runtime.

    Empty when every .py has its .pyc in `__pycache__`, named with the runtime's cache tag, with
    the runtime's magic number and unchecked-hash flags, and no other .pyc exists.
    """
    problems = []
    expected = {
        py.parent / "__pycache__" / f"{py.stem}.{interpreter.cache_tag}.pyc"
        for py in root.rglob("*.py")
    }
    found = set(root.rglob("*.pyc"))
    for missing in sorted(expected - found):
        problems.append(f"missing bytecode: {missing.relative_to(root)}")
    for pyc in sorted(found):
        name = pyc.relative_to(root)
        if pyc not in expected:
            problems.append(f"bytecode with no source or for another Python: {name}")
            continue
        magic, flags = pyc_header(pyc)
        if magic != interpreter.magic:
            problems.append(
                f"{name}: magic {magic.hex()} is not Python {interpreter.version}'s "
                f"{interpreter.magic.hex()}; the runtime would ignore it and compile the source"
            )
        elif flags != _UNCHECKED_HASH_FLAGS:
            problems.append(f"{name}: flags {flags:#x}, expected unchecked-hash ({1:#x})")
    return problems


def identify(path: str | Path, version: str) -> Interpreter | None:
    """Run `path` once; the interpreter if it is CPython `version`, else None."""
    try:
        result = subprocess.run(  # noqa: S603 - an interpreter path, fixed arguments, no shell
            [str(path), "-S", "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    fields = result.stdout.split()
    if result.returncode != 0 or len(fields) != 4:
        return None
    found_version, implementation, cache_tag, magic = fields
    if found_version != version or implementation != "cpython":
        return None
    return Interpreter(
        path=Path(path), version=version, cache_tag=cache_tag, magic=bytes.fromhex(magic)
    )


def _uv_find(request: str, env: Mapping[str, str], uv: Path | None) -> Iterator[str]:
    if uv is None:
        return
    try:
        result = subprocess.run(  # noqa: S603 - the pinned uv, fixed arguments, no shell
            [str(uv), "python", "find", "--no-config", "--offline", request],
            capture_output=True,
            text=True,
            env=dict(env),
            cwd=REPO_ROOT,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return
    if result.returncode == 0 and result.stdout.strip():
        yield result.stdout.strip()


def candidates(version: str, env: Mapping[str, str], uv: Path | None) -> Iterator[str]:
    """Where an interpreter of `version` may be, most explicit first (see the module doc)."""
    requested = env.get("UV_PYTHON")
    if requested:
        if os.sep in requested:
            yield requested
        else:
            yield from _uv_find(requested, env, uv)
    yield from _uv_find(version, env, uv)
    home = env.get("HOME")
    pyenv_root = env.get("PYENV_ROOT") or (str(Path(home) / ".pyenv") if home else None)
    if pyenv_root:
        installs = sorted(
            Path(pyenv_root).glob(f"versions/{version}.*/bin/python{version}"),
            key=lambda p: [int(n) if n.isdigit() else -1 for n in p.parts[-3].split(".")],
            reverse=True,
        )
        yield from (str(p) for p in installs)
    on_path = shutil.which(f"python{version}", path=env.get("PATH", ""))
    if on_path:
        yield on_path


def find_interpreter(
    version: str, env: Mapping[str, str] | None = None, uv: Path | None = None
) -> Interpreter | None:
    """The first candidate that really is CPython `version`, or None."""
    env = os.environ if env is None else env
    if uv is None and PINNED_UV.exists():
        uv = PINNED_UV
    seen = set()
    for candidate in candidates(version, env, uv):
        if candidate in seen:
            continue
        seen.add(candidate)
        interpreter = identify(candidate, version)
        if interpreter is not None:
            return interpreter
    return None


def missing_interpreter_warning(version: str) -> str:
    return (
        f"\n*** WARNING: no Python {version} found on this machine, so the Lambda code and its "
        f"dependency layer ship WITHOUT bytecode: every cold start will compile every module it "
        f"imports (more than twice the import time, see docs/benchmarks.md).\n"
        f"*** To ship bytecode, install Python {version} (`build/tools/bin/uv python install "
        f"{version}`, or `pyenv install {version}`), or point UV_PYTHON at a python{version}, "
        f"then run `make synth` again: the assets rebuild by themselves.\n"
    )


@functools.cache
def compiler_for(version: str) -> Interpreter | None:
    """The interpreter every asset of this synth is compiled with; warns once when there is none."""
    interpreter = find_interpreter(version)
    if interpreter is None:
        print(missing_interpreter_warning(version), file=sys.stderr, flush=True)
    return interpreter


def main() -> None:
    """`python -m infra.bytecode`: print the interpreter that compiles for the Lambda runtime, or
    the warning and exit 1 (the Makefile runs the shipped code's tests with it)."""
    from infra.constructs.functions import RUNTIME  # here, not above: it starts jsii

    version = RUNTIME.name.removeprefix("python")
    interpreter = find_interpreter(version)
    if interpreter is None:
        print(missing_interpreter_warning(version), file=sys.stderr)
        raise SystemExit(1)
    print(interpreter.path)


if __name__ == "__main__":
    main()
