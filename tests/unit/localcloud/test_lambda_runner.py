"""Pieces of the Lambda runner that need neither moto nor a process."""

from __future__ import annotations

import importlib.machinery
import platform
import time

import pytest

from localcloud.lambda_context import LambdaContext, error_payload, timeout_payload
from localcloud.lambda_runner import _normalize_event, _split_handler, layer_is_host_compatible

_MACHINE = {"x86_64": 0x3E, "aarch64": 0xB7}


def _elf(machine: int) -> bytes:
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[18:20] = machine.to_bytes(2, "little")
    return bytes(header)


def test_layer_of_pure_python_is_compatible(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    assert layer_is_host_compatible(tmp_path)


def test_layer_built_for_another_python_is_not(tmp_path):
    (tmp_path / "_core.cpython-313-aarch64-linux-gnu.so").write_bytes(_elf(0xB7))
    assert not layer_is_host_compatible(tmp_path)


@pytest.mark.skipif(platform.machine() not in _MACHINE, reason="needs a known ELF machine")
def test_layer_built_for_this_interpreter_is_compatible_but_not_for_another_machine(tmp_path):
    host_suffix = next(s for s in importlib.machinery.EXTENSION_SUFFIXES if "cpython" in s)
    native = tmp_path / "native"
    native.mkdir()
    (native / f"_core{host_suffix}").write_bytes(_elf(_MACHINE[platform.machine()]))
    assert layer_is_host_compatible(native)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    other = 0xB7 if platform.machine() == "x86_64" else 0x3E
    (foreign / "_speedups.abi3.so").write_bytes(_elf(other))
    assert not layer_is_host_compatible(foreign)


def test_context_counts_down_to_the_deadline():
    context = LambdaContext(
        function_name="f",
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:1:function:f",
        memory_limit_in_mb=128,
        aws_request_id="r",
        log_group_name="/aws/lambda/f",
        log_stream_name="s",
        deadline_epoch_ms=int(time.time() * 1000) + 2000,
    )
    assert 1000 < context.get_remaining_time_in_millis() <= 2000
    context.deadline_epoch_ms = 0
    assert context.get_remaining_time_in_millis() == 0


def test_error_payload_matches_the_python_runtime():
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        payload = error_payload(exc)
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input"
    assert any("raise ValueError" in line for line in payload["stackTrace"])
    assert timeout_payload(3)["errorMessage"] == "Task timed out after 3.00 seconds"


@pytest.mark.parametrize("handler", ["nodots", ".handler", "module."])
def test_handler_must_be_module_and_function(handler):
    with pytest.raises(ValueError, match=r"module\.function"):
        _split_handler(handler)


def test_nested_handler_module_is_split_at_the_last_dot():
    assert _split_handler("billpay.api.handler.handler") == ("billpay.api.handler", "handler")


def test_empty_invocation_body_is_an_empty_event():
    assert _normalize_event("{}") == {}
    assert _normalize_event({"a": 1}) == {"a": 1}


def test_walking_the_environment_survives_a_variable_removed_meanwhile(monkeypatch):
    # Given a thread that has started walking os.environ (as botocore and httpx do when they look
    # for proxy variables), and the runner removing a function's variable at that moment
    import os

    from localcloud.lambda_runner import install_environment_snapshots

    install_environment_snapshots()
    monkeypatch.setenv("ZZZ_FUNCTION_VARIABLE", "1")
    walk = iter(os.environ.items())
    next(walk)
    del os.environ["ZZZ_FUNCTION_VARIABLE"]
    # Then the walk finishes on the snapshot it started from, with no KeyError
    assert dict(walk)["ZZZ_FUNCTION_VARIABLE"] == "1"
    assert "ZZZ_FUNCTION_VARIABLE" not in os.environ.copy()
