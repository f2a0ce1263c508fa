"""Companies and connections: ``/companies`` and ``/companies/{companyId}/connections``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from codat_emulator.api_common import (
    ApiContext,
    api_route,
    json_response,
    parse_json_model,
    parse_query,
    read_body,
)
from codat_emulator.api_models import CompanyBody, CompanyPatchBody, ConnectionBody, UnlinkBody
from codat_emulator.errors import ApiError
from codat_emulator.paging import page_request, paged_body
from codat_emulator.query import And, Comparison, Node, evaluate
from codat_emulator.store import ValidationItem

COMPANY_FIELD_TYPES = {"created": "date", "lastsync": "date"}
CONNECTION_FIELD_TYPES = {"created": "date", "lastsync": "date"}


TAG_OPERATORS = ("=", "!=", "~")


def _tags_filter(raw: str) -> Node:
    """Codat's ``tags`` filter: its query language over the tags, with ``=``, ``!=`` and ``~``
    (contains), e.g. ``uid = 335a086e`` or ``region=uk && team=invoice-finance``."""
    node = parse_query(raw)
    if node is None:
        raise ApiError(400, "The tags filter is empty.", [ValidationItem("Empty.", "tags")])
    bad = sorted({op for op in _operators(node) if op not in TAG_OPERATORS})
    if bad:
        raise ApiError(
            400,
            f"The tags filter supports {', '.join(TAG_OPERATORS)}, not {', '.join(bad)}.",
            [ValidationItem(raw, "tags")],
        )
    return node


def _operators(node: Node) -> set[str]:
    if isinstance(node, Comparison):
        return {node.op}
    return set().union(*(_operators(part) for part in node.parts))


def _tags_match(node: Node, tags: dict[str, str]) -> bool:
    """Tag keys and values compare exactly (Codat: company tags are case-sensitive)."""
    if isinstance(node, Comparison):
        value = tags.get(".".join(node.path))
        if node.op == "~":
            return value is not None and node.value in value
        return (value == node.value) == (node.op == "=")
    if isinstance(node, And):
        return all(_tags_match(part, tags) for part in node.parts)
    return any(_tags_match(part, tags) for part in node.parts)


def _order(items: list[dict[str, Any]], order_by: str | None) -> list[dict[str, Any]]:
    if not order_by:
        return items
    descending = order_by.startswith("-")
    field = order_by.lstrip("-")
    if not field.isidentifier():
        raise ApiError(400, "Malformed orderBy.", [ValidationItem(f"'{order_by}'", "orderBy")])
    present = [i for i in items if i.get(field) is not None]
    missing = [i for i in items if i.get(field) is None]
    present.sort(key=lambda i: str(i[field]).casefold(), reverse=descending)
    return present + missing


def _listing(
    request: Request, ctx: ApiContext, items: list[dict[str, Any]], types: dict[str, str]
) -> Response:
    params = request.query_params
    paging = page_request(params, ctx.config.limits.companies_max_page_size)
    query = params.get("query")
    node = parse_query(query, types)
    if node is not None:
        items = [i for i in items if evaluate(node, i)]
    items = _order(items, params.get("orderBy"))
    return json_response(paged_body(items, paging, request.url.path, query))


def routes(ctx: ApiContext) -> list[BaseRoute]:
    store, config = ctx.store, ctx.config
    max_body = config.limits.max_json_body_bytes

    async def list_companies(request: Request) -> Response:
        items = store.list_companies()
        tags = request.query_params.get("tags")
        if tags is not None:
            node = _tags_filter(tags)
            items = [i for i in items if _tags_match(node, i["tags"])]
        return _listing(request, ctx, items, COMPANY_FIELD_TYPES)

    async def create_company(request: Request) -> Response:
        body = parse_json_model(await read_body(request, max_body), CompanyBody)
        return json_response(
            store.create_company(body.name, config.base_url, body.description, body.tags)
        )

    async def get_company(request: Request) -> Response:
        return json_response(store.get_company(request.path_params["companyId"]))

    async def replace_company(request: Request) -> Response:
        company_id = request.path_params["companyId"]
        store.get_company(company_id)  # 404 before 400, as Codat answers
        body = parse_json_model(await read_body(request, max_body), CompanyBody)
        return json_response(
            store.replace_company(company_id, body.name, body.description, body.tags)
        )

    async def update_company(request: Request) -> Response:
        company_id = request.path_params["companyId"]
        store.get_company(company_id)
        body = parse_json_model(await read_body(request, max_body), CompanyPatchBody)
        return json_response(
            store.update_company(company_id, body.name, body.description, body.tags)
        )

    async def delete_company(request: Request) -> Response:
        store.delete_company(request.path_params["companyId"])
        return Response(status_code=204)

    async def list_connections(request: Request) -> Response:
        items = store.list_connections(request.path_params["companyId"])
        return _listing(request, ctx, items, CONNECTION_FIELD_TYPES)

    async def create_connection(request: Request) -> Response:
        company_id = request.path_params["companyId"]
        store.get_company(company_id)
        body = parse_json_model(await read_body(request, max_body), ConnectionBody)
        return json_response(
            store.create_connection(company_id, body.platform_key, config.base_url)
        )

    async def get_connection(request: Request) -> Response:
        p = request.path_params
        return json_response(store.get_connection(p["companyId"], p["connectionId"]))

    async def unlink_connection(request: Request) -> Response:
        p = request.path_params
        store.get_connection(p["companyId"], p["connectionId"])
        parse_json_model(await read_body(request, max_body), UnlinkBody)
        return json_response(
            store.set_connection_status(p["companyId"], p["connectionId"], "Unlinked")
        )

    async def delete_connection(request: Request) -> Response:
        p = request.path_params
        store.delete_connection(p["companyId"], p["connectionId"])
        return Response(status_code=200)

    company = "/companies/{companyId}"
    connection = company + "/connections/{connectionId}"
    return [
        api_route(ctx, "/companies", list_companies, ["GET"]),
        api_route(ctx, "/companies", create_company, ["POST"]),
        api_route(ctx, company, get_company, ["GET"]),
        api_route(ctx, company, replace_company, ["PUT"]),
        api_route(ctx, company, update_company, ["PATCH"]),
        api_route(ctx, company, delete_company, ["DELETE"]),
        api_route(ctx, company + "/connections", list_connections, ["GET"]),
        api_route(ctx, company + "/connections", create_connection, ["POST"]),
        api_route(ctx, connection, get_connection, ["GET"]),
        api_route(ctx, connection, unlink_connection, ["PATCH"]),
        api_route(ctx, connection, delete_connection, ["DELETE"]),
    ]
