"""`python -m codat_emulator`: starts on 127.0.0.1, generates and prints an API key only when none
is configured, and answers with it."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(env: dict[str, str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "codat_emulator", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/companies", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.05)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


def test_generated_key_is_printed_once_and_works():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODAT_EMULATOR_")}
    port = _free_port()
    process = _start(env, port)
    try:
        line = process.stdout.readline()
        assert line.startswith("Generated API key")
        key = line.rsplit(" ", 1)[1].strip()
        _wait(port)
        assert (
            httpx.get(f"http://127.0.0.1:{port}/companies", headers=_auth(key)).status_code == 200
        )
        assert httpx.get(f"http://127.0.0.1:{port}/companies").status_code == 401
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert key not in out  # printed once, not again


def test_configured_key_is_used_and_never_printed():
    key = secrets.token_urlsafe(24)
    port = _free_port()
    process = _start({**os.environ, "CODAT_EMULATOR_API_KEY": key}, port)
    try:
        _wait(port)
        response = httpx.post(
            f"http://127.0.0.1:{port}/companies", headers=_auth(key), json={"name": "CLI Ltd"}
        )
        assert response.status_code == 200
        assert response.json()["redirect"].startswith(f"http://127.0.0.1:{port}/link/")
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert key not in out
    assert key not in err
