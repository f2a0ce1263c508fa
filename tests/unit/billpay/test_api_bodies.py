"""Every route of the product API reads a body the same way: one that does not parse is a 400,
one of another content type than JSON a 415 (issue 8). The routes are those of the published
OpenAPI document (docs/openapi.json, generated from the handler; a test keeps it current), so a
route added later is covered without editing this file."""

import json
import re
from pathlib import Path

import pytest

from billpay.api.handler import ApiDependencies

from .fakes import InMemoryCompanies, InMemoryWorkflow
from .test_api_handler import call

OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than Python's parser goes: RecursionError


def _routes() -> list[tuple[str, str]]:
    paths = json.loads(OPENAPI.read_text())["paths"]
    routes = []
    for template, operations in paths.items():
        # Any valid ids: the body is read before anything is looked up.
        path = re.sub(r"\{[A-Za-z]+\}", "id-1", template)
        routes += [(method.upper(), path) for method in operations]
    return sorted(routes)


ROUTES = _routes()


@pytest.fixture
def deps():
    # No payables, payments or Codat behind it: a route that read past the body would fail loudly.
    return ApiDependencies(
        companies=InMemoryCompanies(), onboarding=InMemoryWorkflow(), codat=lambda: None
    )


def test_the_routes_are_all_of_them():
    assert len(ROUTES) >= 17
    assert ("POST", "/companies/id-1/bills/id-1/payments") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_body_that_does_not_parse_is_a_400_and_another_type_a_415(deps, method, path):
    status, body = call(deps, method, path, raw_body=DEEP)
    assert (status, body["error"]["code"]) == (400, "MalformedRequest")
    status, body = call(deps, method, path, raw_body="{not json")
    assert (status, body["error"]["code"]) == (400, "MalformedRequest")
    status, body = call(deps, method, path, raw_body=DEEP, content_type="text/plain")
    assert (status, body["error"]["code"]) == (415, "UnsupportedMediaType")
