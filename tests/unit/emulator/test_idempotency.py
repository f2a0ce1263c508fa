"""The Idempotency-Key cache: replay, mismatch, in-flight, expiry and 429s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from codat_emulator.idempotency import IdempotencyCache, Outcome, StoredResponse, fingerprint


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


CREATED = StoredResponse(201, b'{"id": "p1"}', "application/json")


def test_first_use_proceeds_then_replays_the_stored_response():
    cache = IdempotencyCache(clock=Clock())
    fp = fingerprint("POST", "/pay", b"{}")
    assert cache.begin("k", fp).outcome is Outcome.PROCEED
    assert cache.begin("k", fp).outcome is Outcome.IN_FLIGHT
    cache.complete("k", CREATED)
    decision = cache.begin("k", fp)
    assert decision.outcome is Outcome.REPLAY
    assert decision.stored == CREATED


def test_another_request_under_the_same_key_is_a_mismatch():
    cache = IdempotencyCache(clock=Clock())
    cache.begin("k", fingerprint("POST", "/pay", b'{"amount": 1}'))
    cache.complete("k", CREATED)
    assert (
        cache.begin("k", fingerprint("POST", "/pay", b'{"amount": 2}')).outcome is Outcome.MISMATCH
    )
    assert (
        cache.begin("k", fingerprint("POST", "/other", b'{"amount": 1}')).outcome
        is Outcome.MISMATCH
    )


def test_entries_expire_after_90_minutes_by_the_injected_clock():
    clock = Clock()
    cache = IdempotencyCache(clock=clock)
    fp = fingerprint("POST", "/pay", b"{}")
    cache.begin("k", fp)
    cache.complete("k", CREATED)
    clock.now += timedelta(minutes=89, seconds=59)
    assert cache.begin("k", fp).outcome is Outcome.REPLAY
    clock.now += timedelta(seconds=1)
    assert cache.begin("k", fp).outcome is Outcome.PROCEED
    assert len(cache) == 1


@pytest.mark.parametrize("status", [400, 404, 500, 502, 503])
def test_4xx_and_5xx_answers_are_stored_and_replayed(status):
    # Codat caches every answer under the key, errors included; a retry learns nothing new.
    cache = IdempotencyCache(clock=Clock())
    fp = fingerprint("POST", "/pay", b"{}")
    cache.begin("k", fp)
    failed = StoredResponse(status, b'{"statusCode": %d}' % status, "application/json")
    cache.complete("k", failed)
    decision = cache.begin("k", fp)
    assert (decision.outcome, decision.stored) == (Outcome.REPLAY, failed)


def test_429_and_abandoned_requests_are_not_stored():
    cache = IdempotencyCache(clock=Clock())
    fp = fingerprint("POST", "/pay", b"{}")
    cache.begin("k", fp)
    cache.complete("k", StoredResponse(429, b"{}", "application/json"))
    assert cache.begin("k", fp).outcome is Outcome.PROCEED
    cache.abandon("k")
    assert cache.begin("k", fp).outcome is Outcome.PROCEED


def test_fingerprint_separates_its_parts():
    assert fingerprint("POST", "/a", b"b") != fingerprint("POST", "/ab", b"")
