"""The API handler with in-memory ports: routing, status codes, error bodies."""

import json
from datetime import UTC, datetime

import pytest

from billpay.api.handler import ApiDependencies, handler
from billpay.codat.errors import CodatRateLimitedError, CodatRejectedError, CodatUnavailableError
from billpay.companies.models import CompanyStatus, Wait, WaitKind
from billpay.onboarding.logic import register_company
from billpay.onboarding.models import OnboardingTimings, RegisterCompany

from .fakes import FakeCodat, InMemoryCompanies, InMemoryWorkflow, LambdaContext

T0 = datetime(2026, 11, 25, tzinfo=UTC)
TIMINGS = OnboardingTimings(
    reconcile_interval_seconds=60, link_expiry_seconds=3600, initial_read_timeout_seconds=600
)


@pytest.fixture
def codat():
    return FakeCodat()


@pytest.fixture
def deps(codat):
    return ApiDependencies(
        companies=InMemoryCompanies(), onboarding=InMemoryWorkflow(), codat=lambda: codat
    )


BODY = {"companyId": "smb-1", "name": "Acme", "platformKey": "gbol"}


def call(deps, method, path, body=None, raw_body=None, content_type="application/json"):
    headers = {"content-type": content_type} if content_type else {}
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "r1", "stage": "dev", "httpMethod": method},
        "body": raw_body if raw_body is not None else (json.dumps(body) if body else None),
        "isBase64Encoded": False,
    }
    answer = handler(event, LambdaContext("api"), deps=deps)
    return answer["statusCode"], json.loads(answer["body"])


def _registered(deps, status=CompanyStatus.REGISTERED, **fields):
    record, _ = register_company(
        RegisterCompany(execution_arn="arn:exec:1", input=BODY), deps.companies, TIMINGS
    )
    deps.companies.items["smb-1"] = record.model_copy(update={"status": status, **fields})
    return deps.companies.items["smb-1"]


def test_post_companies_starts_onboarding_and_answers_202(deps):
    status, body = call(deps, "POST", "/companies", BODY)
    assert status == 202
    assert body["companyId"] == "smb-1"
    assert body["executionArn"].endswith(":onboard-smb-1")
    assert body["statusPath"] == "/companies/smb-1"


def test_conflicting_start_answers_409(deps):
    call(deps, "POST", "/companies", BODY)
    status, body = call(deps, "POST", "/companies", {**BODY, "name": "Other"})
    assert status == 409
    assert body["error"]["code"] == "Conflict"


def test_invalid_body_answers_400_with_the_fields(deps):
    status, body = call(deps, "POST", "/companies", {"companyId": "bad id"})
    assert status == 400
    fields = {d["field"] for d in body["error"]["details"]}
    assert fields == {"companyId", "name", "platformKey"}


def test_an_unknown_platform_answers_400_naming_the_known_ones(deps):
    status, body = call(deps, "POST", "/companies", {**BODY, "platformKey": "sage"})
    assert status == 400
    (detail,) = body["error"]["details"]
    assert detail["field"] == "platformKey"
    assert "gbol (Xero)" in detail["message"]
    assert deps.onboarding.executions == {}


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[" * 100_000 + "]" * 100_000,  # deeper than Python's parser goes: RecursionError
        '{"a":' * 50_000 + "1" + "}" * 50_000,
    ],
)
def test_a_body_that_does_not_parse_answers_400(deps, raw):
    status, body = call(deps, "POST", "/companies", raw_body=raw)
    assert status == 400
    assert body["error"]["code"] == "MalformedRequest"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/companies"),
        ("POST", "/companies/smb-1/relink"),
        ("GET", "/companies/smb-1"),
        ("DELETE", "/companies/smb-1"),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_a_body_of_another_content_type_answers_415_on_every_route(
    deps, method, path, content_type
):
    status, body = call(deps, method, path, raw_body="[" * 5000, content_type=content_type)
    assert status == 415
    assert body["error"]["code"] == "UnsupportedMediaType"


def test_json_with_a_charset_and_without_a_content_type_is_json(deps):
    assert (
        call(deps, "POST", "/companies", BODY, content_type="application/json; charset=utf-8")[0]
        == 202
    )
    assert call(deps, "POST", "/companies", BODY, content_type=None)[0] == 202


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/companies/smb-1"),
        ("DELETE", "/companies/smb-1"),
        ("POST", "/companies/smb-1/relink"),
    ],
)
def test_a_route_without_a_body_refuses_one(deps, method, path):
    _registered(deps)
    status, body = call(deps, method, path, {"unexpected": True})
    assert status == 400
    assert "takes no body" in body["error"]["message"]


def test_get_company_answers_404_then_200_without_workflow_internals(deps):
    status, body = call(deps, "GET", "/companies/smb-1")
    assert status == 404
    assert body["error"]["code"] == "NotFound"
    _registered(
        deps,
        CompanyStatus.PENDING_LINK,
        link_url="https://link.example/1",
        wait=Wait(
            kind=WaitKind.AUTHORIZATION,
            token="secret-task-token",
            not_before=T0,
            armed_at=T0,
        ),
    )
    status, body = call(deps, "GET", "/companies/smb-1")
    assert status == 200
    assert body["companyId"] == "smb-1"
    assert body["status"] == "PENDING_LINK"
    assert body["linkUrl"] == "https://link.example/1"
    assert body["waitingFor"] == "authorization"
    assert "secret-task-token" not in json.dumps(body)
    assert "signals" not in body


def test_the_link_url_is_shown_only_while_pending(deps):
    _registered(deps, CompanyStatus.READY, link_url="https://link.example/1")
    assert call(deps, "GET", "/companies/smb-1")[1]["linkUrl"] is None


def test_a_malformed_company_id_in_the_path_answers_400(deps):
    for method in ("GET", "DELETE"):
        status, _ = call(deps, method, "/companies/bad:id")
        assert status == 400
    assert call(deps, "POST", "/companies/bad:id/relink")[0] == 400


def test_relink_answers_202_from_needs_relink_and_409_when_ready(deps):
    _registered(deps, CompanyStatus.NEEDS_RELINK)
    status, body = call(deps, "POST", "/companies/smb-1/relink")
    assert status == 202
    assert ":relink-smb-1-" in body["executionArn"]
    _registered(deps, CompanyStatus.READY)
    status, body = call(deps, "POST", "/companies/smb-1/relink")
    assert status == 409
    assert "READY" in body["error"]["message"]


def test_delete_offboards_and_answers_the_company(deps, codat):
    company = codat.create_company("Acme", {})
    connection = codat.create_connection(company.id, "gbol")
    _registered(
        deps,
        CompanyStatus.READY,
        codat_company_id=company.id,
        connection_id=connection.id,
        connection_status="Linked",
    )
    status, body = call(deps, "DELETE", "/companies/smb-1")
    assert status == 200
    assert (body["status"], body["connectionStatus"]) == ("OFFBOARDED", "Unlinked")
    assert call(deps, "DELETE", "/companies/smb-1")[0] == 200
    assert call(deps, "GET", "/companies/smb-1")[1]["status"] == "OFFBOARDED"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            CodatRateLimitedError("quota", status=429, retry_after_seconds=42),
            429,
            "CodatRateLimited",
        ),
        (CodatUnavailableError("down", status=503, correlation_id="c-1"), 503, "CodatUnavailable"),
        (CodatRejectedError("no", status=400, correlation_id="c-2"), 502, "CodatRejected"),
    ],
)
def test_codat_failing_during_offboarding_is_an_answer_the_caller_can_act_on(
    deps, codat, error, status, code
):
    company = codat.create_company("Acme", {})
    connection = codat.create_connection(company.id, "gbol")
    _registered(
        deps,
        CompanyStatus.READY,
        codat_company_id=company.id,
        connection_id=connection.id,
        connection_status="Linked",
    )
    codat.fail["unlink_connection"] = [error]
    event_status, body = call(deps, "DELETE", "/companies/smb-1")
    assert event_status == status
    assert body["error"]["code"] == code
    assert body["error"]["details"] == [
        {"field": "correlationId", "message": error.correlation_id or ""}
    ]
    assert deps.companies.items["smb-1"].status is CompanyStatus.READY


def test_a_rate_limited_answer_says_when_to_try_again(deps, codat):
    company = codat.create_company("Acme", {})
    connection = codat.create_connection(company.id, "gbol")
    _registered(
        deps,
        CompanyStatus.READY,
        codat_company_id=company.id,
        connection_id=connection.id,
        connection_status="Linked",
    )
    codat.fail["unlink_connection"] = [CodatRateLimitedError("quota", retry_after_seconds=42)]
    event = {
        "resource": "/companies/smb-1",
        "path": "/companies/smb-1",
        "httpMethod": "DELETE",
        "headers": {},
        "requestContext": {"requestId": "r1", "stage": "dev"},
        "body": None,
        "isBase64Encoded": False,
    }
    answer = handler(event, LambdaContext("api"), deps=deps)
    assert answer["statusCode"] == 429
    headers = {**(answer.get("headers") or {}), **(answer.get("multiValueHeaders") or {})}
    assert headers["Retry-After"] in ("42", ["42"])


def test_unknown_route_answers_404(deps):
    status, _ = call(deps, "PUT", "/companies/smb-1")
    assert status == 404


def test_a_path_no_route_takes_is_the_apis_own_404(deps):
    # API Gateway passes ids with characters no route takes (`{companyId}` matches anything).
    status, body = call(deps, "GET", "/companies/\x14/bills")
    assert status == 404
    assert body["error"]["code"] == "NotFound"
    assert body["error"]["message"] == "no route for GET /companies/\x14/bills"
