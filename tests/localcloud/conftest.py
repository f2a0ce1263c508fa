"""Local-cloud tier: the local cloud's own fixture app, and the product's synthesized cdk.out.

Fixtures (module-scoped: one in-process moto per test module):
- fixture_cloud: tests/localcloud/fixture_app synthesized (cached under build/) and deployed.
- product_cloud: the repository's cdk.out (from `make synth`) deployed; fails if it is missing.
Both yield a localcloud.testing.LocalCloud.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.product import ProductCloud, running_product
from localcloud.testing import (
    CloudAssemblyMissing,
    LocalCloud,
    local_cloud,
    require_cdk_out,
    synthesize_app,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURE_APP = Path(__file__).parent / "fixture_app" / "app.py"


@pytest.fixture(scope="session")
def fixture_cdk_out() -> Path:
    return synthesize_app(FIXTURE_APP, REPO / "build" / "localcloud-fixture")


@pytest.fixture(scope="session")
def product_cdk_out() -> Path:
    try:
        return require_cdk_out(REPO / "cdk.out")
    except CloudAssemblyMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def fixture_cloud(fixture_cdk_out: Path) -> Iterator[LocalCloud]:
    with local_cloud(fixture_cdk_out) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def product_cloud(product_cdk_out: Path) -> Iterator[LocalCloud]:
    with local_cloud(product_cdk_out) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def product_with_codat(product_cdk_out: Path) -> Iterator[ProductCloud]:
    """The product's cdk.out on the local cloud, calling a fresh Codat emulator as Codat."""
    with running_product(product_cdk_out) as product:
        yield product
