"""Onboarding as the product drives it: input rules, start, register, relink, offboard."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from billpay.codat.errors import CodatNotFoundError, CodatUnavailableError
from billpay.companies.models import CompanyStatus
from billpay.core.errors import ConflictError, NotFoundError
from billpay.onboarding import logic as onboarding
from billpay.onboarding.models import (
    OnboardingTimings,
    RegisterCompany,
    StartOnboarding,
    codat_company_name,
)

from .fakes import FakeCodat, InMemoryCompanies, InMemoryWorkflow

T0 = datetime(2026, 1, 2, tzinfo=UTC)
DEFAULTS = OnboardingTimings(
    reconcile_interval_seconds=3600, link_expiry_seconds=604800, initial_read_timeout_seconds=86400
)
BODY = {"companyId": "smb-1", "name": "Acme Ltd", "platformKey": "gbol"}


def _start(**changes):
    return StartOnboarding.model_validate({**BODY, **changes})


# --- input -------------------------------------------------------------------------------------


def test_start_onboarding_starts_one_execution_named_after_the_company():
    workflow = InMemoryWorkflow()
    started = onboarding.start_onboarding(_start(tags={"tier": "gold"}), workflow)
    assert started.company_id == "smb-1"
    assert started.status_path == "/companies/smb-1"
    assert list(workflow.executions) == ["onboard-smb-1"]
    assert workflow.executions["onboard-smb-1"].input == {**BODY, "tags": {"tier": "gold"}}


def test_repeating_the_same_start_answers_as_before_without_a_second_execution():
    workflow = InMemoryWorkflow()
    first = onboarding.start_onboarding(_start(), workflow)
    again = onboarding.start_onboarding(_start(), workflow)
    assert again == first
    assert len(workflow.executions) == 1


def test_a_start_with_other_details_for_the_same_company_is_a_conflict():
    workflow = InMemoryWorkflow()
    onboarding.start_onboarding(_start(), workflow)
    with pytest.raises(ConflictError, match="different details"):
        onboarding.start_onboarding(_start(platformKey="qhyg"), workflow)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "companyId", "Field required"),
        ({**BODY, "companyId": ""}, "companyId", "pattern"),
        ({**BODY, "companyId": "has space"}, "companyId", "pattern"),
        ({**BODY, "companyId": "a:b"}, "companyId", "pattern"),  # not in an execution name
        ({**BODY, "companyId": "x" * 65}, "companyId", "pattern"),
        ({**BODY, "companyId": 7}, "companyId", "string"),
        ({**BODY, "name": "   "}, "name", "at least 1"),
        ({**BODY, "name": "x" * 201}, "name", "at most 200"),
        ({**BODY, "name": "株式会社"}, "name", "no character Codat accepts"),
        ({**BODY, "platformKey": "xero"}, "platformKey", "unknown platform key 'xero'"),
        ({**BODY, "platformKey": None}, "platformKey", "string"),
        ({**BODY, "redirectUrl": "javascript:alert(1)"}, "redirectUrl", "absolute http"),
        ({**BODY, "tags": {"billpayCompanyId": "x"}}, "tags", "reserved"),
        ({**BODY, "tags": {f"k{n}": "v" for n in range(11)}}, "tags", "at most 10"),
        ({**BODY, "tags": {"bad key": "v"}}, "tags", "pattern"),
        ({**BODY, "extra": 1}, "extra", "Extra inputs"),
    ],
)
def test_bad_start_requests_are_rejected_with_the_field_and_why(body, field, message):
    with pytest.raises(ValidationError) as caught:
        StartOnboarding.model_validate(body)
    errors = caught.value.errors()
    assert any(e["loc"][0] == field and message in e["msg"] for e in errors), errors


def test_the_unknown_platform_message_lists_the_platforms():
    with pytest.raises(ValidationError, match=r"gbol \(Xero\).*rwuv \(Zoho Books\)"):
        _start(platformKey="sage")


@pytest.mark.parametrize(
    ("name", "codat_name"),
    [
        ("Acme Ltd", "Acme Ltd"),
        ("Müller & Söhne GmbH", "Muller & Sohne GmbH"),
        ("Acme (UK) Ltd.", "Acme UK Ltd."),
        ("O\u2019Brien \u2013 Builders", "O'Brien - Builders"),
        ("  Tabs\tand\nlines  ", "Tabs and lines"),
        ("Plus+Minus/Slash", "Plus Minus Slash"),
        ("Ask? Yes! @home, 50%", "Ask? Yes! @home, 50"),
    ],
)
def test_names_are_normalized_to_what_codat_accepts(name, codat_name):
    import re

    from billpay.onboarding.models import CODAT_COMPANY_NAME_PATTERN

    assert codat_company_name(name) == codat_name
    assert re.fullmatch(CODAT_COMPANY_NAME_PATTERN, codat_company_name(name))


# --- register ----------------------------------------------------------------------------------


def _register(arn="arn:exec:1", **input_changes):
    return RegisterCompany(execution_arn=arn, input={**BODY, **input_changes})


def test_register_company_records_the_company_once_with_its_details():
    companies = InMemoryCompanies()
    record, timings = onboarding.register_company(
        _register(redirectUrl="https://app.example/back", tags={"tier": "gold"}),
        companies,
        DEFAULTS,
        now=lambda: T0,
    )
    assert record.status is CompanyStatus.REGISTERED
    assert (record.platform_key, record.redirect_url) == ("gbol", "https://app.example/back")
    assert record.tags == {"tier": "gold"}
    assert record.created_at == T0
    assert companies.items["smb-1"] == record
    assert timings == DEFAULTS


def test_a_retried_register_step_returns_the_record_it_wrote():
    companies = InMemoryCompanies()
    first, _ = onboarding.register_company(_register(), companies, DEFAULTS, now=lambda: T0)
    again, _ = onboarding.register_company(_register(), companies, DEFAULTS)
    assert again == first


def test_register_from_another_execution_is_a_conflict():
    companies = InMemoryCompanies()
    onboarding.register_company(_register("arn:exec:1"), companies, DEFAULTS)
    with pytest.raises(ConflictError):
        onboarding.register_company(_register("arn:exec:2"), companies, DEFAULTS)


@pytest.mark.parametrize("arn", ["arn:exec:1", "arn:exec:2"])
@pytest.mark.parametrize(
    "status", [CompanyStatus.PENDING_LINK, CompanyStatus.READY, CompanyStatus.LINK_EXPIRED]
)
def test_a_start_after_an_earlier_onboarding_finds_the_company_as_it_was(arn, status):
    # Step Functions frees an execution's name 90 days after it ends: the same name again, or
    # another name, runs a second start for a company an earlier start took further.
    companies = InMemoryCompanies()
    first, _ = onboarding.register_company(_register(), companies, DEFAULTS, now=lambda: T0)
    assert not onboarding.started_earlier(_register(), first)
    companies.items["smb-1"] = first.model_copy(update={"status": status})
    command = _register(arn, name="Renamed Ltd")
    record, _ = onboarding.register_company(command, companies, DEFAULTS)
    assert record == companies.items["smb-1"]  # unchanged: not renamed, not re-registered
    assert onboarding.started_earlier(command, record)
    relink = RegisterCompany(execution_arn=arn, input={"companyId": "smb-1", "relink": True})
    assert not onboarding.started_earlier(relink, record)


def test_an_execution_input_may_override_the_timings_within_bounds():
    companies = InMemoryCompanies()
    _, timings = onboarding.register_company(
        _register(timings={"linkExpirySeconds": 30}), companies, DEFAULTS
    )
    assert timings.link_expiry_seconds == 30
    assert timings.reconcile_interval_seconds == DEFAULTS.reconcile_interval_seconds
    with pytest.raises(ValidationError, match="linkExpirySeconds"):
        onboarding.register_company(
            _register("arn:2", companyId="smb-2", timings={"linkExpirySeconds": 0}),
            companies,
            DEFAULTS,
        )


def test_invalid_execution_input_records_nothing():
    companies = InMemoryCompanies()
    with pytest.raises(ValidationError, match="platformKey"):
        onboarding.register_company(_register(platformKey="nope"), companies, DEFAULTS)
    assert companies.items == {}


# --- relink ------------------------------------------------------------------------------------


def _registered(companies, status: CompanyStatus, arn="arn:exec:1"):
    record, _ = onboarding.register_company(_register(arn), companies, DEFAULTS, now=lambda: T0)
    companies.items["smb-1"] = record.model_copy(
        update={
            "status": status,
            "codat_company_id": "codat-1",
            "connection_id": "conn-1",
            "connection_status": "Deauthorized",
            "link_url": "https://link.example/old",
            "link_issued_at": T0,
        }
    )
    return companies.items["smb-1"]


@pytest.mark.parametrize("status", sorted(onboarding.RELINKABLE))
def test_relink_starts_an_execution_per_company_version(status):
    companies, workflow = InMemoryCompanies(), InMemoryWorkflow()
    record = _registered(companies, status)
    started = onboarding.request_relink("smb-1", companies, workflow)
    name = f"relink-smb-1-{record.version}"
    assert started.execution_arn.endswith(f":{name}")
    assert workflow.executions[name].input == {"companyId": "smb-1", "relink": True}
    # The same request again (nothing changed meanwhile) finds the same execution.
    assert onboarding.request_relink("smb-1", companies, workflow) == started
    assert len(workflow.executions) == 1


@pytest.mark.parametrize(
    "status", [CompanyStatus.READY, CompanyStatus.PENDING_LINK, CompanyStatus.OFFBOARDED]
)
def test_relink_is_refused_unless_the_link_is_gone_or_failed(status):
    companies, workflow = InMemoryCompanies(), InMemoryWorkflow()
    _registered(companies, status)
    with pytest.raises(ConflictError, match=f"is {status}"):
        onboarding.request_relink("smb-1", companies, workflow)
    assert workflow.executions == {}


def test_relink_of_an_unknown_company_is_not_found():
    with pytest.raises(NotFoundError):
        onboarding.request_relink("nobody", InMemoryCompanies(), InMemoryWorkflow())


def test_the_relink_execution_claims_the_company_and_forgets_the_old_link():
    companies = InMemoryCompanies()
    _registered(companies, CompanyStatus.NEEDS_RELINK)
    command = RegisterCompany(
        execution_arn="arn:relink:1", input={"companyId": "smb-1", "relink": True}
    )
    record, timings = onboarding.register_company(command, companies, DEFAULTS)
    assert record.status is CompanyStatus.PENDING_LINK
    assert record.onboarding_execution_arn == "arn:relink:1"
    assert (record.link_url, record.link_issued_at) == (None, None)
    assert record.codat_company_id == "codat-1"  # the same Codat company: no second one
    assert timings == DEFAULTS
    # A retried step is fine; a second relink execution is refused.
    assert onboarding.register_company(command, companies, DEFAULTS)[0] == record
    other = RegisterCompany(execution_arn="arn:relink:2", input=command.input)
    with pytest.raises(ConflictError, match="PENDING_LINK"):
        onboarding.register_company(other, companies, DEFAULTS)


# --- offboard ----------------------------------------------------------------------------------


def _linked_company(companies, codat):
    company = codat.create_company("Acme Ltd", {"billpayCompanyId": "smb-1"})
    connection = codat.create_connection(company.id, "gbol")
    codat.set_status(company.id, connection.id, "Linked")
    record = _registered(companies, CompanyStatus.READY)
    companies.items["smb-1"] = record.model_copy(
        update={
            "codat_company_id": company.id,
            "connection_id": connection.id,
            "connection_status": "Linked",
        }
    )
    codat.calls.clear()
    return company, connection


def test_offboarding_unlinks_at_codat_keeps_the_data_and_is_idempotent():
    companies, codat, workflow = InMemoryCompanies(), FakeCodat(), InMemoryWorkflow()
    company, connection = _linked_company(companies, codat)
    record = onboarding.offboard("smb-1", companies, lambda: codat, workflow)
    assert record.status is CompanyStatus.OFFBOARDED
    assert record.connection_status == "Unlinked"
    assert codat.get_connection(company.id, connection.id).status == "Unlinked"
    assert record.codat_company_id == company.id  # the mapping and the data stay
    again = onboarding.offboard("smb-1", companies, lambda: codat, workflow)
    assert again == record
    assert codat.calls.count("unlink_connection") == 1


def test_offboarding_stops_an_onboarding_under_way():
    companies, codat, workflow = InMemoryCompanies(), FakeCodat(), InMemoryWorkflow()
    started = onboarding.start_onboarding(_start(), workflow)
    record, _ = onboarding.register_company(
        RegisterCompany(execution_arn=started.execution_arn, input=BODY), companies, DEFAULTS
    )
    companies.items["smb-1"] = record.model_copy(update={"status": CompanyStatus.PENDING_LINK})
    onboarding.offboard("smb-1", companies, lambda: codat, workflow)
    assert workflow.executions["onboard-smb-1"].status == "ABORTED"
    assert codat.calls == []  # no connection yet: nothing to unlink


def test_offboarding_tolerates_a_connection_codat_no_longer_has():
    companies, codat, workflow = InMemoryCompanies(), FakeCodat(), InMemoryWorkflow()
    _linked_company(companies, codat)
    codat.fail["unlink_connection"] = [CodatNotFoundError("gone", status=404)]
    record = onboarding.offboard("smb-1", companies, lambda: codat, workflow)
    assert record.status is CompanyStatus.OFFBOARDED


def test_offboarding_changes_nothing_when_codat_fails():
    companies, codat, workflow = InMemoryCompanies(), FakeCodat(), InMemoryWorkflow()
    _linked_company(companies, codat)
    before = companies.items["smb-1"]
    codat.fail["unlink_connection"] = [CodatUnavailableError("down", status=503)]
    with pytest.raises(CodatUnavailableError):
        onboarding.offboard("smb-1", companies, lambda: codat, workflow)
    assert companies.items["smb-1"] == before
