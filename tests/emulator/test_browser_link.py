"""The Link page in a real browser (Debian's headless Chromium): Authorize lands on the product's
redirect URL with statusCode 200 and links the connection; Cancel lands with 403.

Fails, never skips, without Chromium: `make test` installs it (`make browser-deps`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, sync_playwright

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run `make browser-deps`"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def product() -> Iterator[str]:
    """The product's page the SMB user returns to (on 127.0.0.1, like everything here)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>Back in the product</title><h1>Welcome back</h1>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _connection(emulator, name):
    with emulator.http() as http:
        company = http.post("/companies", json={"name": name}).json()
        connection = http.post(
            f"/companies/{company['id']}/connections", json={"platformKey": "gbol"}
        ).json()
    return company, connection


def _template(product):
    return product + "/done?company={companyId}&connection={connectionId}&statusCode={statusCode}"


def test_authorize_in_a_browser_links_the_connection(emulator, browser, product):
    company, connection = _connection(emulator, "Browser & Co")
    page = browser.new_page()
    try:
        page.goto(connection["linkUrl"] + "?" + urlencode({"redirect": _template(product)}))
        assert "Browser & Co" in page.inner_text("h1")
        assert "Xero" in page.inner_text("h1")
        page.get_by_role("button", name="Authorize access to Xero").click()
        page.wait_for_url(product + "/done**")
        query = parse_qs(urlsplit(page.url).query)
        assert page.inner_text("h1") == "Welcome back"
    finally:
        page.close()
    assert query == {
        "company": [company["id"]],
        "connection": [connection["id"]],
        "statusCode": ["200"],
    }
    linked = emulator.store.get_connection(company["id"], connection["id"])
    assert linked["status"] == "Linked"
    assert sum(emulator.store.count_bills(company["id"], connection["id"]).values()) > 0


def test_cancel_in_a_browser_returns_403(emulator, browser, product):
    company, connection = _connection(emulator, "Cancel Ltd")
    page = browser.new_page()
    try:
        page.goto(connection["linkUrl"] + "?" + urlencode({"redirect": _template(product)}))
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_url(product + "/done**")
        query = parse_qs(urlsplit(page.url).query)
    finally:
        page.close()
    assert query["statusCode"] == ["403"]
    status = emulator.store.get_connection(company["id"], connection["id"])["status"]
    assert status == "PendingAuth"


def test_hosted_link_in_a_browser(emulator, browser):
    with emulator.http() as http:
        company = http.post("/companies", json={"name": "Hosted"}).json()
    page = browser.new_page()
    try:
        page.goto(company["redirect"])
        page.get_by_role("button", name="FreeAgent").click()
        page.wait_for_url("**/connections/**")
        page.get_by_role("button", name="Authorize access to FreeAgent").click()
        page.wait_for_selector("text=Connected")
        text = page.inner_text("main")
    finally:
        page.close()
    assert "Hosted is connected to FreeAgent" in text
    (connection,) = emulator.store.list_connections(company["id"])
    assert connection["status"] == "Linked"
