from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from billpay.companies.models import CompanyStatus
from billpay.core.errors import ConflictError
from billpay.onboarding import logic as onboarding
from billpay.onboarding.models import RegisterCompany, StartOnboarding

from .fakes import InMemoryCompanies, InMemoryWorkflow


def _start(company_id="smb-1", name="Acme Ltd"):
    return StartOnboarding.model_validate({"companyId": company_id, "name": name})


def test_start_onboarding_starts_one_execution_named_after_the_company():
    workflow = InMemoryWorkflow()
    started = onboarding.start_onboarding(_start(), workflow)
    assert started.company_id == "smb-1"
    assert list(workflow.executions) == ["onboard-smb-1"]
    assert workflow.executions["onboard-smb-1"].input == {"companyId": "smb-1", "name": "Acme Ltd"}


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
        onboarding.start_onboarding(_start(name="Other Ltd"), workflow)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"companyId": "smb-1"},
        {"companyId": "", "name": "x"},
        {"companyId": "has space", "name": "x"},
        {"companyId": "a:b", "name": "x"},  # not allowed in an execution name
        {"companyId": "x" * 65, "name": "x"},
        {"companyId": "smb-1", "name": "   "},
        {"companyId": "smb-1", "name": "x", "extra": 1},
        {"companyId": 7, "name": "x"},
    ],
)
def test_bad_start_requests_are_rejected(body):
    with pytest.raises(ValidationError):
        StartOnboarding.model_validate(body)


def _register(arn="arn:exec:1"):
    return RegisterCompany.model_validate(
        {"companyId": "smb-1", "name": "Acme Ltd", "executionArn": arn}
    )


def test_register_company_records_the_company_once():
    companies = InMemoryCompanies()
    at = datetime(2026, 1, 2, tzinfo=UTC)
    record = onboarding.register_company(_register(), companies, now=at)
    assert record.status is CompanyStatus.REGISTERED
    assert record.created_at == at
    assert companies.items["smb-1"] == record


def test_a_retried_register_step_returns_the_record_it_wrote():
    companies = InMemoryCompanies()
    first = onboarding.register_company(
        _register(), companies, now=datetime(2026, 1, 2, tzinfo=UTC)
    )
    again = onboarding.register_company(
        _register(), companies, now=datetime(2026, 1, 3, tzinfo=UTC)
    )
    assert again == first


def test_register_from_another_execution_is_a_conflict():
    companies = InMemoryCompanies()
    onboarding.register_company(_register("arn:exec:1"), companies)
    with pytest.raises(ConflictError):
        onboarding.register_company(_register("arn:exec:2"), companies)
