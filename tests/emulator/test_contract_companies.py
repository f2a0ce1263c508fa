"""Companies, connections and company information through the real SDK."""

from __future__ import annotations

import pytest
from codat_sync_for_payables.models.errors import ErrorMessage

from .conftest import make_linked_company


def test_company_lifecycle_through_the_sdk(emulator, sdk):
    # Given a new company
    created = sdk.companies.create(request={"name": "Lifecycle Ltd", "description": "first"})
    assert created.redirect == f"{emulator.base_url}/link/{created.id}"
    assert created.description == "first"

    # When it is read, listed, replaced and patched
    assert sdk.companies.get(request={"company_id": created.id}).name == "Lifecycle Ltd"
    listed = sdk.companies.list(request={"query": f"id={created.id}"})
    assert [c.id for c in listed.results] == [created.id]
    assert listed.total_results == 1

    replaced = sdk.companies.replace(
        request={
            "company_id": created.id,
            "company_request_body": {"name": "Renamed Ltd", "tags": {"tier": "gold"}},
        }
    )
    assert (replaced.name, replaced.description, replaced.tags) == (
        "Renamed Ltd",
        None,
        {"tier": "gold"},
    )
    patched = sdk.companies.update(
        request={"company_id": created.id, "company_update_request": {"description": "patched"}}
    )
    assert (patched.name, patched.description) == ("Renamed Ltd", "patched")
    tagged = sdk.companies.list(request={"tags": "tier=gold"})
    assert created.id in [c.id for c in tagged.results]

    # Then delete removes it, and a second read is Codat's 404
    sdk.companies.delete(request={"company_id": created.id})
    with pytest.raises(ErrorMessage) as caught:
        sdk.companies.get(request={"company_id": created.id})
    assert caught.value.status_code == 404
    assert caught.value.data.status_code == 404
    assert caught.value.data.correlation_id


def test_company_list_pages_with_links(sdk):
    prefix = "Paging"
    for n in range(5):
        sdk.companies.create(request={"name": f"{prefix} {n}"})
    first = sdk.companies.list(
        request={"page": 1, "page_size": 2, "query": "name~Paging", "order_by": "name"}
    )
    assert [c.name for c in first.results] == ["Paging 0", "Paging 1"]
    assert first.total_results >= 5
    assert first.links.next is not None
    assert first.links.previous is None
    second = sdk.companies.list(
        request={"page": 2, "page_size": 2, "query": "name~Paging", "order_by": "name"}
    )
    assert [c.name for c in second.results] == ["Paging 2", "Paging 3"]
    assert second.links.previous is not None


def test_connection_lifecycle_through_the_sdk(emulator, sdk):
    company = sdk.companies.create(request={"name": "Connections Ltd"})
    connection = sdk.connections.create(
        request={"company_id": company.id, "request_body": {"platform_key": "qhyg"}}
    )
    assert connection.status.value == "PendingAuth"
    assert connection.platform_name == "QuickBooks Online"
    assert (
        connection.link_url == f"{emulator.base_url}/link/{company.id}/connections/{connection.id}"
    )

    listed = sdk.connections.list(request={"company_id": company.id})
    assert [c.id for c in listed.results] == [connection.id]
    assert (
        sdk.companies.get(request={"company_id": company.id}).data_connections[0].id
        == connection.id
    )

    # Linked by the SMB (through Link), then unlinked through the API
    emulator.store.set_connection_status(company.id, connection.id, "Linked")
    fetched = sdk.connections.get(
        request={"company_id": company.id, "connection_id": connection.id}
    )
    assert fetched.status.value == "Linked"
    unlinked = sdk.connections.unlink(
        request={
            "company_id": company.id,
            "connection_id": connection.id,
            "request_body": {"status": "Unlinked"},
        }
    )
    assert unlinked.status.value == "Unlinked"

    sdk.connections.delete(request={"company_id": company.id, "connection_id": connection.id})
    assert sdk.connections.list(request={"company_id": company.id}).results == []
    with pytest.raises(ErrorMessage) as caught:
        sdk.connections.get(request={"company_id": company.id, "connection_id": connection.id})
    assert caught.value.status_code == 404


@pytest.mark.parametrize(
    ("platform_key", "platform_name"),
    [
        ("gbol", "Xero"),
        ("qhyg", "QuickBooks Online"),
        ("fbrh", "FreeAgent"),
        ("akxx", "Oracle NetSuite"),
        ("knfz", "Sage Intacct"),
        ("rwuv", "Zoho Books"),
    ],
)
def test_each_bill_pay_platform_can_be_connected(sdk, platform_key, platform_name):
    company = sdk.companies.create(request={"name": f"{platform_name} user"})
    connection = sdk.connections.create(
        request={"company_id": company.id, "request_body": {"platform_key": platform_key}}
    )
    assert (connection.integration_key, connection.platform_name) == (platform_key, platform_name)


def test_unknown_platform_is_a_404(sdk):
    company = sdk.companies.create(request={"name": "Unknown platform"})
    with pytest.raises(ErrorMessage) as caught:
        sdk.connections.create(
            request={"company_id": company.id, "request_body": {"platform_key": "zzzz"}}
        )
    assert caught.value.status_code == 404
    assert "zzzz" in caught.value.data.error


def test_company_information(emulator, sdk):
    linked = make_linked_company(emulator)
    info = sdk.company_information.get(request=linked.ids)
    assert info.base_currency == "GBP"
    assert info.company_name.startswith("Test SMB")
