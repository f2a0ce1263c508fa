"""docs/openapi.json is what `python -m ops openapi` generates from the API's handlers, describes
every route, and declares the body each handler really parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billpay.api.handler import ApiDependencies, handler
from ops import openapi
from ops.__main__ import main as ops_main

from ..billpay.fakes import FakeCodat, InMemoryCompanies, InMemoryWorkflow, LambdaContext

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
SIGV4 = [{"sigv4": []}]


@pytest.fixture(scope="module")
def generated() -> dict:
    return openapi.document()


def test_docs_openapi_json_is_what_the_handlers_generate(generated, capsys):
    published = json.loads(DOCUMENT.read_text())
    assert published == generated, "docs/openapi.json is stale: run `make openapi`"
    # What `make openapi` writes: `python -m ops openapi`, byte for byte.
    assert ops_main(["openapi"]) == 0
    assert capsys.readouterr().out == DOCUMENT.read_text()


def test_every_route_is_documented_with_its_answers_and_iam_auth(generated):
    operations = {
        (method.upper(), path): operation
        for path, item in generated["paths"].items()
        for method, operation in item.items()
    }
    routes = openapi.routes()
    assert len(operations) == len(routes) == len(openapi.OPERATIONS) == 17
    for route in routes:
        path = route.openapi_path.replace("{company_id}", "{companyId}")
        path = path.replace("{bill_id}", "{billId}").replace("{supplier_id}", "{supplierId}")
        path = path.replace("{payment_id}", "{paymentId}")
        operation = operations[(route.method, path)]
        declared = openapi.OPERATIONS[route.func.__name__]
        success = operation["responses"][str(int(declared.status))]
        assert success["content"]["application/json"]["schema"]["$ref"].endswith(
            declared.answer.__name__
        )
        # Every route can refuse bad input (400, 415), and API Gateway can deny the caller (403).
        assert {"400", "403", "415"} <= set(operation["responses"])
        assert not any(code.startswith("5") for code in operation["responses"]) or (
            set(declared.errors) >= set(openapi.CODAT)
        ), "only routes that call Codat answer 5xx (Codat's outage, passed on)"
        assert operation["security"] == SIGV4
        assert ("requestBody" in operation) == (declared.body is not None)
    scheme = generated["components"]["securitySchemes"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert generated["security"] == SIGV4


def test_a_route_missing_from_the_table_fails_the_generation(monkeypatch):
    monkeypatch.delitem(openapi.OPERATIONS, "get_bill")
    with pytest.raises(LookupError, match="get_bill"):
        openapi.document()


def _example_path(path: str) -> str:
    return (
        path.replace("{companyId}", "smb-1")
        .replace("{billId}", "bill-1")
        .replace("{supplierId}", "sup-1")
        .replace("{paymentId}", "pay-1")
    )


def test_the_documented_body_is_the_one_each_handler_parses(generated):
    """An empty object sent to each route with a body: the handler names exactly the fields the
    document says are required (so a document declaring another model would fail here)."""
    deps = ApiDependencies(
        companies=InMemoryCompanies(), onboarding=InMemoryWorkflow(), codat=FakeCodat
    )
    checked = 0
    for path, item in generated["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            required = set(generated["components"]["schemas"][ref.rsplit("/", 1)[1]]["required"])
            event = {
                "path": _example_path(path),
                "httpMethod": method.upper(),
                "headers": {"content-type": "application/json"},
                "multiValueHeaders": {},
                "queryStringParameters": None,
                "requestContext": {"requestId": "r1", "stage": "dev"},
                "body": "{}",
                "isBase64Encoded": False,
            }
            answer = handler(event, LambdaContext("api"), deps=deps)
            assert answer["statusCode"] == 400, (method, path, answer["body"])
            error = json.loads(answer["body"])["error"]
            assert error["code"] == "ValidationError"
            assert {d["field"] for d in error["details"]} == required, (method, path)
            checked += 1
    assert checked == 8
