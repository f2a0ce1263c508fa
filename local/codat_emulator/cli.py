"""``codat-emulator`` / ``python -m codat_emulator``: run the Codat emulator on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys

from codat_emulator.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ENV_PREFIX,
    ConfigError,
    EmulatorConfig,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="codat-emulator",
        description="A local, stateful emulator of Codat's Bill Pay (sync) API. The API key comes "
        f"from {ENV_PREFIX}API_KEY; without it one is generated and printed once.",
    )
    parser.add_argument("--host", default=None, help=f"bind address (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--base-url", default=None, help="public URL for redirect and linkUrl")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)

    overrides: dict[str, object] = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("base_url", args.base_url))
        if value is not None
    }
    try:
        config, generated = EmulatorConfig.from_env(None, **overrides)
    except ConfigError as error:
        raise SystemExit(f"codat-emulator: {error}") from None
    if generated:
        # Printed once so a developer can use it; never logged again, never stored.
        print(
            f"Generated API key (set {ENV_PREFIX}API_KEY to choose one): {config.api_key}",
            flush=True,
        )

    import uvicorn

    from codat_emulator.app import create_app

    print(f"Codat emulator listening on {config.base_url}", file=sys.stderr, flush=True)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level=args.log_level)
