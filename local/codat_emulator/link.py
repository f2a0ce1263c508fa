"""Codat Link, emulated: the pages an SMB user sees when a product sends them to authorize their
accounting platform, and what authorizing does.

- ``GET /link/{companyId}`` (a company's ``redirect``, hosted Link): choose a platform.
- ``GET /link/{companyId}/connections/{connectionId}`` (a connection's ``linkUrl``): Authorize or
  Cancel. The POST links the connection (``connection.connected``), loads the SMB's seeded books and
  completes the initial read (``read.completed.initial``), then follows the redirect template.

Cancel is ``connection.failed``, as in the example of Codat's platform spec: the connection stays
``PendingAuth`` (the same ``linkUrl`` still works) with a data connection error ``403`` "User
cancelled linking", and the redirect carries ``statusCode=403``. A platform refusing the
authorization (the JSON route's ``fail`` action) is ``connection.failed`` with a ``400``.
"""

from __future__ import annotations

import html
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from codat_emulator.config import EmulatorConfig, LinkSettings
from codat_emulator.redirects import BadRedirect, check_redirect_template, redirect_url
from codat_emulator.seed import MAX_BILLS, DatasetSpec, generate_dataset
from codat_emulator.store import PLATFORMS, NotFound, Store, ValidationFailed
from codat_emulator.webhooks import WebhookDispatcher, dispatcher_for

MAX_FORM_BYTES = 16_384


@dataclass(frozen=True)
class LinkOutcome:
    connection: dict[str, Any]
    status_code: int  # 200 authorized, 403 cancelled (Codat's redirect statusCode)
    records_loaded: dict[str, int]
    read_event: str | None


class LinkService:
    """What Link does to the store, shared by the HTML pages and the JSON control route."""

    def __init__(self, store: Store, dispatcher: WebhookDispatcher, settings: LinkSettings) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self._company_bills: dict[str, int] = {}
        self._company_seeds: dict[str, str] = {}
        self._company_read_errors: dict[str, dict[str, str]] = {}
        # One authorization per connection at a time: a double click must not load twice.
        self._lock = threading.Lock()

    def set_company_dataset(
        self, company_id: str, bills: int | None = None, seed: str | None = None
    ) -> dict[str, Any]:
        self.store.get_company(company_id)  # NotFound for an unknown company
        if bills is not None:
            if not 0 <= bills <= MAX_BILLS:
                raise ValueError(f"bills must be between 0 and {MAX_BILLS}")
            self._company_bills[company_id] = bills
        if seed is not None:
            self._company_seeds[company_id] = seed
        return self.company_dataset(company_id)

    def company_dataset(self, company_id: str) -> dict[str, Any]:
        return {
            "bills": self._company_bills.get(company_id, self.settings.bills),
            "seed": self._company_seeds.get(company_id, self.settings.seed),
        }

    def set_company_read_errors(self, company_id: str, errors: Mapping[str, str]) -> dict[str, str]:
        """Data types whose reads of this company's books end in an error status, from the
        initial read on (an empty mapping clears them)."""
        self.store.get_company(company_id)
        self._company_read_errors[company_id] = dict(errors)
        return self.company_read_errors(company_id)

    def company_read_errors(self, company_id: str) -> dict[str, str]:
        return dict(self._company_read_errors.get(company_id, {}))

    def authorize(
        self,
        company_id: str,
        connection_id: str,
        bills: int | None = None,
        read_errors: Mapping[str, str] | None = None,
    ) -> LinkOutcome:
        with self._lock:
            connection = self.store.get_connection(company_id, connection_id)
            if connection["status"] != "Linked":
                connection = self.store.set_connection_status(company_id, connection_id, "Linked")
            if self.dispatcher.translator.has_read(company_id, connection_id):
                # Re-authorizing a connection whose books are already read changes nothing.
                return LinkOutcome(connection, 200, {}, None)
            loaded = self._load_books(company_id, connection, bills)
            data_types = self.dispatcher.sync_data_types(company_id, initial=True)
            if read_errors is None:
                read_errors = self.company_read_errors(company_id)
            result = self.dispatcher.complete_read(
                company_id, connection_id, data_types, loaded, read_errors
            )
            connection = self.store.get_connection(company_id, connection_id)
            return LinkOutcome(connection, 200, result.records_modified, result.webhook.event_type)

    def _load_books(
        self, company_id: str, connection: Mapping[str, Any], bills: int | None
    ) -> dict[str, int]:
        company = self.store.get_company(company_id)
        chosen = self.company_dataset(company_id)
        spec = DatasetSpec(
            seed=chosen["seed"],
            company_id=company_id,
            platform_key=str(connection["integrationKey"]),
            company_name=str(company["name"]),
            bills=chosen["bills"] if bills is None else bills,
            as_of=self.store.clock().date(),
        )
        dataset = generate_dataset(spec)
        with self.dispatcher.translator.outside_api():
            self.store.load_dataset(company_id, str(connection["id"]), dataset)
        return {
            "bills": len(dataset.bills),
            "suppliers": len(dataset.suppliers),
            "bankAccounts": len(dataset.bank_accounts),
            "chartOfAccounts": len(dataset.accounts),
            "taxRates": len(dataset.tax_rates),
            "company": 1,
        }

    def cancel(self, company_id: str, connection_id: str) -> LinkOutcome:
        connection = self.store.get_connection(company_id, connection_id)
        if connection["status"] == "PendingAuth":
            connection = self.store.fail_connection(
                company_id, connection_id, "User cancelled", "403", "User cancelled linking"
            )
        return LinkOutcome(connection, 403, {}, None)

    def fail(self, company_id: str, connection_id: str, message: str) -> LinkOutcome:
        connection = self.store.fail_connection(company_id, connection_id, message)
        return LinkOutcome(connection, 403, {}, None)


_services: weakref.WeakKeyDictionary[Store, LinkService] = weakref.WeakKeyDictionary()
_services_lock = threading.Lock()


def link_service_for(store: Store, config: EmulatorConfig) -> LinkService:
    with _services_lock:
        service = _services.get(store)
        if service is None:
            service = LinkService(store, dispatcher_for(store, config), config.link)
            _services[store] = service
        return service


# ---------------------------------------------------------------------------------------------
# HTML: no external assets, inline CSS, every value escaped

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f6fb;
color:#1b2430;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.08);padding:2rem;
max-width:28rem;width:100%}
h1{font-size:1.3rem;margin:0 0 .5rem}p{line-height:1.5}.muted{color:#5b6675;font-size:.9rem}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}form{margin:0}
button{font:inherit;padding:.65rem 1.2rem;border-radius:8px;border:2px solid #2d5be3;cursor:pointer}
button.primary{background:#2d5be3;color:#fff}button.secondary{background:#fff;color:#2d5be3}
button:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
ul{list-style:none;padding:0}li{margin:.4rem 0}
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)} · Codat emulator</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(
        document,
        status_code=status,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _error_page(status: int, message: str) -> HTMLResponse:
    title = "Not found" if status == 404 else "Something is wrong with this link"
    return _page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>", status)


def _hidden_redirect(redirect: str | None) -> str:
    if not redirect:
        return ""
    return f"<input type='hidden' name='redirect' value='{html.escape(redirect, quote=True)}'>"


def _connection_page(
    company: Mapping[str, Any], connection: Mapping[str, Any], redirect: str | None
) -> HTMLResponse:
    company_name = html.escape(str(company["name"]))
    platform = html.escape(str(connection["platformName"]))
    status = html.escape(str(connection["status"]))
    action = html.escape(f"/link/{company['id']}/connections/{connection['id']}", quote=True)
    hidden = _hidden_redirect(redirect)
    body = (
        f"<h1>Connect {company_name} to {platform}</h1>"
        f"<p><strong>{company_name}</strong> is asking for read and write access to its"
        f" {platform} books to pay bills.</p>"
        f"<p class='muted'>Connection status: <span id='status'>{status}</span></p>"
        "<div class='actions'>"
        f"<form method='post' action='{action}'>{hidden}"
        "<input type='hidden' name='action' value='authorize'>"
        f"<button type='submit' class='primary' aria-label='Authorize access to {platform}'>"
        "Authorize</button></form>"
        f"<form method='post' action='{action}'>{hidden}"
        "<input type='hidden' name='action' value='cancel'>"
        "<button type='submit' class='secondary'>Cancel</button></form>"
        "</div>"
    )
    return _page(f"Connect to {connection['platformName']}", body)


def _company_page(
    company: Mapping[str, Any], connections: list[dict[str, Any]], redirect: str | None
) -> HTMLResponse:
    company_id = str(company["id"])
    suffix = "?" + urlencode({"redirect": redirect}) if redirect else ""
    items = "".join(
        "<li><a href='"
        + html.escape(f"/link/{company_id}/connections/{c['id']}{suffix}", quote=True)
        + f"'>{html.escape(str(c['platformName']))}</a>"
        f" <span class='muted'>({html.escape(str(c['status']))})</span></li>"
        for c in connections
    )
    existing = f"<h2>Existing connections</h2><ul>{items}</ul>" if items else ""
    buttons = "".join(
        f"<li><button type='submit' name='platformKey' value='{html.escape(key, quote=True)}'"
        f" class='secondary'>{html.escape(name)}</button></li>"
        for key, name in PLATFORMS.items()
    )
    action = html.escape(f"/link/{company_id}", quote=True)
    body = (
        f"<h1>Connect {html.escape(str(company['name']))}</h1>"
        "<p>Choose your accounting software.</p>"
        f"<form method='post' action='{action}'>{_hidden_redirect(redirect)}"
        f"<ul aria-label='Accounting platforms'>{buttons}</ul></form>{existing}"
    )
    return _page(f"Connect {company['name']}", body)


def _result_page(outcome: LinkOutcome, company: Mapping[str, Any]) -> HTMLResponse:
    platform = html.escape(str(outcome.connection["platformName"]))
    name = html.escape(str(company["name"]))
    if outcome.status_code == 200:
        loaded = outcome.records_loaded.get("bills")
        detail = f" {loaded} bills were read." if loaded is not None else ""
        body = f"<h1>Connected</h1><p>{name} is connected to {platform}.{html.escape(detail)}</p>"
    else:
        body = f"<h1>Cancelled</h1><p>{name} was not connected to {platform}.</p>"
    body += "<p class='muted'>You can close this window.</p>"
    return _page("Connected" if outcome.status_code == 200 else "Cancelled", body)


async def _form(request: Request) -> dict[str, str]:
    """URL-encoded form fields (no python-multipart dependency), first value of each."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            raise ValueError("the form is too large")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as error:
        raise ValueError("the form is not UTF-8") from error
    return {k: v[0] for k, v in fields.items()}


def routes(store: Store, config: EmulatorConfig) -> list[BaseRoute]:
    service = link_service_for(store, config)

    def chosen_redirect(value: str | None) -> str | None:
        template = value or service.settings.redirect_template
        if template:
            check_redirect_template(template)
        return template

    async def company_page(request: Request) -> Response:
        company_id = request.path_params["company_id"]
        try:
            redirect = chosen_redirect(request.query_params.get("redirect"))
            company = store.get_company(company_id)
            connections = store.list_connections(company_id)
        except NotFound:
            return _error_page(404, "This link does not match any company.")
        except BadRedirect as error:
            return _error_page(400, str(error))
        if request.method == "GET":
            return _company_page(company, connections, redirect)
        try:
            form = await _form(request)
            redirect = chosen_redirect(form.get("redirect") or redirect)
        except (ValueError, BadRedirect) as error:
            return _error_page(400, str(error))
        platform_key = form.get("platformKey", "")
        if platform_key not in PLATFORMS:
            return _error_page(400, "Choose one of the accounting platforms listed.")
        try:
            connection = store.create_connection(company_id, platform_key, config.base_url)
        except ValidationFailed as error:
            return _error_page(400, str(error))
        except NotFound:
            return _error_page(404, "This link does not match any company.")
        target = f"/link/{company_id}/connections/{connection['id']}"
        if redirect:
            target += "?" + urlencode({"redirect": redirect})
        return RedirectResponse(target, status_code=303)

    async def connection_page(request: Request) -> Response:
        company_id = request.path_params["company_id"]
        connection_id = request.path_params["connection_id"]
        try:
            company = store.get_company(company_id)
            connection = store.get_connection(company_id, connection_id)
            redirect = chosen_redirect(request.query_params.get("redirect"))
        except NotFound:
            return _error_page(404, "This link does not match any company connection.")
        except BadRedirect as error:
            return _error_page(400, str(error))
        if request.method == "GET":
            return _connection_page(company, connection, redirect)
        try:
            form = await _form(request)
            redirect = chosen_redirect(form.get("redirect") or redirect)
        except (ValueError, BadRedirect) as error:
            return _error_page(400, str(error))
        action = form.get("action")
        try:
            if action == "authorize":
                outcome = await run_in_threadpool(service.authorize, company_id, connection_id)
            elif action == "cancel":
                outcome = service.cancel(company_id, connection_id)
            else:
                return _error_page(400, "Choose Authorize or Cancel.")
        except NotFound:
            return _error_page(404, "This link does not match any company connection.")
        if redirect:
            target = redirect_url(redirect, company_id, connection_id, outcome.status_code)
            return RedirectResponse(target, status_code=303)
        return _result_page(outcome, company)

    async def no_such_link(request: Request) -> Response:
        return _error_page(404, "This link does not match any company connection.")

    return [
        Route("/link/{company_id}", company_page, methods=["GET", "POST"]),
        Route(
            "/link/{company_id}/connections/{connection_id}",
            connection_page,
            methods=["GET", "POST"],
        ),
        # Any other path under /link (a mangled or truncated URL) is a page too, not JSON.
        Route("/link/{rest:path}", no_such_link, methods=["GET", "POST"]),
    ]
