"""Fault rules: matching, counts and seeded rates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from codat_emulator.faults import GATEWAY_KINDS, FaultInjector


def test_glob_matches_segments_and_methods():
    faults = FaultInjector()
    faults.add_rule(
        kind="error", route="/companies/*/connections/*/payables/bills/*/payment", method="POST"
    )
    assert (
        faults.plan("POST", "/companies/c/connections/k/payables/bills/b/payment").error_status
        == 500
    )
    assert (
        faults.plan("GET", "/companies/c/connections/k/payables/bills/b/payment").error_status
        is None
    )
    assert faults.plan("POST", "/companies/c/payment").error_status is None


def test_count_spends_the_rule():
    faults = FaultInjector()
    faults.add_rule(kind="rate_limit", route="/**", retry_after_seconds=3, count=2)
    plans = [faults.plan("GET", "/x", GATEWAY_KINDS) for _ in range(3)]
    assert [p.retry_after_seconds for p in plans] == [3, 3, None]
    assert faults.rules() == []


def test_a_plan_only_spends_the_kinds_it_asks_for():
    # The gateway (429s) acts before the Idempotency-Key; the backend kinds after it, so a
    # replayed answer spends no backend rule.
    faults = FaultInjector()
    faults.add_rule(kind="rate_limit", count=1)
    faults.add_rule(kind="applied_then_error", status=503, count=1)
    backend = faults.plan("POST", "/x")
    assert (backend.retry_after_seconds, backend.after_apply) == (None, "error")
    assert backend.after_apply_status == 503
    assert faults.plan("POST", "/x", GATEWAY_KINDS).retry_after_seconds == 1
    assert faults.rules() == []


def test_error_wins_over_applied_then_error():
    faults = FaultInjector()
    faults.add_rule(kind="applied_then_error")
    faults.add_rule(kind="error", status=502)
    plan = faults.plan("POST", "/x")
    assert plan.error_status == 502


def test_latency_adds_up_and_kinds_combine():
    faults = FaultInjector()
    faults.add_rule(kind="latency", latency_ms=100)
    faults.add_rule(kind="latency", latency_ms=50)
    faults.add_rule(kind="applied_then_timeout", hang_seconds=2, status=504)
    plan = faults.plan("POST", "/anything")
    assert plan.latency_seconds == pytest.approx(0.15)
    assert (plan.after_apply, plan.after_apply_status, plan.hang_seconds) == ("timeout", 504, 2)


def test_seeded_rate_is_reproducible():
    def pattern() -> list[bool]:
        faults = FaultInjector()
        faults.add_rule(kind="error", rate=0.3, seed=5)
        return [faults.plan("GET", "/x").error_status is not None for _ in range(50)]

    first = pattern()
    assert first == pattern()
    assert 0 < sum(first) < 50


def test_invalid_rules_are_refused():
    faults = FaultInjector()
    for bad in (
        {"kind": "latency"},
        {"kind": "error", "status": 404},
        {"kind": "error", "rate": 2},
        {"kind": "nope"},
        {"kind": "ambiguous"},
        {"kind": "error", "hang_seconds": 3},
        {"kind": "applied_then_timeout", "hang_seconds": 0},
    ):
        with pytest.raises(ValidationError):
            faults.add_rule(**bad)
