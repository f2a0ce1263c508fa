"""The DynamoDB company repository against moto's DynamoDB (in-process: no sockets)."""

from datetime import UTC, datetime

import pytest

from billpay.companies.models import CompanyRecord, CompanyStatus, Signal, Wait, WaitKind
from billpay.companies.repository import DynamoCompanyRepository

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def repository(aws, companies_table):
    return DynamoCompanyRepository(aws("dynamodb"), companies_table)


def _record(**changes) -> CompanyRecord:
    record = CompanyRecord(
        company_id="smb-1",
        name="Acme Ltd",
        status=CompanyStatus.REGISTERED,
        onboarding_execution_arn="arn:aws:states:eu-west-1:123456789012:execution:o:onboard-smb-1",
        created_at=T0,
        updated_at=T0,
    )
    return record.model_copy(update=changes)


def test_create_once_then_read_back_every_field(repository):
    signal = Signal(
        kind=WaitKind.INITIAL_READ,
        event_type="read.completed.initial",
        occurred_at=T0,
        webhook_id="wh-1",
        detail={"dataTypes": {"bills": "Complete"}},
    )
    wait = Wait(kind=WaitKind.AUTHORIZATION, token="t", not_before=T0, armed_at=T0)
    record = _record(
        signals={WaitKind.INITIAL_READ: signal}, wait=wait, data_types={"bills": "Complete"}
    )
    assert repository.create(record) is True
    assert repository.create(_record(name="Other")) is False
    assert repository.get("smb-1") == record
    assert repository.get("smb-2") is None


def test_replace_only_from_the_version_it_read(repository):
    repository.create(_record())
    linked = _record(status=CompanyStatus.PENDING_LINK, version=1)
    assert repository.replace(linked, expected_version=0) is True
    stale = _record(status=CompanyStatus.FAILED, version=1)
    assert repository.replace(stale, expected_version=0) is False
    assert repository.get("smb-1") == linked
