"""The emulator's ASGI app: Codat's Bill Pay and platform routes behind Codat's auth, quota and
error conventions, plus the fault control route."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codat_emulator import (
    api_companies,
    api_payables,
    api_platform,
    control,
    faults,
    link,
    webhooks,
)
from codat_emulator.api_common import ApiContext, correlation_id
from codat_emulator.config import EmulatorConfig
from codat_emulator.errors import ApiError, error_body, error_response
from codat_emulator.faults import FaultInjector
from codat_emulator.idempotency import IdempotencyCache
from codat_emulator.ratelimit import (
    ConcurrencyLimiter,
    company_from_path,
    rate_limit_headers,
    seconds_until,
)
from codat_emulator.store import Store, utc_now

log = logging.getLogger(__name__)

# The emulator's own paths count against no quota. Link pages are what an SMB's browser opens, so
# they need no key; the control routes change state and faults, so they need the API key.
UNMETERED_PREFIXES = ("/_emulator", "/link")
PUBLIC_PREFIXES = ("/link",)


def expected_auth_header(api_key: str) -> str:
    return "Basic " + base64.b64encode(api_key.encode()).decode()


class CodatApiMiddleware:
    """Correlation id, Basic auth, the daily quota and per-company concurrency, rate limit headers
    on every response, and a Codat 500 (never a crash) for an unexpected exception."""

    def __init__(self, app: ASGIApp, ctx: ApiContext, limiter: ConcurrencyLimiter) -> None:
        self.app = app
        self.ctx = ctx
        self.limiter = limiter
        self.expected_auth = expected_auth_header(ctx.config.api_key).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = secrets.token_hex(16)
        scope.setdefault("state", {})["correlation_id"] = cid
        path: str = scope["path"]
        store = self.ctx.store
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if not path.startswith(PUBLIC_PREFIXES) and not hmac.compare_digest(
            auth, self.expected_auth
        ):
            headers = rate_limit_headers(store.quota_state(""))
            await self._send_error(send, ApiError(401), cid, headers)
            return
        if path.startswith(UNMETERED_PREFIXES):
            # Not counted, but the client still sees where its quota stands.
            await self._guarded(
                scope, receive, send, cid, rate_limit_headers(store.quota_state(""))
            )
            return
        company = company_from_path(path)
        if company and not store.has_company(company):
            company = ""  # an unknown id (a 404 to come) counts against the client, not a company
        allowed, quota = store.consume_quota(company)
        headers = rate_limit_headers(quota)
        if not allowed:
            retry_after = seconds_until(quota.resets_at, store.clock())
            error = ApiError(
                429, "The daily quota is exhausted.", headers={"Retry-After": str(retry_after)}
            )
            await self._send_error(send, error, cid, headers)
            return
        if not self.limiter.try_acquire(company):
            error = ApiError(
                429,
                f"More than {self.limiter.limit} concurrent requests for this company.",
                headers={"Retry-After": "1"},
            )
            await self._send_error(send, error, cid, headers)
            return
        try:
            await self._guarded(scope, receive, send, cid, headers)
        finally:
            self.limiter.release(company)

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        cid: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception(
                "unexpected error handling %s %s (correlationId %s)",
                scope["method"],
                scope["path"],
                cid,
            )
            if not started:
                await self._send_error(send, ApiError(500), cid, headers)

    @staticmethod
    async def _send_error(
        send: Send, error: ApiError, cid: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        body = json.dumps(error_body(error.status, error.message, cid, error.errors)).encode()
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
            *headers,
        ]
        await send({"type": "http.response.start", "status": error.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = None
    if status == 404:
        message = f"No route matches {request.method} {request.url.path}."
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    return error_response(ApiError(status, message), correlation_id(request))


def create_app(
    config: EmulatorConfig,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The emulator app. ``clock`` (default: the store's, else the wall clock) drives the
    idempotency window, the quota day and every timestamp, so tests can move time."""
    clock = clock or (store.clock if store is not None else utc_now)
    store = store or Store(clock=clock, daily_quota_base=config.limits.daily_quota_base)
    ctx = ApiContext(
        config=config,
        store=store,
        idempotency=IdempotencyCache(
            timedelta(seconds=config.limits.idempotency_ttl_seconds), clock
        ),
        faults=FaultInjector(),
    )
    routes: list[BaseRoute] = [
        *api_companies.routes(ctx),
        *api_payables.routes(ctx),
        *api_platform.routes(ctx),
        *faults.routes(ctx.faults),
    ]
    # ---- Integration point for the Link pages and the other /_emulator control routes --------
    # (their modules' own lines go here; a webhook worker can be passed as Starlette(lifespan=))
    routes += link.routes(store, config)
    routes += control.routes(store, config)
    # -------------------------------------------------------------------------------------------
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                CodatApiMiddleware,
                ctx=ctx,
                limiter=ConcurrencyLimiter(config.limits.max_concurrent_per_company),
            )
        ],
        exception_handlers={HTTPException: _http_exception},
        lifespan=webhooks.lifespan(store, config),
    )
    app.state.config = config
    app.state.store = store
    app.state.faults = ctx.faults
    app.state.idempotency = ctx.idempotency
    return app
