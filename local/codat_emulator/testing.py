"""Run the emulator inside a test: ``with running_emulator() as emu: emu.sdk().companies.list()``.

The server runs uvicorn in a background thread on 127.0.0.1 with a port the OS picks, and is
stopped when the block exits."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

from codat_emulator.app import create_app, expected_auth_header
from codat_emulator.config import EmulatorConfig
from codat_emulator.faults import FaultInjector
from codat_emulator.store import Store

if TYPE_CHECKING:
    from codat_platform.sdk import CodatPlatform
    from codat_sync_for_payables.sdk import CodatSyncPayables
    from starlette.applications import Starlette


@dataclass
class RunningEmulator:
    base_url: str
    api_key: str
    store: Store
    config: EmulatorConfig
    app: Starlette

    @property
    def auth_header(self) -> str:
        return expected_auth_header(self.api_key)

    @property
    def faults(self) -> FaultInjector:
        injector: FaultInjector = self.app.state.faults
        return injector

    def http(self, timeout: float = 10.0, **kwargs: Any) -> httpx.Client:
        """A raw client with the API key already set (for what the SDK refuses to send)."""
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": self.auth_header},
            timeout=timeout,
            **kwargs,
        )

    def sdk(self, timeout: float = 10.0) -> CodatSyncPayables:
        """The real Codat SDK pointed at the emulator, with httpx and no retries."""
        from codat_sync_for_payables.models.shared.security import Security
        from codat_sync_for_payables.sdk import CodatSyncPayables
        from codat_sync_for_payables.utils.retries import RetryConfig

        return CodatSyncPayables(
            security=Security(auth_header=self.auth_header),
            server_url=self.base_url,
            client=httpx.Client(timeout=timeout),
            retry_config=RetryConfig(strategy="none"),
            timeout_ms=int(timeout * 1000),
        )

    def platform_sdk(self, timeout: float = 10.0) -> CodatPlatform:
        """Codat's platform SDK (webhook consumers, sync settings) pointed at the emulator."""
        from codat_platform.models.shared.security import Security
        from codat_platform.sdk import CodatPlatform
        from codat_platform.utils.retries import RetryConfig

        return CodatPlatform(
            security=Security(auth_header=self.auth_header),
            server_url=self.base_url,
            client=httpx.Client(timeout=timeout),
            retry_config=RetryConfig(strategy="none"),
            timeout_ms=int(timeout * 1000),
        )


@contextmanager
def running_emulator(
    store: Store | None = None, **config_overrides: Any
) -> Iterator[RunningEmulator]:
    """Start the emulator; ``config_overrides`` are EmulatorConfig fields (``limits={...}``,
    ``fault_hang_seconds=...``). A fresh random API key unless one is given."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it a socket handed to uvicorn answers every
    # request about 40 ms late (Nagle against delayed ACKs), 20x slower than it should be.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    values: dict[str, Any] = {"api_key": secrets.token_urlsafe(24), **config_overrides}
    values.update(host="127.0.0.1", port=port)
    config = EmulatorConfig.model_validate(values)
    app = create_app(config, store)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the Codat emulator did not start")
        time.sleep(0.01)
    try:
        yield RunningEmulator(config.base_url, config.api_key, app.state.store, config, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
