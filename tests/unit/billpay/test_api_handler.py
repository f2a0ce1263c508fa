"""The API handler with in-memory ports: routing, status codes, error bodies."""

import json
from dataclasses import dataclass

import pytest

from billpay.api.handler import ApiDependencies, handler
from billpay.onboarding.logic import register_company
from billpay.onboarding.models import RegisterCompany

from .fakes import InMemoryCompanies, InMemoryWorkflow


@dataclass
class Context:
    function_name: str = "api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:api"
    aws_request_id: str = "req-1"


@pytest.fixture
def deps():
    return ApiDependencies(companies=InMemoryCompanies(), onboarding=InMemoryWorkflow())


def call(deps, method, path, body=None, raw_body=None):
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "r1", "stage": "dev", "httpMethod": method},
        "body": raw_body if raw_body is not None else (json.dumps(body) if body else None),
        "isBase64Encoded": False,
    }
    answer = handler(event, Context(), deps=deps)
    return answer["statusCode"], json.loads(answer["body"])


def test_post_companies_starts_onboarding_and_answers_202(deps):
    status, body = call(deps, "POST", "/companies", {"companyId": "smb-1", "name": "Acme"})
    assert status == 202
    assert body["companyId"] == "smb-1"
    assert body["executionArn"].endswith(":onboard-smb-1")


def test_conflicting_start_answers_409(deps):
    call(deps, "POST", "/companies", {"companyId": "smb-1", "name": "Acme"})
    status, body = call(deps, "POST", "/companies", {"companyId": "smb-1", "name": "Other"})
    assert status == 409
    assert body["error"]["code"] == "Conflict"


def test_invalid_body_answers_400_with_the_fields(deps):
    status, body = call(deps, "POST", "/companies", {"companyId": "bad id"})
    assert status == 400
    fields = {d["field"] for d in body["error"]["details"]}
    assert fields == {"companyId", "name"}


def test_malformed_json_answers_400(deps):
    status, body = call(deps, "POST", "/companies", raw_body="{not json")
    assert status == 400
    assert body["error"]["code"] == "MalformedRequest"


def test_get_company_answers_404_then_200(deps):
    status, body = call(deps, "GET", "/companies/smb-1")
    assert status == 404
    assert body["error"]["code"] == "NotFound"
    register_company(
        RegisterCompany.model_validate({"companyId": "smb-1", "name": "Acme", "executionArn": "a"}),
        deps.companies,
    )
    status, body = call(deps, "GET", "/companies/smb-1")
    assert status == 200
    assert body["companyId"] == "smb-1"
    assert body["status"] == "REGISTERED"


def test_unknown_route_answers_404(deps):
    status, _ = call(deps, "DELETE", "/companies/smb-1")
    assert status == 404
