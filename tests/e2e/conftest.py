"""End-to-end tier: the synthesized product on the local cloud, driven through HTTP as its users
drive it (the product API, the Link page, Codat's signed webhooks from the emulator).

One running product per module (deploying costs seconds): `product` below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.product import ProductCloud, running_product
from localcloud.testing import CloudAssemblyMissing, require_cdk_out

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cdk_out() -> Path:
    try:
        return require_cdk_out(ROOT / "cdk.out")
    except CloudAssemblyMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def product(cdk_out: Path) -> Iterator[ProductCloud]:
    with running_product(cdk_out) as running:
        yield running
