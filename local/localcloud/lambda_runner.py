"""Runs a moto Lambda function's real handler, in this process or in a subprocess.

moto hands us its `LambdaFunction` (handler string, environment, code zip, layers); we return what
moto's `_invoke_lambda` returns: (payload JSON, errored, logs). Errors are shaped like Lambda's
(`errorMessage`, `errorType`, `stackTrace`), so Step Functions Retry/Catch and the local API's 502
behave as on AWS.

In-process (default): the handler module is imported from the function's extracted code and called
with a LambdaContext-like object. Each function keeps its own copy of its code's modules between
invocations (a warm container per function and deployment); third-party packages are shared.
Environment variables are swapped in for the call under one re-entrant lock, so invocations are
serialized. Timeouts are reported after the fact (the call cannot be preempted).

Subprocess: `python -m localcloud.lambda_bootstrap` with PYTHONPATH = extracted code (+ each
layer's `python/` when it was built for this interpreter; otherwise this virtual environment's
packages, which hold every runtime dependency). Needs a moto server (the child's boto3 calls go to
`AWS_ENDPOINT_URL`). The function's Timeout is enforced by killing the child.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import importlib.machinery
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.utils import get_backend

from localcloud.lambda_context import LambdaContext, error_payload, timeout_payload


class RunnerMode(StrEnum):
    IN_PROCESS = "in-process"
    SUBPROCESS = "subprocess"


@dataclass
class _RunnerConfig:
    mode: RunnerMode = RunnerMode.IN_PROCESS
    # None: moto runs in this process (mock_aws) and intercepts boto3; else the moto server URL.
    moto_endpoint: str | None = None


_config = _RunnerConfig()
# Re-entrant: a handler that synchronously invokes another function in the same thread must not
# deadlock. Handlers in other threads wait their turn (the environment is process-wide).
_invoke_lock = threading.RLock()
_extract_lock = threading.Lock()
_extract_root: Path | None = None
# Invocations run per function name since the process started (what Lambda bills per request):
# every path (Invoke, Step Functions tasks, SQS mappings, EventBridge targets) comes through here.
_invocations: dict[str, int] = {}
_invocations_lock = threading.Lock()


def invocation_counts() -> dict[str, int]:
    """Invocations so far, per function name (a copy: subtract two of them for a span)."""
    with _invocations_lock:
        return dict(_invocations)


def configure(mode: RunnerMode, moto_endpoint: str | None) -> None:
    if mode is RunnerMode.SUBPROCESS and moto_endpoint is None:
        raise ValueError(
            "subprocess mode needs a moto server endpoint: a child process cannot reach an "
            "in-process mock_aws"
        )
    _config.mode = mode
    _config.moto_endpoint = moto_endpoint


def current_mode() -> RunnerMode:
    return _config.mode


def serves_over_http() -> bool:
    """True on a moto server: a handler's AWS calls are answered on the server's threads, not
    in the handler's own thread (as under mock_aws)."""
    return _config.moto_endpoint is not None


def _root() -> Path:
    global _extract_root
    if _extract_root is None:
        _extract_root = Path(tempfile.mkdtemp(prefix="localcloud-lambda-"))
        atexit.register(shutil.rmtree, _extract_root, True)
    return _extract_root


def extract_zip(code: bytes, kind: str) -> Path:
    """Unzip a function or layer once per distinct content; returns the directory."""
    digest = hashlib.sha256(code).hexdigest()[:32]
    target = _root() / f"{kind}-{digest}"
    with _extract_lock:
        if not target.exists():
            staging = Path(tempfile.mkdtemp(dir=_root()))
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(staging)
            staging.rename(target)
    return target


_ELF_MACHINES = {"x86_64": 0x3E, "aarch64": 0xB7, "arm64": 0xB7}


def _elf_machine(path: Path) -> int | None:
    header = path.read_bytes()[:20]
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little")


def layer_is_host_compatible(layer_dir: Path) -> bool:
    """True when every compiled extension in the layer can load in this interpreter.

    A layer built for another Python version or architecture (python3.13/arm64 in the real app) has
    extensions tagged for that interpreter or compiled for that machine; then the venv supplies the
    packages instead.
    """
    tagged_suffixes = tuple(s for s in importlib.machinery.EXTENSION_SUFFIXES if s != ".so")
    host_machine = _ELF_MACHINES.get(platform.machine())
    for path in layer_dir.rglob("*.so"):
        if ".cpython-" in path.name and not path.name.endswith(tagged_suffixes):
            return False
        machine = _elf_machine(path)
        if machine is not None and host_machine is not None and machine != host_machine:
            return False
    return True


def _layer_python_dirs(fn: Any) -> list[Path]:
    backend = get_backend(fn.account_id, fn.region)
    dirs: list[Path] = []
    for layer in fn.layers:
        version = backend.layers_versions_by_arn(layer["Arn"])
        if version is None or not version.code_bytes:
            raise RuntimeError(f"layer {layer['Arn']} of {fn.function_name} has no code in moto")
        python_dir = extract_zip(version.code_bytes, "layer") / "python"
        if python_dir.is_dir() and layer_is_host_compatible(python_dir):
            dirs.append(python_dir)
    return dirs


def lambda_environment(fn: Any) -> dict[str, str]:
    """What the Lambda runtime sets, then the function's own variables (they win, as on AWS)."""
    env = {
        "_HANDLER": fn.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        # No X-Ray daemon runs locally; Powertools Tracer would otherwise try to reach one.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    if _config.moto_endpoint is not None:
        env["AWS_ENDPOINT_URL"] = _config.moto_endpoint
    env.update({key: str(value) for key, value in fn.environment_vars.items()})
    return env


def _split_handler(handler: str) -> tuple[str, str]:
    module_name, _, attribute = handler.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"handler {handler!r} is not 'module.function'")
    return module_name, attribute


def _normalize_event(event: Any) -> Any:
    # moto passes the JSON-decoded body, or the string "{}" when the request had no body.
    return {} if event == "{}" else event


def run_function(fn: Any, event: Any) -> tuple[str, bool, str]:
    """Replacement for moto's `LambdaFunction._invoke_lambda`."""
    fn.logs_backend.ensure_log_group(fn.logs_group_name)
    with _invocations_lock:
        _invocations[fn.function_name] = _invocations.get(fn.function_name, 0) + 1
    event = _normalize_event(event)
    request_id = str(uuid.uuid4())
    if _config.mode is RunnerMode.SUBPROCESS:
        payload, errored, logs = _run_subprocess(fn, event, request_id)
    else:
        payload, errored, logs = _run_in_process(fn, event, request_id)
    if logs:
        fn.save_logs(logs)
    return payload, errored, logs


class _SnapshotEnviron(os._Environ):  # type: ignore[type-arg]
    """`os.environ` whose items() and copy() read one atomic snapshot.

    In-process, each invocation swaps its function's variables into the process environment and
    removes them after. Code in other threads that walks the environment meanwhile (botocore and
    httpx look for proxy variables whenever a client is made: `os.environ.items()`) would list a
    key, then fail reading it once the runner removed it (KeyError). A copy of the underlying
    dict is taken in one step under the GIL, so a walk sees the environment before or after a
    swap, never half of it.
    """

    def items(self) -> Any:
        data: dict[bytes, bytes] = self._data  # type: ignore[attr-defined]
        return [(self.decodekey(k), self.decodevalue(v)) for k, v in data.copy().items()]

    def copy(self) -> dict[str, str]:
        return dict(self.items())


def install_environment_snapshots() -> None:
    """Make `os.environ` walks safe against the runner's swaps (idempotent)."""
    if not isinstance(os.environ, _SnapshotEnviron):
        os.environ.__class__ = _SnapshotEnviron


@contextlib.contextmanager
def _swapped_environment(values: dict[str, str]) -> Any:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _context(fn: Any, request_id: str) -> LambdaContext:
    return LambdaContext(
        function_name=fn.function_name,
        function_version=str(fn.version),
        invoked_function_arn=fn.function_arn,
        memory_limit_in_mb=int(fn.memory_size),
        aws_request_id=request_id,
        log_group_name=fn.logs_group_name,
        log_stream_name=f"localcloud/[{fn.version}]{request_id}",
        deadline_epoch_ms=int(time.time() * 1000) + int(fn.timeout) * 1000,
    )


def _top_level_names(code_dir: Path) -> frozenset[str]:
    """The importable top-level names the function's code provides (packages and modules)."""
    names = set()
    for entry in code_dir.iterdir():
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
        elif entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
    return frozenset(names)


def _owned_by(name: str, top_level: frozenset[str]) -> bool:
    return name.partition(".")[0] in top_level


# Each function's own modules between its invocations (its warm "container"), with the digest of
# the code they came from. Keyed by moto's function object, so a new deployment starts cold.
_warm_modules: weakref.WeakKeyDictionary[Any, tuple[str, dict[str, ModuleType]]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.contextmanager
def _function_modules(fn: Any, code_dir: Path, layer_dirs: list[Path]) -> Iterator[None]:
    """Give the function its own copy of its code's modules, as separate Lambda containers do.

    Without this, module-level state (cached settings, clients, Powertools' cold-start flag)
    would leak from one function to another and from one deployment to the next in the same
    process. Third-party packages stay shared (they play the layer). Re-entrant for a handler
    that invokes another function in the same thread.
    """
    top_level = _top_level_names(code_dir)
    # A configuration change starts new execution environments on AWS: the code and the
    # environment together name a warm container.
    environment = json.dumps(sorted(lambda_environment(fn).items()))
    digest = code_dir.name + hashlib.sha256(environment.encode()).hexdigest()[:16]
    outside = {n: m for n, m in sys.modules.items() if _owned_by(n, top_level)}
    for name in outside:
        del sys.modules[name]
    warm_digest, warm = _warm_modules.get(fn, ("", {}))
    if warm_digest == digest:
        sys.modules.update(warm)
    # The code goes first so the function's own modules resolve; layers go last so they only
    # supply what this interpreter's environment lacks.
    added_front = [str(code_dir)]
    added_back = [str(d) for d in layer_dirs if str(d) not in sys.path]
    sys.path[:0] = added_front
    sys.path.extend(added_back)
    try:
        yield
    finally:
        sys.path.remove(added_front[0])
        for path in added_back:
            sys.path.remove(path)
        mine = {n: m for n, m in sys.modules.items() if _owned_by(n, top_level)}
        _warm_modules[fn] = (digest, mine)
        for name in mine:
            del sys.modules[name]
        sys.modules.update(outside)


def _run_in_process(fn: Any, event: Any, request_id: str) -> tuple[str, bool, str]:
    install_environment_snapshots()
    code_dir = extract_zip(fn.code_bytes, "code")
    layer_dirs = _layer_python_dirs(fn)
    with (
        _invoke_lock,
        _swapped_environment(lambda_environment(fn)),
        _function_modules(fn, code_dir, layer_dirs),
    ):
        context = _context(fn, request_id)
        started = time.monotonic()
        try:
            module_name, attribute = _split_handler(fn.handler)
            handler = getattr(importlib.import_module(module_name), attribute)
            result = handler(event, context)
            payload = json.dumps(result)
        except Exception as exc:
            body = error_payload(exc)
            body["requestId"] = request_id
            return json.dumps(body), True, ""
        elapsed = time.monotonic() - started
        if elapsed > float(fn.timeout):
            return json.dumps(timeout_payload(float(fn.timeout))), True, ""
        return payload, False, ""


def _run_subprocess(fn: Any, event: Any, request_id: str) -> tuple[str, bool, str]:
    code_dir = extract_zip(fn.code_bytes, "code")
    python_path = [str(code_dir), *(str(d) for d in _layer_python_dirs(fn))]
    context = _context(fn, request_id)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        **lambda_environment(fn),
        "LOCALCLOUD_CONTEXT": json.dumps(context.__dict__),
    }
    with tempfile.TemporaryDirectory(dir=_root()) as scratch:
        result_file = Path(scratch) / "result.json"
        try:
            completed = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "localcloud.lambda_bootstrap", str(result_file)],
                input=json.dumps(event).encode(),
                env=env,
                cwd=code_dir,
                capture_output=True,
                timeout=float(fn.timeout),
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            logs = _decode(expired.stdout) + _decode(expired.stderr)
            return json.dumps(timeout_payload(float(fn.timeout))), True, logs
        logs = _decode(completed.stdout) + _decode(completed.stderr)
        if not result_file.exists():
            crash = {
                "errorMessage": f"Runtime exited with code {completed.returncode}",
                "errorType": "Runtime.ExitError",
            }
            return json.dumps(crash), True, logs
        outcome = json.loads(result_file.read_text())
    if "error" in outcome:
        outcome["error"]["requestId"] = request_id
        return json.dumps(outcome["error"]), True, logs
    return json.dumps(outcome["result"]), False, logs


def _decode(output: bytes | str | None) -> str:
    if output is None:
        return ""
    return output if isinstance(output, str) else output.decode("utf-8", "replace")
