"""Local-cloud tier: the local cloud's own fixture app, and the product's synthesized cdk.out.

Fixtures (module-scoped: one in-process moto per test module):
- fixture_cloud: tests/localcloud/fixture_app synthesized (cached under build/) and deployed.
- product_cloud: the repository's cdk.out (from `make synth`) deployed; fails if it is missing.
Both yield a localcloud.testing.LocalCloud. product_cdk_out and product_with_codat (the product
next to a Codat emulator) are shared with the e2e tier: tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.testing import (
    LocalCloud,
    local_cloud,
    synthesize_app,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURE_APP = Path(__file__).parent / "fixture_app" / "app.py"


@pytest.fixture(scope="session")
def fixture_cdk_out() -> Path:
    return synthesize_app(FIXTURE_APP, REPO / "build" / "localcloud-fixture")


@pytest.fixture(scope="module")
def fixture_cloud(fixture_cdk_out: Path) -> Iterator[LocalCloud]:
    with local_cloud(fixture_cdk_out) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def product_cloud(product_cdk_out: Path) -> Iterator[LocalCloud]:
    with local_cloud(product_cdk_out) as cloud:
        yield cloud
