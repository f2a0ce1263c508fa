"""Faults on demand, set through ``/_emulator/faults`` (with the API key, like every control route).

A rule matches requests by path glob (``*`` is one path segment, ``**`` any number) and optional
method, and does one thing:

- ``latency``: hold the request ``latency_ms`` before handling it (an Idempotency-Key stays
  "in flight" meanwhile);
- ``rate_limit``: answer 429 with ``Retry-After: retry_after_seconds``, nothing applied; never
  stored under an Idempotency-Key (Codat releases the key of a 429);
- ``error``: answer ``status`` (5xx), nothing applied;
- ``applied_then_error``: apply the request, then answer ``status`` (5xx) instead of its result;
- ``applied_then_timeout``: apply the request, then hold the answer ``hang_seconds`` (default the
  emulator's ``fault_hang_seconds``, 30 s) so the client times out; a client that waits that
  long gets ``status`` (5xx).

Under an Idempotency-Key the emulator stores what Codat would, for 90 minutes: the 5xx of
``error`` and ``applied_then_error`` (a retry with the key gets the same 5xx back, whether or not
the write landed), and the real result of ``applied_then_timeout`` (the write's response, which a
retry with the key gets). ``rate_limit`` acts at the gateway, before the key is looked at; the
other kinds act once the key lets the request through, so a replayed answer does not spend a rule.

``rate`` (0..1) picks the matching requests the rule fires on, from a RNG seeded with ``seed``, so
a run is reproducible; ``count`` makes the rule fire on the next N matching requests only.

    POST   /_emulator/faults          {"kind": "error", "route": "/companies/*/**", "rate": 0.2}
    GET    /_emulator/faults          -> {"rules": [...]}
    DELETE /_emulator/faults          -> 204, every rule removed
    DELETE /_emulator/faults/{id}     -> 204
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from codat_emulator.errors import ApiError, error_response
from codat_emulator.store import ValidationItem

FaultKind = Literal["latency", "rate_limit", "error", "applied_then_error", "applied_then_timeout"]
# Where a kind acts: at the gateway (before the Idempotency-Key is looked at) or in the backend.
GATEWAY_KINDS: frozenset[str] = frozenset({"rate_limit"})
BACKEND_KINDS: frozenset[str] = frozenset(
    {"latency", "error", "applied_then_error", "applied_then_timeout"}
)


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    kind: FaultKind
    route: str = "/**"
    method: str | None = None
    rate: float = Field(1.0, ge=0.0, le=1.0)
    count: int | None = Field(None, ge=1)
    seed: int = 0
    latency_ms: int = Field(0, ge=0, le=120_000)
    status: int = Field(500, ge=500, le=599)
    retry_after_seconds: int = Field(1, ge=0, le=86_400)
    hang_seconds: float | None = Field(None, gt=0, le=3_600)

    @model_validator(mode="after")
    def _check(self) -> FaultRule:
        if self.kind == "latency" and self.latency_ms == 0:
            raise ValueError("a latency rule needs latency_ms > 0")
        if not self.route.startswith("/"):
            raise ValueError("route must start with /")
        if self.hang_seconds is not None and self.kind != "applied_then_timeout":
            raise ValueError("hang_seconds applies to applied_then_timeout rules only")
        return self


AfterApply = Literal["error", "timeout"]


@dataclass(frozen=True)
class FaultPlan:
    latency_seconds: float = 0.0
    error_status: int | None = None  # answer this instead of applying the request
    retry_after_seconds: int | None = None
    after_apply: AfterApply | None = None  # apply, then answer an error or hang
    after_apply_status: int = 500
    hang_seconds: float | None = None  # for "timeout"; None: the emulator's default

    @property
    def empty(self) -> bool:
        return self == FaultPlan()


NO_FAULTS = FaultPlan()


def _glob_to_regex(glob: str) -> re.Pattern[str]:
    parts = []
    for segment in re.split(r"(\*\*|\*)", glob):
        if segment == "**":
            parts.append(".*")
        elif segment == "*":
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
    return re.compile("^" + "".join(parts) + "$")


@dataclass
class _ActiveRule:
    rule: FaultRule
    pattern: re.Pattern[str]
    rng: random.Random
    remaining: int | None


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_ActiveRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(
                _ActiveRule(rule, _glob_to_regex(rule.route), random.Random(rule.seed), rule.count)  # noqa: S311 - deterministic fault picking, not security
            )
        return rule

    def add_rule(self, **fields: object) -> FaultRule:
        """``add(FaultRule(...))`` from keyword arguments, validated the same way."""
        return self.add(FaultRule.model_validate(fields))

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [
                a.rule.model_copy(update={"count": a.remaining} if a.remaining is not None else {})
                for a in self._rules
            ]

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [a for a in self._rules if a.rule.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def plan(self, method: str, path: str, kinds: frozenset[str] = BACKEND_KINDS) -> FaultPlan:
        """What the rules of ``kinds`` do to this request; the rules that fire are spent."""
        if not self._rules:
            return NO_FAULTS
        latency = 0.0
        error_status: int | None = None
        retry_after: int | None = None
        after_apply: AfterApply | None = None
        after_apply_status = 500
        hang: float | None = None
        with self._lock:
            for active in list(self._rules):
                rule = active.rule
                if rule.kind not in kinds:
                    continue
                if rule.method is not None and rule.method.upper() != method.upper():
                    continue
                if not active.pattern.match(path):
                    continue
                if active.rng.random() >= rule.rate:
                    continue
                if rule.kind == "latency":
                    latency += rule.latency_ms / 1000
                elif rule.kind == "error" and error_status is None:
                    error_status = rule.status
                elif rule.kind == "rate_limit" and retry_after is None:
                    retry_after = rule.retry_after_seconds
                elif rule.kind.startswith("applied_then_") and after_apply is None:
                    after_apply = "error" if rule.kind == "applied_then_error" else "timeout"
                    after_apply_status = rule.status
                    hang = rule.hang_seconds
                else:
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining == 0:
                        self._rules.remove(active)
        return FaultPlan(latency, error_status, retry_after, after_apply, after_apply_status, hang)


def routes(injector: FaultInjector) -> list[BaseRoute]:
    async def collection(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"rules": [r.model_dump() for r in injector.rules()]})
        if request.method == "DELETE":
            injector.clear()
            return Response(status_code=204)
        try:
            rule = FaultRule.model_validate(json.loads(await request.body()))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return error_response(ApiError(400, "The body is not valid JSON."), "")
        except ValidationError as error:
            items = [
                ValidationItem(e["msg"], ".".join(str(p) for p in e["loc"])) for e in error.errors()
            ]
            return error_response(ApiError(400, "Invalid fault rule.", items), "")
        return JSONResponse(injector.add(rule).model_dump(), status_code=201)

    async def single(request: Request) -> Response:
        if injector.remove(request.path_params["rule_id"]):
            return Response(status_code=204)
        return error_response(ApiError(404, "No fault rule with that id."), "")

    return [
        Route("/_emulator/faults", collection, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/faults/{rule_id}", single, methods=["DELETE"]),
    ]
