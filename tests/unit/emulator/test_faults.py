"""Fault rules: matching, counts and seeded rates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from codat_emulator.faults import FaultInjector


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
    assert [faults.plan("GET", "/x").retry_after_seconds for _ in range(3)] == [3, 3, None]
    assert faults.rules() == []


def test_latency_adds_up_and_kinds_combine():
    faults = FaultInjector()
    faults.add_rule(kind="latency", latency_ms=100)
    faults.add_rule(kind="latency", latency_ms=50)
    faults.add_rule(kind="ambiguous", mode="hang")
    plan = faults.plan("POST", "/anything")
    assert plan.latency_seconds == pytest.approx(0.15)
    assert plan.ambiguous_mode == "hang"


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
    ):
        with pytest.raises(ValidationError):
            faults.add_rule(**bad)
