"""Unit tier: pure code. Every socket is blocked, so a test that reaches for the network fails."""

import pytest


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: None) -> None:
    """pytest-socket's fixture turns socket creation into an error for the whole test."""
