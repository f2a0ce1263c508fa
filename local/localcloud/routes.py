"""The pure half of the local API Gateway: routes from a synthesized template, route matching,
REST proxy events (payload 1.0) and proxy responses. No sockets, no moto: unit-tested as is.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, field_validator

ANY_METHOD = "ANY"
_GREEDY_SUFFIX = "+}"


class TemplateError(ValueError):
    """The template's API cannot be served locally; the message says which part and why."""


@dataclass(frozen=True)
class RestApiInfo:
    logical_id: str
    name: str
    binary_media_types: tuple[str, ...]


@dataclass(frozen=True)
class RequestValidation:
    """A method's request validator with what it checks (API Gateway answers 400 before the
    integration runs)."""

    validate_body: bool
    validate_parameters: bool
    # media type -> JSON schema (draft 4) of the method's request model
    body_schemas: tuple[tuple[str, dict[str, Any]], ...] = ()
    # ("path" | "querystring" | "header", name) of each required request parameter
    required_parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MockResponse:
    """What a MOCK integration answers (CDK's CORS preflight methods are these)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


@dataclass(frozen=True)
class Route:
    rest_api: str
    http_method: str
    resource_path: str
    integration_type: str
    function_logical_id: str | None
    authorization_type: str
    method_logical_id: str
    validation: RequestValidation | None = None
    mock_response: MockResponse | None = None

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(part for part in self.resource_path.split("/") if part)


def _root_of(node: Any) -> str | None:
    """The RestApi logical id when `node` is {"Fn::GetAtt": [api, "RootResourceId"]}."""
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        target = target.split(".", 1) if isinstance(target, str) else target
        if target[1] == "RootResourceId":
            return str(target[0])
    return None


def _ref(node: Any) -> str | None:
    if isinstance(node, dict) and set(node) == {"Ref"} and isinstance(node["Ref"], str):
        return node["Ref"]
    return None


def rest_apis(template: dict[str, Any]) -> list[RestApiInfo]:
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] == "AWS::ApiGateway::RestApi":
            properties = resource.get("Properties", {})
            name = properties.get("Name", logical_id)
            found.append(
                RestApiInfo(
                    logical_id=logical_id,
                    name=name if isinstance(name, str) else logical_id,
                    binary_media_types=tuple(properties.get("BinaryMediaTypes", [])),
                )
            )
    return found


def _resource_paths(resources: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """logical id of each AWS::ApiGateway::Resource -> (rest api logical id, full path)."""
    paths: dict[str, tuple[str, str]] = {}

    def resolve(logical_id: str, seen: tuple[str, ...]) -> tuple[str, str]:
        if logical_id in paths:
            return paths[logical_id]
        if logical_id in seen:
            raise TemplateError(f"API resource cycle through {logical_id}")
        properties = resources[logical_id].get("Properties", {})
        parent = properties.get("ParentId")
        part = properties.get("PathPart")
        if not isinstance(part, str):
            raise TemplateError(f"{logical_id}: PathPart must be a literal, got {part!r}")
        api = _root_of(parent)
        if api is not None:
            paths[logical_id] = (api, f"/{part}")
        else:
            parent_id = _ref(parent)
            if parent_id is None or parent_id not in resources:
                raise TemplateError(f"{logical_id}: unsupported ParentId {parent!r}")
            api, parent_path = resolve(parent_id, (*seen, logical_id))
            paths[logical_id] = (api, f"{parent_path}/{part}")
        return paths[logical_id]

    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::ApiGateway::Resource":
            resolve(logical_id, ())
    return paths


def _function_in_uri(uri: Any, functions: set[str]) -> str | None:
    """The Lambda function (logical id) an integration URI points at, found in its Fn::Join."""
    if isinstance(uri, dict):
        if "Fn::GetAtt" in uri:
            target = uri["Fn::GetAtt"]
            target = target.split(".", 1) if isinstance(target, str) else target
            if target[0] in functions and target[1] == "Arn":
                return str(target[0])
        for value in uri.values():
            found = _function_in_uri(value, functions)
            if found:
                return found
    if isinstance(uri, list):
        for value in uri:
            found = _function_in_uri(value, functions)
            if found:
                return found
    return None


def _has_intrinsic(node: Any) -> bool:
    if isinstance(node, dict):
        return any(k == "Ref" or k.startswith("Fn::") for k in node) or any(
            _has_intrinsic(v) for v in node.values()
        )
    if isinstance(node, list):
        return any(_has_intrinsic(v) for v in node)
    return False


def _validation(
    logical_id: str, properties: dict[str, Any], resources: dict[str, Any]
) -> RequestValidation | None:
    validator_id = _ref(properties.get("RequestValidatorId"))
    if validator_id is None:
        if properties.get("RequestValidatorId") is not None:
            raise TemplateError(f"{logical_id}: unsupported RequestValidatorId")
        return None
    validator = resources[validator_id].get("Properties", {})
    schemas: list[tuple[str, dict[str, Any]]] = []
    for media_type, model in (properties.get("RequestModels") or {}).items():
        model_id = _ref(model)
        if model_id is None:
            continue  # a built-in model such as "Empty": nothing to check
        schema = resources[model_id].get("Properties", {}).get("Schema", {})
        if _has_intrinsic(schema):
            raise TemplateError(f"{model_id}: a model schema must be literal to validate locally")
        schemas.append((media_type.lower(), schema))
    required = []
    for key, is_required in (properties.get("RequestParameters") or {}).items():
        prefix, _, name = key.removeprefix("method.request.").partition(".")
        if is_required is True and prefix in ("path", "querystring", "header"):
            required.append((prefix, name))
    return RequestValidation(
        validate_body=validator.get("ValidateRequestBody") is True,
        validate_parameters=validator.get("ValidateRequestParameters") is True,
        body_schemas=tuple(schemas),
        required_parameters=tuple(required),
    )


def _mock_response(logical_id: str, integration: dict[str, Any]) -> MockResponse | None:
    """The default integration response of a MOCK integration, with its static header values.

    Only literal mappings ('value') are supported; a mapping from the request or a Velocity
    template is refused, so a route never answers differently from API Gateway unnoticed.
    """
    if integration.get("Type") != "MOCK":
        return None
    responses = [
        r for r in integration.get("IntegrationResponses", []) if not r.get("SelectionPattern")
    ]
    if not responses:
        return MockResponse(status=200, headers=())
    response = responses[0]
    headers = []
    for key, value in (response.get("ResponseParameters") or {}).items():
        name = key.removeprefix("method.response.header.")
        literal = isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'"
        if name == key or not literal:
            raise TemplateError(
                f"{logical_id}: MOCK response parameter {key}={value!r} is not a literal"
            )
        headers.append((name, value[1:-1]))
    body = b""
    templates = response.get("ResponseTemplates") or {}
    template = templates.get("application/json")
    if isinstance(template, str) and template:
        if "$" in template:
            raise TemplateError(
                f"{logical_id}: MOCK response templates with Velocity are not served"
            )
        body = template.encode()
    return MockResponse(
        status=int(response.get("StatusCode", 200)), headers=tuple(headers), body=body
    )


def routes_from_template(template: dict[str, Any]) -> list[Route]:
    resources: dict[str, Any] = template.get("Resources", {})
    paths = _resource_paths(resources)
    functions = {k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    routes = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::ApiGateway::Method":
            continue
        properties = resource.get("Properties", {})
        target = properties.get("ResourceId")
        api = _root_of(target)
        if api is not None:
            path = "/"
        else:
            resource_id = _ref(target)
            if resource_id not in paths:
                raise TemplateError(f"{logical_id}: unsupported ResourceId {target!r}")
            api, path = paths[resource_id]
        method = properties.get("HttpMethod")
        if not isinstance(method, str):
            raise TemplateError(f"{logical_id}: HttpMethod must be a literal")
        integration = properties.get("Integration", {})
        integration_type = integration.get("Type", "NONE") if integration else "NONE"
        routes.append(
            Route(
                rest_api=api,
                http_method=method.upper(),
                resource_path=path,
                integration_type=integration_type,
                function_logical_id=_function_in_uri(integration.get("Uri"), functions),
                authorization_type=properties.get("AuthorizationType", "NONE"),
                method_logical_id=logical_id,
                validation=_validation(logical_id, properties, resources),
                mock_response=_mock_response(logical_id, integration or {}),
            )
        )
    return routes


# --- matching ----------------------------------------------------------------------------------


def _match_segments(
    pattern: tuple[str, ...], parts: tuple[str, ...]
) -> tuple[dict[str, str], tuple[int, ...]] | None:
    """Path parameters and a specificity key (literal 2 > {param} 1 > {greedy+} 0) on a match."""
    params: dict[str, str] = {}
    score: list[int] = []
    for index, segment in enumerate(pattern):
        if segment.startswith("{") and segment.endswith(_GREEDY_SUFFIX):
            rest = parts[index:]
            if not rest:
                return None
            params[segment[1:-2]] = "/".join(rest)
            score.append(0)
            return params, tuple(score)
        if index >= len(parts):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            params[segment[1:-1]] = parts[index]
            score.append(1)
        elif segment == parts[index]:
            score.append(2)
        else:
            return None
    if len(parts) != len(pattern):
        return None
    return params, tuple(score)


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway would pick: most specific resource path, then exact method over ANY."""
    parts = tuple(part for part in path.split("/") if part)
    best: tuple[tuple[int, ...], int, Route, dict[str, str]] | None = None
    for route in routes:
        if route.http_method not in (method.upper(), ANY_METHOD):
            continue
        matched = _match_segments(route.segments, parts)
        if matched is None:
            continue
        params, score = matched
        method_rank = 1 if route.http_method == method.upper() else 0
        if best is None or (score, method_rank) > (best[0], best[1]):
            best = (score, method_rank, route, params)
    return None if best is None else (best[2], best[3])


# --- request validation ------------------------------------------------------------------------


def validate_request(
    validation: RequestValidation, request: IncomingRequest, path_parameters: dict[str, str]
) -> str | None:
    """API Gateway's 400 message for a request its validator rejects, or None."""
    if validation.validate_parameters:
        header_names = {name.lower() for name, _ in request.headers}
        query_names = {name for name, _ in request.query}
        missing = [
            name
            for location, name in validation.required_parameters
            if (location == "path" and not path_parameters.get(name))
            or (location == "querystring" and name not in query_names)
            or (location == "header" and name.lower() not in header_names)
        ]
        if missing:
            return f"Missing required request parameters: [{', '.join(missing)}]"
    if validation.validate_body and validation.body_schemas:
        content_type = next(
            (v for k, v in request.headers if k.lower() == "content-type"), "application/json"
        )
        media_type = content_type.split(";", 1)[0].strip().lower()
        schema = dict(validation.body_schemas).get(media_type)
        if schema is not None:
            import jsonschema  # type: ignore[import-untyped]  # via moto[server], pinned in uv.lock

            # A document nested deeper than Python's parser (or the validator) goes raises
            # RecursionError: API Gateway answers such a body with its 400 like any other.
            try:
                document = json.loads(request.body or b"null")
                valid = jsonschema.Draft4Validator(schema).is_valid(document)
            except (ValueError, RecursionError):
                return "Invalid request body"
            if not valid:
                return "Invalid request body"
    return None


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    body: bytes
    source_ip: str


def _single_and_multi(
    pairs: list[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def is_binary(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatch(media_type, pattern.lower()) for pattern in binary_media_types)


def build_proxy_event(
    request: IncomingRequest,
    route: Route,
    path_parameters: dict[str, str],
    *,
    stage: str,
    request_id: str,
    api_id: str,
    account_id: str,
    domain_name: str,
    binary_media_types: tuple[str, ...] = (),
    stage_variables: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API Lambda proxy event (payload format 1.0), as API Gateway builds it."""
    headers, multi_headers = _single_and_multi(request.headers)
    query, multi_query = _single_and_multi(request.query)
    content_type = next((v for k, v in request.headers if k.lower() == "content-type"), None)
    body: str | None
    if not request.body:
        body, encoded = None, False
    elif is_binary(content_type, binary_media_types):
        body, encoded = base64.b64encode(request.body).decode("ascii"), True
    else:
        try:
            body, encoded = request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            # API Gateway would mangle such a body; passing it base64-encoded loses nothing.
            body, encoded = base64.b64encode(request.body).decode("ascii"), True
    now = datetime.now(UTC)
    user_agent = next((v for k, v in request.headers if k.lower() == "user-agent"), None)
    return {
        "resource": route.resource_path,
        "path": request.path,
        "httpMethod": request.method.upper(),
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters or None,
        "stageVariables": stage_variables or None,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "resourceId": route.method_logical_id,
            "resourcePath": route.resource_path,
            "httpMethod": request.method.upper(),
            "extendedRequestId": request_id,
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(time.time() * 1000),
            "path": f"/{stage}{request.path}",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "user": None,
                "userArn": None,
            },
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


# --- responses ---------------------------------------------------------------------------------


class MalformedProxyResponse(ValueError):
    """The handler's return value is not a valid Lambda proxy response (API Gateway: 502)."""


class ProxyResponse(BaseModel):
    """What a Lambda proxy integration must return; anything else is a 502 on API Gateway."""

    model_config = ConfigDict(extra="forbid")

    statusCode: int
    headers: dict[str, str | int | float | bool] | None = None
    multiValueHeaders: dict[str, list[str | int | float | bool]] | None = None
    body: str | None = None
    isBase64Encoded: StrictBool = False

    @field_validator("statusCode")
    @classmethod
    def _http_status(cls, value: int) -> int:
        if not 100 <= value <= 599:
            raise ValueError(f"statusCode {value} is not an HTTP status")
        return value


def _header_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_proxy_response(payload: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, header pairs, body bytes) from a handler's return value."""
    try:
        response = ProxyResponse.model_validate(payload)
    except ValidationError as exc:
        raise MalformedProxyResponse(str(exc)) from exc
    pairs: list[tuple[str, str]] = []
    multi = response.multiValueHeaders or {}
    for name, values in multi.items():
        pairs.extend((name, _header_value(v)) for v in values)
    lowered = {name.lower() for name in multi}
    for name, value in (response.headers or {}).items():
        if name.lower() not in lowered:
            pairs.append((name, _header_value(value)))
    if response.body is None:
        body = b""
    elif response.isBase64Encoded:
        try:
            body = base64.b64decode(response.body, validate=True)
        except ValueError as exc:
            raise MalformedProxyResponse(f"body is not valid base64: {exc}") from exc
    else:
        body = response.body.encode("utf-8")
    return response.statusCode, pairs, body


def gateway_error(
    status: int, message: str, error_type: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error API Gateway itself produces (not the handler): JSON `{"message": ...}`."""
    body = json.dumps({"message": message}).encode()
    return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)], body
