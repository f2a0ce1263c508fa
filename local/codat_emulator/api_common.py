"""What every Codat API route shares: the per-app context, body parsing into pydantic models, the
mapping of store errors to Codat's error body, Idempotency-Key handling and fault injection."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from codat_emulator.config import EmulatorConfig
from codat_emulator.errors import ApiError, error_response
from codat_emulator.faults import BACKEND_KINDS, GATEWAY_KINDS, FaultInjector
from codat_emulator.idempotency import IdempotencyCache, Outcome, StoredResponse, fingerprint
from codat_emulator.query import Node, QueryError, parse, validate_values
from codat_emulator.store import (
    NotFound,
    NotLinked,
    Store,
    StoreError,
    ValidationFailed,
    ValidationItem,
)

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ApiContext:
    config: EmulatorConfig
    store: Store
    idempotency: IdempotencyCache
    faults: FaultInjector


def correlation_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("correlation_id", ""))


def json_response(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def store_error(error: StoreError) -> ApiError:
    if isinstance(error, NotFound):
        return ApiError(404, str(error))
    if isinstance(error, ValidationFailed):
        return ApiError(400, str(error), error.errors)
    if isinstance(error, NotLinked):
        return ApiError(400, str(error), [ValidationItem(str(error), "connectionId")])
    return ApiError(409, str(error))


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body (413 past ``limit``), cached on the request as Starlette does."""
    cached = getattr(request, "_body", None)
    if isinstance(cached, bytes):
        return cached
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    setattr(request, "_body", body)  # noqa: B010 - Starlette's own cache attribute
    return body


def parse_json_model(raw: bytes, model: type[ModelT]) -> ModelT:
    if not raw.strip():
        raise ApiError(400, "A JSON request body is required.", [ValidationItem("Empty body.")])
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ApiError(
            400, "The request body is not valid JSON.", [ValidationItem(str(error), "body")]
        ) from error
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "The request body must be a JSON object.",
            [ValidationItem("Not an object.", "body")],
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        items = [
            ValidationItem(
                e["msg"],
                ".".join(str(p) for p in e["loc"]) or None,
                e["type"],
            )
            for e in error.errors()
        ]
        raise ApiError(400, "The request body failed validation.", items) from error


def parse_query(raw: str | None, field_types: dict[str, str] | None = None) -> Node | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        node = parse(raw)
        if field_types:
            validate_values(node, field_types)
    except QueryError as error:
        raise ApiError(
            400, f"Error parsing query - {error}", [ValidationItem(str(error), "query")]
        ) from error
    return node


def _stored(response: Response) -> StoredResponse:
    headers = tuple(
        (k.decode(), v.decode())
        for k, v in response.raw_headers
        if k.lower() not in (b"content-length", b"content-type")
    )
    return StoredResponse(
        response.status_code,
        bytes(response.body),
        response.media_type or "application/json",
        headers,
    )


def _replay(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.media_type,
        headers=dict(stored.headers),
    )


def api_route(
    ctx: ApiContext,
    path: str,
    handler: Handler,
    methods: Sequence[str],
    *,
    idempotent: bool = False,
    write: tuple[str, str] | None = None,
) -> Route:
    """A Codat route: faults first, then (if ``idempotent``) the Idempotency-Key protocol around
    the handler; store errors become Codat's error body. ``write`` is (data type, write type) for
    routes that write to the accounting platform: a write the platform refuses is reported to the
    store (``write.failed``, which becomes ``{dataType}.write.unsuccessful``)."""

    async def reporting(request: Request) -> Response:
        try:
            return await handler(request)
        except ValidationFailed as error:
            # The accounting platform refused the write (its rules, not the request's shape):
            # Codat reports that as {dataType}.write.unsuccessful as well as the 400. A request
            # refused before it reaches the platform (bad body, unknown id, a connection that is
            # not Linked) is only the synchronous error.
            if write is not None:
                params = request.path_params
                ctx.store.report_failed_write(
                    params.get("companyId", ""),
                    params.get("connectionId", ""),
                    write[0],
                    write[1],
                    params.get("billId") or params.get("supplierId"),
                    error.errors,
                )
            raise

    async def endpoint(request: Request) -> Response:
        cid = correlation_id(request)
        try:
            gate = ctx.faults.plan(request.method, request.url.path, GATEWAY_KINDS)
            if gate.retry_after_seconds is not None:
                raise ApiError(
                    429,
                    "Rate limit fault injected.",
                    headers={"Retry-After": str(gate.retry_after_seconds)},
                )
            key = request.headers.get("idempotency-key") if idempotent else None
            if key:
                return await _idempotent(ctx, request, reporting, key, cid)
            return await (await _run(ctx, request, reporting, cid)).answer()
        except ApiError as error:
            return error_response(error, cid)

    return Route(path, endpoint, methods=list(methods))


@dataclass(frozen=True)
class _Outcome:
    """What a request came to: ``result`` is what Codat would store under an Idempotency-Key;
    the client gets it, unless an ``applied_then_timeout`` fault holds the answer first."""

    result: Response
    hang_seconds: float | None = None
    late_status: int = 500
    correlation_id: str = ""

    async def answer(self) -> Response:
        if self.hang_seconds is None:
            return self.result
        await asyncio.sleep(self.hang_seconds)
        return error_response(
            ApiError(
                self.late_status,
                "Timeout fault injected: the request was applied, the answer was held.",
            ),
            self.correlation_id,
        )


async def _run(ctx: ApiContext, request: Request, handler: Handler, cid: str) -> _Outcome:
    """The backend: latency, then the request applied or not as the fault rules say."""
    plan = ctx.faults.plan(request.method, request.url.path, BACKEND_KINDS)
    if plan.latency_seconds:
        await asyncio.sleep(plan.latency_seconds)
    if plan.error_status is not None:
        return _Outcome(
            error_response(ApiError(plan.error_status, "Server error fault injected."), cid)
        )
    response = await _handle(handler, request, cid)
    if plan.after_apply == "error":
        # The write above is applied; the client only learns that something went wrong.
        error = ApiError(
            plan.after_apply_status, "Server error fault injected after the request was applied."
        )
        return _Outcome(error_response(error, cid))
    if plan.after_apply == "timeout":
        hang = plan.hang_seconds or ctx.config.fault_hang_seconds
        return _Outcome(response, hang, plan.after_apply_status, cid)
    return _Outcome(response)


async def _handle(handler: Handler, request: Request, cid: str) -> Response:
    try:
        return await handler(request)
    except StoreError as error:
        return error_response(store_error(error), cid)
    except ApiError as error:
        return error_response(error, cid)
    except Exception:
        # A 500 like any other, so an Idempotency-Key stores it as Codat would.
        log.exception(
            "unexpected error handling %s %s (correlationId %s)",
            request.method,
            request.url.path,
            cid,
        )
        return error_response(ApiError(500), cid)


async def _idempotent(
    ctx: ApiContext, request: Request, handler: Handler, key: str, cid: str
) -> Response:
    """Codat's Idempotency-Key: every answer is stored for 90 minutes and replayed, 4xx and 5xx
    included; a 429 releases the key so the client can retry with it."""
    body = await read_body(request, ctx.config.limits.max_json_body_bytes)
    decision = ctx.idempotency.begin(key, fingerprint(request.method, request.url.path, body))
    if decision.outcome is Outcome.REPLAY and decision.stored is not None:
        return _replay(decision.stored)
    if decision.outcome is Outcome.IN_FLIGHT:
        raise ApiError(409, "A request with this Idempotency-Key is still being processed.")
    if decision.outcome is Outcome.MISMATCH:
        raise ApiError(
            422,
            "This Idempotency-Key was used with a different request.",
            [
                ValidationItem(
                    "Use a new Idempotency-Key for a different request.", "Idempotency-Key"
                )
            ],
        )
    try:
        outcome = await _run(ctx, request, handler, cid)
    except BaseException:
        # Cancelled (the server stopping) before an answer existed: nothing to store.
        ctx.idempotency.abandon(key)
        raise
    ctx.idempotency.complete(key, _stored(outcome.result))  # a 429 is released, not stored
    return await outcome.answer()
