"""The local API Gateway: serves a deployed REST API's routes over HTTP on 127.0.0.1.

Routes come from the synthesized template (localcloud.routes); each request becomes a REST proxy
event (payload 1.0) and is invoked through moto's Lambda, so the same runner executes the handler
as for Step Functions tasks. A handler error or malformed response is a 502, an integration that
runs past API Gateway's 29 s limit a 504, an unknown route a 404; never a hang.

Request validators (required parameters, JSON-schema models) answer 400 as API Gateway does. Not
emulated (see docs/local-cloud.md): SigV4 verification for AWS_IAM methods (requests are let
through), Lambda/Cognito authorizers (such routes answer 500), throttling, WAF, usage plans.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from localcloud.deploy import ClientFactory, DeployedStack, Deployment
from localcloud.routes import (
    IncomingRequest,
    MalformedProxyResponse,
    RestApiInfo,
    Route,
    build_proxy_event,
    gateway_error,
    match_route,
    parse_proxy_response,
    rest_apis,
    routes_from_template,
    validate_request,
)

LOG = logging.getLogger(__name__)

INTEGRATION_TIMEOUT_SECONDS = 29.0
_SERVED_AUTHORIZATION = {"NONE", "AWS_IAM"}

Response = tuple[int, list[tuple[str, str]], bytes]


class GatewayError(RuntimeError):
    """The local API cannot be started; the message says why."""


@dataclass(frozen=True)
class ServedApi:
    stack: DeployedStack
    info: RestApiInfo
    api_id: str
    stage: str
    stage_variables: dict[str, str] | None
    routes: list[Route]


def rest_api_ids(deployment: Deployment) -> list[str]:
    """Logical ids of every REST API in the deployment, stacks in deploy order, APIs in template
    order: the first is the one `api_url` means when no API is named."""
    return [
        info.logical_id
        for stack in deployment.stacks.values()
        for info in rest_apis(stack.template)
    ]


def find_api(deployment: Deployment, rest_api: str | None = None) -> ServedApi:
    """The REST API to serve: the only one in the deployment, or the one named (logical id/name)."""
    candidates: list[tuple[DeployedStack, RestApiInfo]] = [
        (stack, info) for stack in deployment.stacks.values() for info in rest_apis(stack.template)
    ]
    if rest_api is not None:
        candidates = [(s, i) for s, i in candidates if rest_api in (i.logical_id, i.name)]
    if len(candidates) != 1:
        names = [f"{s.name}/{i.logical_id} ({i.name})" for s, i in candidates]
        raise GatewayError(
            f"expected exactly one REST API to serve, found {len(candidates)}: {names}; "
            "name one with rest_api="
        )
    stack, info = candidates[0]
    routes = [r for r in routes_from_template(stack.template) if r.rest_api == info.logical_id]
    stage, variables = _stage_of(stack, info.logical_id)
    return ServedApi(
        stack=stack,
        info=info,
        api_id=stack.physical_ids.get(info.logical_id, info.logical_id),
        stage=stage,
        stage_variables=variables,
        routes=routes,
    )


def _stage_of(stack: DeployedStack, api_logical_id: str) -> tuple[str, dict[str, str] | None]:
    for resource in stack.template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if (
            resource["Type"] == "AWS::ApiGateway::Stage"
            and properties.get("RestApiId") == {"Ref": api_logical_id}
            and isinstance(properties.get("StageName"), str)
        ):
            return properties["StageName"], properties.get("Variables")
    return "prod", None


class LocalApi:
    """Routes requests of one REST API to moto's Lambda. `handle` is usable without a socket."""

    def __init__(
        self,
        deployment: Deployment,
        clients: ClientFactory,
        *,
        rest_api: str | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self.deployment = deployment
        self.api = find_api(deployment, rest_api)
        self._lambda = clients("lambda")
        self._timeout = integration_timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="localcloud-integration"
        )
        self.domain_name = "127.0.0.1"
        for route in self.api.routes:
            if route.authorization_type == "AWS_IAM":
                LOG.warning(
                    "%s %s uses AWS_IAM auth: SigV4 is NOT verified by the local API",
                    route.http_method,
                    route.resource_path,
                )
            elif route.authorization_type not in _SERVED_AUTHORIZATION:
                LOG.warning(
                    "%s %s uses %s authorization, which the local API does not emulate: "
                    "it answers 500",
                    route.http_method,
                    route.resource_path,
                    route.authorization_type,
                )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _resolve(self, method: str, path: str) -> tuple[Route, dict[str, str], str] | None:
        matched = match_route(self.api.routes, method, path)
        if matched is not None:
            return matched[0], matched[1], path
        # Clients may keep the AWS URL shape, https://host/<stage>/path.
        prefix = f"/{self.api.stage}"
        if path == prefix or path.startswith(prefix + "/"):
            stripped = path[len(prefix) :] or "/"
            matched = match_route(self.api.routes, method, stripped)
            if matched is not None:
                return matched[0], matched[1], stripped
        return None

    def handle(self, request: IncomingRequest) -> Response:
        resolved = self._resolve(request.method, request.path)
        if resolved is None:
            return gateway_error(
                HTTPStatus.NOT_FOUND,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
            )
        route, path_parameters, path = resolved
        if route.authorization_type not in _SERVED_AUTHORIZATION:
            return gateway_error(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                f"localcloud does not emulate {route.authorization_type} authorizers",
                "AuthorizerConfigurationException",
            )
        if route.validation is not None:
            rejected = validate_request(route.validation, request, path_parameters)
            if rejected is not None:
                return gateway_error(HTTPStatus.BAD_REQUEST, rejected, "BadRequestException")
        if route.mock_response is not None:
            mock = route.mock_response
            return mock.status, list(mock.headers), mock.body
        if route.integration_type != "AWS_PROXY" or route.function_logical_id is None:
            LOG.error(
                "%s %s: only Lambda proxy and MOCK integrations are served", request.method, path
            )
            return gateway_error(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                "Internal server error",
                "InternalServerErrorException",
            )
        request_id = str(uuid.uuid4())
        event = build_proxy_event(
            IncomingRequest(
                request.method,
                path,
                request.headers,
                request.query,
                request.body,
                request.source_ip,
            ),
            route,
            path_parameters,
            stage=self.api.stage,
            request_id=request_id,
            api_id=self.api.api_id,
            account_id=self.deployment.account_id,
            domain_name=self.domain_name,
            binary_media_types=self.api.info.binary_media_types,
            stage_variables=self.api.stage_variables,
        )
        function_name = self.api.stack.physical_ids[route.function_logical_id]
        future = self._pool.submit(self._invoke, function_name, event)
        try:
            response = future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError:
            LOG.error("%s %s: integration timed out after %ss", request.method, path, self._timeout)
            return gateway_error(
                HTTPStatus.GATEWAY_TIMEOUT, "Endpoint request timed out", "IntegrationTimeout"
            )
        status, headers, body = response
        return status, [*headers, ("x-amzn-RequestId", request_id)], body

    def _invoke(self, function_name: str, event: dict[str, Any]) -> Response:
        try:
            result = self._lambda.invoke(FunctionName=function_name, Payload=json.dumps(event))
            payload = result["Payload"].read()
        except Exception:
            LOG.exception("invoking %s failed", function_name)
            return _internal_error()
        if result.get("FunctionError"):
            LOG.error("%s raised: %s", function_name, payload.decode("utf-8", "replace")[:2000])
            return _internal_error()
        try:
            return parse_proxy_response(json.loads(payload))
        except (MalformedProxyResponse, json.JSONDecodeError) as exc:
            LOG.error("%s returned a malformed proxy response: %s", function_name, exc)
            return _internal_error()


def _internal_error() -> Response:
    return gateway_error(
        HTTPStatus.BAD_GATEWAY, "Internal server error", "InternalServerErrorException"
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _GatewayHTTPServer

    def _serve(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        request = IncomingRequest(
            method=self.command,
            path=unquote(url.path) or "/",
            headers=list(self.headers.items()),
            query=parse_qsl(url.query, keep_blank_values=True),
            body=body,
            source_ip=self.client_address[0],
        )
        try:
            status, headers, payload = self.server.local_api.handle(request)
        except Exception:
            LOG.exception("local API failed on %s %s", self.command, self.path)
            status, headers, payload = _internal_error()
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)


class _GatewayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], local_api: LocalApi) -> None:
        self.local_api = local_api
        super().__init__(address, _Handler)


class PortInUseError(GatewayError):
    pass


class GatewayServer:
    """The local API on 127.0.0.1:`port` (0 = any free port), served from a background thread."""

    def __init__(self, local_api: LocalApi, host: str = "127.0.0.1", port: int = 3000) -> None:
        try:
            self._server = _GatewayHTTPServer((host, port), local_api)
        except OSError as exc:
            raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.local_api = local_api
        bound_host, bound_port = self._server.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        local_api.domain_name = f"{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="localcloud-gateway", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> GatewayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.local_api.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
