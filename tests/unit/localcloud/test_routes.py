"""Route extraction, matching, proxy events and proxy responses: the pure half of the local API."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcloud.routes import (
    IncomingRequest,
    MalformedProxyResponse,
    RequestValidation,
    Route,
    TemplateError,
    build_proxy_event,
    gateway_error,
    is_binary,
    match_route,
    parse_proxy_response,
    rest_apis,
    routes_from_template,
    validate_request,
)

ROOT = {"Fn::GetAtt": ["Api", "RootResourceId"]}
URI = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":apigateway:",
            {"Ref": "AWS::Region"},
            ":lambda:path/2015-03-31/functions/",
            {"Fn::GetAtt": ["Fn", "Arn"]},
            "/invocations",
        ],
    ]
}


def _method(resource_id, method, auth="NONE", integration=None):
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": method,
            "ResourceId": resource_id,
            "RestApiId": {"Ref": "Api"},
            "AuthorizationType": auth,
            "Integration": integration or {"Type": "AWS_PROXY", "Uri": URI},
        },
    }


def _resource(parent, part):
    return {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {"ParentId": parent, "PathPart": part, "RestApiId": {"Ref": "Api"}},
    }


TEMPLATE = {
    "Resources": {
        "Api": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {"Name": "demo", "BinaryMediaTypes": ["image/*"]},
        },
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Items": _resource(ROOT, "items"),
        "Item": _resource({"Ref": "Items"}, "{itemId}"),
        "Special": _resource({"Ref": "Items"}, "special"),
        "Proxy": _resource(ROOT, "{proxy+}"),
        "RootGet": _method(ROOT, "GET"),
        "ItemsPost": _method({"Ref": "Items"}, "POST", auth="AWS_IAM"),
        "ItemGet": _method({"Ref": "Item"}, "GET"),
        "ItemAny": _method({"Ref": "Item"}, "ANY"),
        "SpecialGet": _method({"Ref": "Special"}, "get"),
        "ProxyAny": _method({"Ref": "Proxy"}, "ANY"),
        "Mock": _method({"Ref": "Items"}, "DELETE", integration={"Type": "MOCK"}),
    }
}


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return routes_from_template(TEMPLATE)


def test_routes_have_full_paths_methods_and_their_function(routes):
    found = {(r.http_method, r.resource_path): r for r in routes}
    assert set(found) == {
        ("GET", "/"),
        ("POST", "/items"),
        ("GET", "/items/{itemId}"),
        ("ANY", "/items/{itemId}"),
        ("GET", "/items/special"),
        ("ANY", "/{proxy+}"),
        ("DELETE", "/items"),
    }
    assert found[("POST", "/items")].authorization_type == "AWS_IAM"
    assert found[("GET", "/items/{itemId}")].function_logical_id == "Fn"
    assert found[("DELETE", "/items")].integration_type == "MOCK"
    assert found[("DELETE", "/items")].function_logical_id is None
    assert {r.rest_api for r in routes} == {"Api"}


def test_rest_api_info_reads_binary_media_types():
    (info,) = rest_apis(TEMPLATE)
    assert info.name == "demo"
    assert info.binary_media_types == ("image/*",)


def test_get_att_in_string_form_is_understood():
    template = {
        "Resources": {
            **TEMPLATE["Resources"],
            "Items": _resource({"Fn::GetAtt": "Api.RootResourceId"}, "items"),
        }
    }
    paths = {r.resource_path for r in routes_from_template(template)}
    assert "/items/{itemId}" in paths


def test_unresolvable_parent_is_a_template_error():
    template = {"Resources": {"Broken": _resource({"Fn::ImportValue": "x"}, "items")}}
    with pytest.raises(TemplateError, match="Broken"):
        routes_from_template(template)


@pytest.mark.parametrize(
    ("method", "path", "expected", "params"),
    [
        ("GET", "/", "/", {}),
        ("GET", "/items/special", "/items/special", {}),
        ("GET", "/items/42", "/items/{itemId}", {"itemId": "42"}),
        ("PUT", "/items/42", "/items/{itemId}", {"itemId": "42"}),
        ("POST", "/items", "/items", {}),
        ("GET", "/items", "/{proxy+}", {"proxy": "items"}),
        ("GET", "/a/b/c", "/{proxy+}", {"proxy": "a/b/c"}),
        ("GET", "/items/42/", "/items/{itemId}", {"itemId": "42"}),
    ],
)
def test_most_specific_route_wins(routes, method, path, expected, params):
    route, found = match_route(routes, method, path)
    assert route.resource_path == expected
    assert found == params


def test_exact_method_beats_any(routes):
    route, _ = match_route(routes, "GET", "/items/1")
    assert route.http_method == "GET"
    route, _ = match_route(routes, "PATCH", "/items/1")
    assert route.http_method == "ANY"


def test_no_route_without_proxy():
    routes = routes_from_template(
        {
            "Resources": {
                k: v for k, v in TEMPLATE["Resources"].items() if k not in ("Proxy", "ProxyAny")
            }
        }
    )
    assert match_route(routes, "GET", "/nope") is None
    assert match_route(routes, "DELETE", "/items/1/extra") is None
    assert match_route(routes, "PATCH", "/") is None


@given(st.lists(st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True), min_size=1, max_size=5))
def test_a_literal_route_matches_exactly_its_own_path(segments):
    path = "/" + "/".join(segments)
    route = Route("Api", "GET", path, "AWS_PROXY", "Fn", "NONE", "M")
    greedy = Route("Api", "GET", "/{proxy+}", "AWS_PROXY", "Fn", "NONE", "P")
    assert match_route([greedy, route], "GET", path) == (route, {})
    assert match_route([route], "GET", path + "/more") is None


def _event(request, route_path="/items/{itemId}", params=None, **kwargs):
    route = Route("Api", "GET", route_path, "AWS_PROXY", "Fn", "NONE", "ItemGet")
    return build_proxy_event(
        request,
        route,
        params or {},
        stage="dev",
        request_id="req-1",
        api_id="abc123",
        account_id="123456789012",
        domain_name="127.0.0.1:3000",
        **kwargs,
    )


def test_proxy_event_payload_1_0():
    request = IncomingRequest(
        method="get",
        path="/items/42",
        headers=[("Accept", "a"), ("X-Dup", "1"), ("X-Dup", "2"), ("User-Agent", "ua")],
        query=[("q", "1"), ("q", "2"), ("z", "")],
        body=b"",
        source_ip="127.0.0.1",
    )
    event = _event(request, params={"itemId": "42"}, stage_variables={"v": "1"})
    assert event["resource"] == "/items/{itemId}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "GET"
    assert event["headers"] == {"Accept": "a", "X-Dup": "2", "User-Agent": "ua"}
    assert event["multiValueHeaders"]["X-Dup"] == ["1", "2"]
    assert event["queryStringParameters"] == {"q": "2", "z": ""}
    assert event["multiValueQueryStringParameters"] == {"q": ["1", "2"], "z": [""]}
    assert event["pathParameters"] == {"itemId": "42"}
    assert event["stageVariables"] == {"v": "1"}
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] == "req-1"
    assert context["stage"] == "dev"
    assert context["resourcePath"] == "/items/{itemId}"
    assert context["httpMethod"] == "GET"
    assert context["path"] == "/dev/items/42"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "ua"
    assert context["apiId"] == "abc123"
    assert isinstance(context["requestTimeEpoch"], int)


def test_no_headers_or_query_give_nulls_like_api_gateway():
    event = _event(IncomingRequest("GET", "/", [], [], b"", "127.0.0.1"), route_path="/")
    assert event["headers"] is None
    assert event["multiValueHeaders"] is None
    assert event["queryStringParameters"] is None
    assert event["pathParameters"] is None


def test_text_body_is_passed_as_text_and_binary_media_types_as_base64():
    text = _event(
        IncomingRequest("POST", "/x", [("Content-Type", "application/json")], [], b'{"a":1}', "ip")
    )
    assert (text["body"], text["isBase64Encoded"]) == ('{"a":1}', False)
    image = _event(
        IncomingRequest("POST", "/x", [("content-type", "image/png")], [], b"\x89PNG", "ip"),
        binary_media_types=("image/*",),
    )
    assert image["isBase64Encoded"] is True
    assert base64.b64decode(image["body"]) == b"\x89PNG"


def test_undecodable_body_is_not_lost():
    event = _event(IncomingRequest("POST", "/x", [], [], b"\xff\xfe", "ip"))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


@pytest.mark.parametrize(
    ("content_type", "types", "binary"),
    [
        ("image/png", ("image/*",), True),
        ("application/octet-stream; charset=x", ("application/octet-stream",), True),
        ("application/json", ("image/*",), False),
        (None, ("*/*",), False),
        ("text/plain", ("*/*",), True),
    ],
)
def test_binary_media_type_matching(content_type, types, binary):
    assert is_binary(content_type, types) is binary


def test_proxy_response_with_headers_and_multi_value_headers():
    status, headers, body = parse_proxy_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Flag": True, "Set-Cookie": "a"},
            "multiValueHeaders": {"set-cookie": ["b", "c"]},
            "body": '{"ok": true}',
        }
    )
    assert status == 201
    assert ("Content-Type", "application/json") in headers
    assert ("X-Flag", "true") in headers
    # multiValueHeaders win for a name present in both, case-insensitively.
    assert [v for k, v in headers if k.lower() == "set-cookie"] == ["b", "c"]
    assert body == b'{"ok": true}'


def test_base64_proxy_response_is_decoded():
    _, _, body = parse_proxy_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    assert body == b"\x00\x01"


def test_status_only_response_has_an_empty_body():
    assert parse_proxy_response({"statusCode": 204}) == (204, [], b"")


@pytest.mark.parametrize(
    "payload",
    [
        "not a dict",
        None,
        {},
        {"statusCode": "abc"},
        {"statusCode": 700},
        {"statusCode": 200, "unexpected": 1},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        {"statusCode": 200, "isBase64Encoded": "yes"},
    ],
)
def test_malformed_proxy_responses_are_rejected(payload):
    with pytest.raises(MalformedProxyResponse):
        parse_proxy_response(payload)


def test_gateway_errors_are_json_messages():
    status, headers, body = gateway_error(404, "Missing Authentication Token", "Missing")
    assert status == 404
    assert body == b'{"message": "Missing Authentication Token"}'
    assert ("Content-Type", "application/json") in headers


VALIDATED = {
    "Resources": {
        **TEMPLATE["Resources"],
        "Validator": {
            "Type": "AWS::ApiGateway::RequestValidator",
            "Properties": {"ValidateRequestBody": True, "ValidateRequestParameters": True},
        },
        "ItemModel": {
            "Type": "AWS::ApiGateway::Model",
            "Properties": {
                "ContentType": "application/json",
                "Schema": {
                    "$schema": "http://json-schema.org/draft-04/schema#",
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "maxLength": 5}},
                    "additionalProperties": False,
                },
            },
        },
        "ItemsPost": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                **TEMPLATE["Resources"]["ItemsPost"]["Properties"],
                "RequestValidatorId": {"Ref": "Validator"},
                "RequestModels": {"application/json": {"Ref": "ItemModel"}, "text/plain": "Empty"},
                "RequestParameters": {
                    "method.request.querystring.version": True,
                    "method.request.header.X-Tenant": True,
                    "method.request.querystring.optional": False,
                },
            },
        },
    }
}


@pytest.fixture(scope="module")
def validation() -> RequestValidation:
    (route,) = [r for r in routes_from_template(VALIDATED) if r.method_logical_id == "ItemsPost"]
    assert route.validation is not None
    return route.validation


def test_validator_and_model_are_read_from_the_template(validation):
    assert validation.validate_body
    assert validation.validate_parameters
    assert [media for media, _ in validation.body_schemas] == ["application/json"]
    assert set(validation.required_parameters) == {
        ("querystring", "version"),
        ("header", "X-Tenant"),
    }


def _post(
    body,
    headers=(("x-tenant", "t"), ("Content-Type", "application/json")),
    query=(("version", "1"),),
):
    return IncomingRequest("POST", "/items", list(headers), list(query), body, "ip")


def test_valid_request_passes(validation):
    assert validate_request(validation, _post(b'{"name": "abc"}'), {}) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "too long"}',
        b"{}",
        b'{"name": "a", "extra": 1}',
        b"not json",
        b"",
        b"[" * 100_000 + b"]" * 100_000,  # deeper than json.loads goes: RecursionError
        b'{"name": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",  # parses; too deep to validate
    ],
)
def test_body_breaking_the_model_is_invalid(validation, body):
    assert validate_request(validation, _post(body), {}) == "Invalid request body"


def test_missing_parameters_are_named(validation):
    message = validate_request(validation, _post(b'{"name": "a"}', headers=(), query=()), {})
    assert message == "Missing required request parameters: [version, X-Tenant]"


def test_body_of_a_media_type_without_a_model_is_not_checked(validation):
    request = _post(b"anything", headers=(("x-tenant", "t"), ("Content-Type", "text/plain")))
    assert validate_request(validation, request, {}) is None


def test_model_schema_with_intrinsics_cannot_be_validated_locally():
    template = {"Resources": {**VALIDATED["Resources"]}}
    template["Resources"]["ItemModel"] = {
        "Type": "AWS::ApiGateway::Model",
        "Properties": {"Schema": {"$ref": {"Fn::Join": ["", ["https://", "x"]]}}},
    }
    with pytest.raises(TemplateError, match="ItemModel"):
        routes_from_template(template)


def _mock_template(parameters, templates=None):
    response = {"StatusCode": "204", "ResponseParameters": parameters}
    if templates is not None:
        response["ResponseTemplates"] = templates
    return {
        "Resources": {
            "Api": TEMPLATE["Resources"]["Api"],
            "Options": _method(
                ROOT, "OPTIONS", integration={"Type": "MOCK", "IntegrationResponses": [response]}
            ),
        }
    }


def test_mock_integration_answers_its_literal_headers():
    (route,) = routes_from_template(
        _mock_template(
            {"method.response.header.Access-Control-Allow-Origin": "'https://a.example'"}
        )
    )
    assert route.mock_response is not None
    assert route.mock_response.status == 204
    assert route.mock_response.headers == (("Access-Control-Allow-Origin", "https://a.example"),)


@pytest.mark.parametrize(
    ("parameters", "templates"),
    [
        ({"method.response.header.X": "method.request.header.Origin"}, None),
        ({}, {"application/json": '#set($o = $input.params("Origin"))$o'}),
    ],
)
def test_mock_integration_that_maps_the_request_is_refused(parameters, templates):
    with pytest.raises(TemplateError, match="Options"):
        routes_from_template(_mock_template(parameters, templates))
