"""From Codat's platform API, what an integrator configures as code: webhook consumers and the
data type sync settings (client-wide and per company)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from codat_emulator.api_common import (
    ApiContext,
    api_route,
    json_response,
    parse_json_model,
    read_body,
)
from codat_emulator.api_models import (
    ClientSyncSettingsBody,
    CompanySyncSettingsBody,
    WebhookConsumerBody,
)


def routes(ctx: ApiContext) -> list[BaseRoute]:
    store = ctx.store
    max_body = ctx.config.limits.max_json_body_bytes

    async def list_consumers(request: Request) -> Response:
        return json_response({"results": store.list_webhook_consumers()})

    async def create_consumer(request: Request) -> Response:
        body = parse_json_model(await read_body(request, max_body), WebhookConsumerBody)
        consumer = store.create_webhook_consumer(
            body.url, body.event_types, bool(body.disabled), body.company_tags
        )
        return json_response(consumer, 201)

    async def delete_consumer(request: Request) -> Response:
        store.delete_webhook_consumer(request.path_params["webhookId"])
        return Response(status_code=204)

    async def get_client_settings(request: Request) -> Response:
        return json_response(store.client_sync_settings())

    async def set_client_settings(request: Request) -> Response:
        body = parse_json_model(await read_body(request, max_body), ClientSyncSettingsBody)
        store.set_client_sync_settings(
            [s.as_json() for s in body.settings], body.overrides_defaults
        )
        return Response(status_code=204)

    async def get_company_settings(request: Request) -> Response:
        return json_response(store.company_sync_settings(request.path_params["companyId"]))

    async def set_company_settings(request: Request) -> Response:
        company_id = request.path_params["companyId"]
        store.get_company(company_id)
        body = parse_json_model(await read_body(request, max_body), CompanySyncSettingsBody)
        store.set_company_sync_settings(
            company_id, [s.as_json() for s in body.settings], body.overrides_defaults
        )
        return Response(status_code=204)

    return [
        api_route(ctx, "/webhooks", list_consumers, ["GET"]),
        api_route(ctx, "/webhooks", create_consumer, ["POST"]),
        api_route(ctx, "/webhooks/{webhookId}", delete_consumer, ["DELETE"]),
        api_route(ctx, "/profile/syncSettings", get_client_settings, ["GET"]),
        api_route(ctx, "/profile/syncSettings", set_client_settings, ["POST"]),
        api_route(ctx, "/companies/{companyId}/syncSettings", get_company_settings, ["GET"]),
        api_route(ctx, "/companies/{companyId}/syncSettings", set_company_settings, ["POST"]),
    ]
