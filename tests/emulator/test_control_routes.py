"""The /_emulator control routes: the platform changing on its own (new bills, paid outside,
voided), reads, deauthorization, quota, all behind the API key with Codat's error body."""

from __future__ import annotations

import httpx
import pytest

from codat_emulator.testing import running_emulator


@pytest.fixture
def linked(emulator):
    with emulator.http() as http:
        company = http.post("/companies", json={"name": "Control Co"}).json()
        connection = http.post(
            f"/companies/{company['id']}/connections", json={"platformKey": "gbol"}
        ).json()
        response = http.post(
            f"/_emulator/link/{company['id']}/connections/{connection['id']}",
            json={"action": "authorize", "size": 30},
        )
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["readEvent"] == "read.completed.initial"
    assert body["recordsLoaded"]["bills"] == 30
    assert body["connection"]["status"] == "Linked"
    return company["id"], connection["id"]


def _base(ids):
    company_id, connection_id = ids
    return f"/_emulator/companies/{company_id}/connections/{connection_id}"


def _api(ids):
    company_id, connection_id = ids
    return f"/companies/{company_id}/connections/{connection_id}/payables"


def _open_bills(http, ids):
    response = http.get(f"{_api(ids)}/bills", params={"pageSize": 1000})
    assert response.status_code == 200, response.text
    return {b["id"]: b for b in response.json()["results"] if b["status"] == "Open"}


def test_control_routes_need_the_api_key(emulator, linked):
    with httpx.Client(base_url=emulator.base_url) as anonymous:
        for method, path in [
            ("POST", f"{_base(linked)}/read"),
            ("GET", "/_emulator/webhooks/deliveries"),
            ("POST", "/_emulator/quota"),
            ("POST", f"/_emulator/link/{linked[0]}/connections/{linked[1]}"),
            ("GET", "/_emulator/faults"),
            ("POST", "/_emulator/faults"),
        ]:
            for headers in ({"Authorization": "Basic bm9wZQ=="}, {}):
                response = anonymous.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["statusCode"] == 401
                assert response.json()["service"] == "PublicApi"


def test_link_pages_need_no_api_key_because_the_smb_browser_opens_them(emulator, linked):
    with httpx.Client(base_url=emulator.base_url) as anonymous:
        response = anonymous.get(f"/link/{linked[0]}")
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]


def test_new_bills_appear_in_the_api_and_the_next_read(emulator, linked):
    with emulator.http() as http:
        before = _open_bills(http, linked)
        added = http.post(f"{_base(linked)}/bills", json={"count": 4})
        assert added.status_code == 201, added.text
        new_ids = {b["id"] for b in added.json()["bills"]}
        after = _open_bills(http, linked)
        read = http.post(f"{_base(linked)}/read", json={"dataTypes": ["bills", "suppliers"]})
        again = http.post(f"{_base(linked)}/read", json={"dataTypes": ["bills"]})
    assert len(new_ids) == 4
    assert new_ids <= set(after)
    assert not new_ids & set(before)
    assert read.json()["eventType"] == "read.completed"
    assert read.json()["recordsModified"] == {"bills": 4, "suppliers": 0}
    assert again.json()["recordsModified"] == {"bills": 0}


def test_bill_paid_outside_the_product(emulator, linked):
    with emulator.http() as http:
        bill_id, bill = next(iter(_open_bills(http, linked).items()))
        partial = http.post(f"{_base(linked)}/bills/{bill_id}/pay", json={"amount": 1.5})
        assert partial.status_code == 200, partial.text
        assert partial.json()["status"] == "PartiallyPaid"
        assert partial.json()["amountDue"] == pytest.approx(bill["amountDue"] - 1.5)
        full = http.post(f"{_base(linked)}/bills/{bill_id}/pay")
        assert full.json()["status"] == "Paid"
        assert full.json()["amountDue"] == 0
        # the product's payment on the now-paid bill is refused by the API
        overpay = http.post(f"{_base(linked)}/bills/{bill_id}/pay", json={"amount": 1})
    assert overpay.status_code == 400
    assert overpay.json()["validation"]["errors"]


def test_void_a_bill(emulator, linked):
    with emulator.http() as http:
        bill_id = next(iter(_open_bills(http, linked)))
        voided = http.post(f"{_base(linked)}/bills/{bill_id}/void")
        twice = http.post(f"{_base(linked)}/bills/{bill_id}/void")
        missing = http.post(f"{_base(linked)}/bills/not-a-bill/void")
    assert voided.status_code == 200
    assert voided.json()["status"] == "Void"
    assert voided.json()["amountDue"] == 0
    assert twice.status_code == 400
    assert "Only Open or Draft" in twice.json()["error"]
    assert missing.status_code == 404


def test_deauthorize_blocks_writes_and_reads_fail_with_auth_error(emulator, linked):
    with emulator.http() as http:
        response = http.post(f"{_base(linked)}/deauthorize")
        assert response.json()["status"] == "Deauthorized"
        read = http.post(f"{_base(linked)}/read")
        suppliers = http.get(f"{_api(linked)}/suppliers").json()["results"]
        write = http.post(
            f"{_api(linked)}/suppliers",
            json={"supplierName": "New", "status": "Active"},
        )
        relinked = http.post(
            f"/_emulator/link/{linked[0]}/connections/{linked[1]}", json={"action": "authorize"}
        )
    assert read.json()["status"] == "AuthError"
    assert suppliers  # reading the cache still works
    assert write.status_code == 400
    assert relinked.json()["connection"]["status"] == "Linked"
    assert relinked.json()["readEvent"] is None  # books already read: no second initial read


def test_quota_exhaust_and_reset(emulator, linked):
    company_id, _ = linked
    with emulator.http() as http:
        exhausted = http.post(
            "/_emulator/quota", json={"action": "exhaust", "companyId": company_id}
        )
        refused = http.get(f"/companies/{company_id}")
        reset = http.post("/_emulator/quota", json={"action": "reset", "companyId": company_id})
        allowed = http.get(f"/companies/{company_id}")
    assert exhausted.json()["quotaRemaining"] == 0
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert reset.json()["quotaRemaining"] == reset.json()["dailyQuota"]
    assert allowed.status_code == 200


def test_company_summary_and_dataset_choice(emulator, linked):
    company_id, connection_id = linked
    with emulator.http() as http:
        summary = http.get(f"/_emulator/companies/{company_id}").json()
        chosen = http.put(
            f"/_emulator/companies/{company_id}/dataset", json={"bills": 7, "seed": "s"}
        )
        second = http.post(f"/companies/{company_id}/connections", json={"platformKey": "fbrh"})
        linked_second = http.post(
            f"/_emulator/link/{company_id}/connections/{second.json()['id']}",
            json={"action": "authorize"},
        )
    (entry,) = summary["connections"]
    assert entry["connection"]["id"] == connection_id
    assert sum(entry["bills"].values()) == 30
    assert entry["initialReadDone"] is True
    assert chosen.json() == {"bills": 7, "seed": "s"}
    assert linked_second.json()["recordsLoaded"]["bills"] == 7


def test_link_json_route_cancel_and_fail(emulator):
    with emulator.http() as http:
        company = http.post("/companies", json={"name": "Nope Ltd"}).json()
        connection = http.post(
            f"/companies/{company['id']}/connections", json={"platformKey": "gbol"}
        ).json()
        path = f"/_emulator/link/{company['id']}/connections/{connection['id']}"
        cancelled = http.post(
            path, json={"action": "cancel", "redirect": "http://127.0.0.1:9/r/{statusCode}"}
        )
        failed = http.post(path, json={"action": "fail", "message": "consent refused"})
    assert cancelled.json()["statusCode"] == 403
    assert cancelled.json()["redirectUrl"] == "http://127.0.0.1:9/r/403"
    assert cancelled.json()["connection"]["status"] == "PendingAuth"
    cancel_error, fail_error = failed.json()["connection"]["dataConnectionErrors"]
    # Codat's connection.failed example: a cancel is a 403 "User cancelled linking"
    assert (cancel_error["statusCode"], cancel_error["statusText"]) == (
        "403",
        "User cancelled linking",
    )
    assert (fail_error["statusCode"], fail_error["errorMessage"]) == ("400", "consent refused")
    assert failed.json()["connection"]["status"] == "PendingAuth"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/_emulator/quota", {"action": "explode"}, 400),
        ("/_emulator/quota", {"action": "exhaust", "unknown": 1}, 400),
        ("/_emulator/quota", {"action": "exhaust", "companyId": "missing"}, 404),
        ("/_emulator/link/missing/connections/missing", {"action": "authorize"}, 404),
        ("/_emulator/webhooks/wait", {"timeoutSeconds": -1}, 400),
        ("{base}/bills", {"count": 0}, 400),
        ("{base}/bills", {"count": "many"}, 400),
        ("{base}/read", {"dataTypes": ["invoices!"]}, 400),
        ("{base}/bills/x/pay", {"amount": -5}, 400),
        ("{base}/write-results", {"dataType": "cats"}, 400),
    ],
)
def test_bad_input_gets_codats_error_body(emulator, linked, path, body, status):
    with emulator.http() as http:
        response = http.post(path.format(base=_base(linked)), json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["statusCode"] == status
    assert set(error) >= {"service", "error", "correlationId", "validation", "canBeRetried"}


def test_malformed_json_and_bad_options(emulator, linked):
    with emulator.http() as http:
        broken = http.post(f"{_base(linked)}/read", content=b"{not json")
        bad_option = http.patch("/_emulator/webhooks/options", json={"time_scale": -2})
        unchanged = http.get("/_emulator/webhooks/options").json()
    assert broken.status_code == 400
    assert bad_option.status_code == 400
    assert unchanged["time_scale"] == 1.0


def test_the_config_sets_webhook_delivery_and_link_defaults():
    # Given settings passed as config, the way the CLI passes what it read from the environment
    with (
        running_emulator(
            webhooks={"duplicate": True, "time_scale": 0.25},
            link={"bills": 9, "seed": "config-test"},
        ) as emulator,
        emulator.http() as http,
    ):
        # Then the running dispatcher uses them
        options = http.get("/_emulator/webhooks/options").json()
        assert options["duplicate"] is True
        assert options["time_scale"] == 0.25
        # And Link loads the configured number of bills when the request names no size
        company = http.post("/companies", json={"name": "Configured"}).json()
        connection = http.post(
            f"/companies/{company['id']}/connections", json={"platformKey": "gbol"}
        ).json()
        linked = http.post(
            f"/_emulator/link/{company['id']}/connections/{connection['id']}",
            json={"action": "authorize"},
        )
        assert linked.status_code == 200, linked.text
        assert linked.json()["recordsLoaded"]["bills"] == 9
