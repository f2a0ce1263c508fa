"""Fixtures shared by the tiers that run the product's own cdk.out (localcloud, e2e)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.product import ProductCloud, running_product
from localcloud.testing import CloudAssemblyMissing, require_cdk_out

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def product_cdk_out() -> Path:
    """The repository's cdk.out, from `make synth` (`make test` synthesizes first)."""
    try:
        return require_cdk_out(REPO / "cdk.out")
    except CloudAssemblyMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def product_with_codat(product_cdk_out: Path) -> Iterator[ProductCloud]:
    """The product's cdk.out on the local cloud, calling a fresh Codat emulator as Codat: one per
    test module (deploying costs seconds)."""
    with running_product(product_cdk_out) as product:
        yield product
