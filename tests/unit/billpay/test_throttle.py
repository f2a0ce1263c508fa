"""The Codat rate-limit throttle item: the longest hold wins, a stale reset clears nothing."""

from datetime import UTC, datetime, timedelta

import pytest

from billpay.codat.throttle import DynamoThrottleStore, Throttle

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(aws, companies_table):
    return DynamoThrottleStore(aws("dynamodb"), companies_table)


def _throttle(minutes: int, set_at: datetime = T0, reason: str = "429") -> Throttle:
    return Throttle(until=T0 + timedelta(minutes=minutes), reason=reason, set_at=set_at)


def test_no_throttle_until_one_is_held(store):
    assert store.current() is None
    store.hold(_throttle(5))
    held = store.current()
    assert held == _throttle(5)
    assert held.blocks(T0 + timedelta(minutes=4))
    assert not held.blocks(T0 + timedelta(minutes=5))


def test_a_shorter_hold_never_shortens_a_longer_one(store):
    store.hold(_throttle(60, reason="client.rateLimit.reached"))
    store.hold(_throttle(1))
    assert store.current().until == T0 + timedelta(minutes=60)
    store.hold(_throttle(90))
    assert store.current().until == T0 + timedelta(minutes=90)


def test_a_reset_clears_only_a_throttle_set_before_it(store):
    store.hold(_throttle(60, set_at=T0))
    store.release(reset_at=T0 - timedelta(minutes=1))  # an old reset, delivered late
    assert store.current() is not None
    store.release(reset_at=T0 + timedelta(minutes=1))
    assert store.current() is None
    store.release(reset_at=T0 + timedelta(minutes=2))  # nothing held: no error


def test_naive_times_are_refused(store):
    with pytest.raises(ValueError, match="timezone-aware"):
        store.hold(Throttle(until=datetime(2026, 1, 1), reason="429", set_at=T0))


@pytest.mark.parametrize("order", [("hold", "release"), ("release", "hold")])
def test_a_reached_older_than_the_last_reset_does_not_come_back(store, order):
    """Delivered in either order, reached(t1) and reset(t2 > t1) end with no throttle."""
    reached = _throttle(600, set_at=T0, reason="client.rateLimit.reached")
    for step in order:
        if step == "hold":
            store.hold(reached)
        else:
            store.release(reset_at=T0 + timedelta(minutes=30))
    assert store.current() is None
    # A reached generated after that reset holds again.
    store.hold(_throttle(900, set_at=T0 + timedelta(hours=1)))
    assert store.current() is not None
