"""End-to-end tier: the synthesized product on the local cloud, driven through HTTP as its users
drive it (the product API, the Link page, Codat's signed webhooks from the emulator).

Its fixtures are the shared ones of tests/conftest.py, under this tier's names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.product import ProductCloud


@pytest.fixture(scope="session")
def cdk_out(product_cdk_out: Path) -> Path:
    return product_cdk_out


@pytest.fixture(scope="module")
def product(product_with_codat: ProductCloud) -> ProductCloud:
    """One running product per module."""
    return product_with_codat
