"""The Link pages an SMB user sees: escaped, accessible, honouring redirect templates, and robust
to unknown ids and bad input. (The browser test drives the same pages in Chromium.)"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from codat_emulator.webhooks import dispatcher_for

REDIRECT = (
    "http://127.0.0.1:9/linked?company={companyId}&connection={connectionId}&status={statusCode}"
)


@pytest.fixture
def pending(emulator):
    with emulator.http() as http:
        company = http.post("/companies", json={"name": 'Fish & <Chips> "Ltd"'}).json()
        connection = http.post(
            f"/companies/{company['id']}/connections", json={"platformKey": "qhyg"}
        ).json()
    return company, connection


def _client(emulator):
    return httpx.Client(base_url=emulator.base_url, timeout=30, follow_redirects=False)


def test_connection_page_shows_company_and_platform_escaped(emulator, pending):
    _company, connection = pending
    with _client(emulator) as browser:
        page = browser.get(connection["linkUrl"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Fish &amp; &lt;Chips&gt; &quot;Ltd&quot;" in page.text
    assert "<Chips>" not in page.text
    assert "QuickBooks Online" in page.text
    assert ">Authorize</button>" in page.text
    assert ">Cancel</button>" in page.text
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no external asset
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_authorize_with_redirect_template_links_and_loads_books(emulator, pending):
    company, connection = pending
    path = urlsplit(connection["linkUrl"]).path
    with _client(emulator) as browser:
        response = browser.post(path, data={"action": "authorize", "redirect": REDIRECT})
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert target.netloc == "127.0.0.1:9"
    assert parse_qs(target.query) == {
        "company": [company["id"]],
        "connection": [connection["id"]],
        "status": ["200"],
    }
    assert emulator.store.get_connection(company["id"], connection["id"])["status"] == "Linked"
    counts = emulator.store.count_bills(company["id"], connection["id"])
    assert sum(counts.values()) > 0
    assert emulator.store.company_info(company["id"], connection["id"])["baseCurrency"] == "USD"
    events = [
        e["eventType"]
        for e in dispatcher_for(emulator.store).events()
        if e["payload"].get("referenceCompany", {}).get("id") == company["id"]
    ]
    assert events == ["connection.created", "connection.connected", "read.completed.initial"]

    # authorizing again changes nothing: no second data set, no second initial read
    with _client(emulator) as browser:
        again = browser.post(path, data={"action": "authorize"})
    assert again.status_code == 200
    assert "Connected" in again.text
    assert emulator.store.count_bills(company["id"], connection["id"]) == counts


def test_cancel_redirects_with_403_and_leaves_pending_auth(emulator, pending):
    company, connection = pending
    with _client(emulator) as browser:
        page = browser.get(connection["linkUrl"], params={"redirect": REDIRECT})
        assert "name='redirect'" in page.text
        response = browser.post(
            urlsplit(connection["linkUrl"]).path, data={"action": "cancel", "redirect": REDIRECT}
        )
    assert response.status_code == 303
    assert parse_qs(urlsplit(response.headers["location"]).query)["status"] == ["403"]
    status = emulator.store.get_connection(company["id"], connection["id"])["status"]
    assert status == "PendingAuth"
    assert sum(emulator.store.count_bills(company["id"], connection["id"]).values()) == 0


def test_cancel_without_redirect_shows_a_result_page(emulator, pending):
    _, connection = pending
    with _client(emulator) as browser:
        response = browser.post(urlsplit(connection["linkUrl"]).path, data={"action": "cancel"})
    assert response.status_code == 200
    assert "Cancelled" in response.text


def test_hosted_link_lets_the_user_choose_a_platform(emulator):
    with emulator.http() as http:
        company = http.post("/companies", json={"name": "Hosted Co"}).json()
    with _client(emulator) as browser:
        page = browser.get(company["redirect"])
        assert page.status_code == 200
        assert "Xero" in page.text
        assert "Zoho Books" in page.text
        chosen = browser.post(urlsplit(company["redirect"]).path, data={"platformKey": "gbol"})
        assert chosen.status_code == 303
        connection_page = browser.get(chosen.headers["location"])
    assert connection_page.status_code == 200
    assert "Xero" in connection_page.text
    (connection,) = emulator.store.list_connections(company["id"])
    assert connection["integrationKey"] == "gbol"
    assert connection["status"] == "PendingAuth"


@pytest.mark.parametrize(
    "path",
    [
        "/link/00000000-0000-0000-0000-000000000000",
        "/link/00000000-0000-0000-0000-000000000000/connections/x",
        "/link/<script>alert(1)</script>",
    ],
)
def test_unknown_ids_get_a_404_page(emulator, path):
    with _client(emulator) as browser:
        response = browser.get(path)
        posted = browser.post(path, data={"action": "authorize"})
    assert response.status_code == 404
    assert "Not found" in response.text
    assert "<script>" not in response.text
    assert posted.status_code == 404


def test_bad_input_gets_a_400_page_and_changes_nothing(emulator, pending):
    company, connection = pending
    path = urlsplit(connection["linkUrl"]).path
    with _client(emulator) as browser:
        evil = browser.get(path, params={"redirect": "javascript:alert(1)"})
        unknown_action = browser.post(path, data={"action": "explode"})
        bad_platform = browser.post(f"/link/{company['id']}", data={"platformKey": "nope"})
        huge = browser.post(path, content=b"action=" + b"a" * 20_000)
    assert evil.status_code == 400
    assert "absolute http or https URL" in evil.text
    assert unknown_action.status_code == 400
    assert bad_platform.status_code == 400
    assert huge.status_code == 400
    assert emulator.store.get_connection(company["id"], connection["id"])["status"] == "PendingAuth"
    assert len(emulator.store.list_connections(company["id"])) == 1
