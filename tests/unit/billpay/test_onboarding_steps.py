"""The state machine's steps over in-memory ports: each is safe to run again, and Codat's
failures leave exactly one Codat company and one connection behind."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from billpay.codat.errors import (
    CodatRejectedError,
    CodatStillSyncingError,
    CodatUnavailableError,
)
from billpay.companies.logic import record_signal
from billpay.companies.models import CompanyStatus, InvalidTransitionError, Signal, WaitKind
from billpay.onboarding import logic, steps
from billpay.onboarding.models import OnboardingTimings, RecordFailure, RegisterCompany

from .fakes import FakeCodat, InMemoryCompanies, RecordingPublisher, RecordingResumer

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:onboarding:onboard-smb-1"
TIMINGS = OnboardingTimings(
    reconcile_interval_seconds=60, link_expiry_seconds=3600, initial_read_timeout_seconds=600
)


def _clock(at: datetime = T0):
    return lambda: at


@pytest.fixture
def companies():
    repository = InMemoryCompanies()
    logic.register_company(
        RegisterCompany(
            execution_arn=EXECUTION,
            input={
                "companyId": "smb-1",
                "name": "Müller (UK) Ltd",
                "platformKey": "gbol",
                "tags": {"tier": "gold"},
            },
        ),
        repository,
        TIMINGS,
        now=_clock(),
    )
    return repository


@pytest.fixture
def codat():
    return FakeCodat()


@pytest.fixture
def events():
    return RecordingPublisher()


def _linked(companies, codat, events):
    steps.create_codat_company("smb-1", companies, codat)
    return steps.create_connection("smb-1", EXECUTION, companies, codat, events, _clock())


# --- the Codat company ---------------------------------------------------------------------


def test_the_codat_company_is_created_once_tagged_with_the_products_id(companies, codat):
    record = steps.create_codat_company("smb-1", companies, codat)
    (company,) = codat.companies.values()
    assert record.codat_company_id == company.id
    assert company.name == "Muller UK Ltd"  # normalized for Codat; the record keeps the original
    assert record.name == "Müller (UK) Ltd"
    assert company.tags == {"tier": "gold", "billpayCompanyId": "smb-1"}
    # Run again (a retried step): nothing new at Codat
    assert steps.create_codat_company("smb-1", companies, codat) == record
    assert codat.calls == ["create_company"]


@pytest.mark.parametrize(
    ("failure", "created"),
    [
        ("fail", False),  # a 500 before Codat did anything
        ("applied_then_fail", True),  # an ambiguous 500: Codat created it, then failed
    ],
)
def test_after_a_failed_create_the_retry_finds_or_creates_exactly_one(
    companies, codat, failure, created
):
    error = CodatUnavailableError("create company: Codat answered 500", status=500)
    if failure == "fail":
        codat.fail["create_company"] = [error]
    else:
        codat.applied_then_fail["create_company"] = error
    with pytest.raises(CodatUnavailableError):
        steps.create_codat_company("smb-1", companies, codat)
    assert len(codat.companies) == int(created)
    # The workflow retries the step: it looks the company up by its tag before creating
    record = steps.create_codat_company("smb-1", companies, codat)
    assert len(codat.companies) == 1
    assert record.codat_company_id == next(iter(codat.companies))
    lookup = ["create_company", "find_company_by_tag"]
    assert codat.calls == (lookup if created else [*lookup, "create_company"])


# --- the connection and LinkReady ----------------------------------------------------------


def test_the_connection_gives_the_link_url_and_link_ready_is_published(companies, codat, events):
    record = _linked(companies, codat, events)
    assert record.status is CompanyStatus.PENDING_LINK
    assert record.connection_status == "PendingAuth"
    assert record.link_issued_at == T0
    (ready,) = events.events
    assert ready.DETAIL_TYPE == "LinkReady"
    detail = ready.detail()
    assert detail["linkUrl"] == record.link_url
    assert detail["companyId"] == "smb-1"
    assert detail["codatCompanyId"] == record.codat_company_id
    assert detail["eventId"] == f"onboard-smb-1:link-ready:{record.connection_id}"


def test_a_retried_connection_step_reuses_the_pending_connection(companies, codat, events):
    steps.create_codat_company("smb-1", companies, codat)
    codat.applied_then_fail["create_connection"] = CodatUnavailableError("timeout")
    with pytest.raises(CodatUnavailableError):
        steps.create_connection("smb-1", EXECUTION, companies, codat, events, _clock())
    record = steps.create_connection("smb-1", EXECUTION, companies, codat, events, _clock())
    (connection,) = codat.connections[record.codat_company_id]
    assert record.connection_id == connection.id
    # And once recorded, running it again only republishes the same event (consumers dedupe)
    again = steps.create_connection("smb-1", EXECUTION, companies, codat, events, _clock())
    assert again == record
    assert {e.event_id for e in events.events} == {events.events[0].event_id}


# --- waits and reconciling -----------------------------------------------------------------


def _signal(kind, at, detail, event_type="connection.connected"):
    return Signal(
        kind=kind, event_type=event_type, occurred_at=at, webhook_id=f"wh-{at}", detail=detail
    )


def test_a_webhook_before_the_wait_resumes_it_at_once(companies, codat, events):
    record = _linked(companies, codat, events)
    resumer = RecordingResumer()
    detail = {"connectionId": record.connection_id, "outcome": "linked"}
    record_signal(
        companies, resumer, "smb-1", _signal(WaitKind.AUTHORIZATION, T0 + timedelta(1), detail)
    )
    outcome = steps.wait_for(
        "smb-1", WaitKind.AUTHORIZATION, "token-1", companies, resumer, _clock()
    )
    assert outcome.delivered is not None
    assert resumer.resumed["token-1"]["detail"]["outcome"] == "linked"


def test_the_wait_is_for_this_link_only(companies, codat, events):
    record = _linked(companies, codat, events)
    resumer = RecordingResumer()
    steps.wait_for("smb-1", WaitKind.AUTHORIZATION, "token-1", companies, resumer, _clock())
    wait = companies.items["smb-1"].wait
    assert wait is not None
    assert (wait.not_before, wait.connection_id) == (T0, record.connection_id)


@pytest.mark.parametrize(
    ("status", "age", "outcome"),
    [
        ("Linked", 10, "linked"),
        ("PendingAuth", 10, "pending"),
        ("PendingAuth", 3600, "expired"),
        ("Deauthorized", 10, "failed"),
    ],
)
def test_reconciling_the_authorization_reads_the_connection_once(
    companies, codat, events, status, age, outcome
):
    record = _linked(companies, codat, events)
    codat.set_status(record.codat_company_id, record.connection_id, status)
    codat.calls.clear()
    at = T0 + timedelta(seconds=age)
    answer = steps.reconcile_authorization("smb-1", TIMINGS, companies, codat, _clock(at))
    assert codat.calls == ["get_connection"]
    assert answer["kind"] == "authorization"
    assert answer["eventType"] == "reconcile"
    assert answer["detail"]["outcome"] == outcome
    assert answer["detail"]["connectionStatus"] == status
    assert (answer["detail"]["reason"] is None) == (outcome in ("linked", "pending"))
    assert companies.items["smb-1"].connection_status == status


@pytest.mark.parametrize(
    ("ready", "age", "outcome"),
    [(True, 10, "complete"), (False, 10, "pending"), (False, 600, "timedOut")],
)
def test_reconciling_the_initial_read_asks_whether_the_books_are_readable(
    companies, codat, events, ready, age, outcome
):
    _linked(companies, codat, events)
    codat.read_ready = ready
    answer = steps.reconcile_initial_read(
        "smb-1", T0, TIMINGS, companies, codat, _clock(T0 + timedelta(seconds=age))
    )
    assert answer["kind"] == "initialRead"
    assert answer["detail"]["outcome"] == outcome


# --- what the waits brought ----------------------------------------------------------------


def _authorized(companies, codat, events):
    record = _linked(companies, codat, events)
    detail = {"connectionId": record.connection_id, "connectionStatus": "Linked"}
    signal = _signal(WaitKind.AUTHORIZATION, T0, {**detail, "outcome": "linked"})
    return steps.record_authorization("smb-1", signal.model_dump(by_alias=True), companies)


def _initial_read(record, data_types):
    """The `read.completed.initial` signal for the company's connection, as the wait receives it."""
    signal = _signal(
        WaitKind.INITIAL_READ,
        T0,
        {"connectionId": record.connection_id, "dataTypes": data_types},
        "read.completed.initial",
    )
    return signal.model_dump(by_alias=True)


def test_authorization_moves_the_company_to_linked(companies, codat, events):
    record = _authorized(companies, codat, events)
    assert (record.status, record.connection_status) == (CompanyStatus.LINKED, "Linked")


def test_the_initial_read_records_every_data_type(companies, codat, events):
    record = _authorized(companies, codat, events)
    data_types = {"bills": "Complete", "suppliers": "Complete", "paymentMethods": "FetchError"}
    read = steps.record_initial_read("smb-1", _initial_read(record, data_types), companies)
    # paymentMethods is not one Bill Pay needs: recorded, not fatal
    assert read.status is CompanyStatus.INITIAL_READ
    assert read.data_types == data_types


def test_a_needed_data_type_in_error_fails_onboarding_with_the_reason(companies, codat, events):
    record = _authorized(companies, codat, events)
    data_types = {"bills": "AuthError", "suppliers": "Complete", "bankAccounts": "FetchError"}
    with pytest.raises(
        steps.RequiredDataTypeFailed, match=r"bankAccounts \(FetchError\), bills \(AuthError\)"
    ):
        steps.record_initial_read("smb-1", _initial_read(record, data_types), companies)
    assert companies.items["smb-1"].data_types == data_types


def test_loading_the_company_data_propagates_still_syncing_for_the_workflow_to_retry(
    companies, codat, events
):
    _authorized(companies, codat, events)
    codat.fail["read_company_data"] = [CodatStillSyncingError("409", status=409)]
    with pytest.raises(CodatStillSyncingError):
        steps.load_company_data("smb-1", companies, codat)
    assert steps.load_company_data("smb-1", companies, codat).suppliers.count == 3


def test_ready_is_only_reachable_after_the_initial_read(companies, codat, events):
    _authorized(companies, codat, events)
    with pytest.raises(InvalidTransitionError, match="LINKED to READY"):
        steps.mark_ready("smb-1", EXECUTION, {}, companies, events)


def test_mark_ready_publishes_company_ready(companies, codat, events):
    record = _authorized(companies, codat, events)
    steps.record_initial_read("smb-1", _initial_read(record, {"bills": "Complete"}), companies)
    ready = steps.mark_ready("smb-1", EXECUTION, {"suppliers": {"count": 3}}, companies, events)
    assert ready.status is CompanyStatus.READY
    (event,) = events.of_type("CompanyReady")
    assert event.detail()["eventId"] == "onboard-smb-1:ready"
    assert event.detail()["companyData"] == {"suppliers": {"count": 3}}


# --- failures ------------------------------------------------------------------------------


def _caught(error: Exception) -> dict:
    """Step Functions' Catch output for a Lambda that raised `error`."""
    payload = {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []}
    return {"Error": type(error).__name__, "Cause": json.dumps(payload)}


def test_a_codat_rejection_is_recorded_with_its_correlation_id(companies, events):
    rejected = CodatRejectedError(
        "create company: Codat answered 400: bad name", status=400, correlation_id="corr-7"
    )
    command = RecordFailure(
        company_id="smb-1", execution_arn=EXECUTION, status="FAILED", error=_caught(rejected)
    )
    record = steps.record_failure(command, companies, events, _clock())
    assert record.status is CompanyStatus.FAILED
    assert record.last_error is not None
    assert record.last_error.code == "CodatRejectedError"
    assert record.last_error.message == "create company: Codat answered 400: bad name"
    assert record.last_error.correlation_id == "corr-7"
    (failed,) = events.of_type("OnboardingFailed")
    assert failed.detail()["correlationId"] == "corr-7"
    assert failed.detail()["status"] == "FAILED"


def test_any_other_task_error_is_recorded_as_it_was_raised(companies, events):
    command = RecordFailure(
        company_id="smb-1",
        execution_arn=EXECUTION,
        status="FAILED",
        error=_caught(steps.RequiredDataTypeFailed("Codat's initial read failed for bills")),
    )
    record = steps.record_failure(command, companies, events, _clock())
    assert record.last_error is not None
    assert record.last_error.code == "RequiredDataTypeFailed"
    assert record.last_error.message == "Codat's initial read failed for bills"
    assert record.last_error.correlation_id is None


@pytest.mark.parametrize(
    ("status", "detail", "code"),
    [
        ("LINK_FAILED", {"outcome": "failed", "reason": "user refused"}, "LinkFailed"),
        ("LINK_EXPIRED", {"outcome": "expired", "reason": "not used"}, "LinkExpired"),
    ],
)
def test_a_link_that_failed_or_expired_is_recorded_with_the_reason(
    companies, codat, events, status, detail, code
):
    _linked(companies, codat, events)
    command = RecordFailure(
        company_id="smb-1", execution_arn=EXECUTION, status=status, detail=detail
    )
    record = steps.record_failure(command, companies, events, _clock())
    assert record.status == status
    assert record.last_error is not None
    assert (record.last_error.code, record.last_error.message) == (code, detail["reason"])


def test_an_offboarded_company_stays_offboarded(companies, events):
    companies.items["smb-1"] = companies.items["smb-1"].model_copy(
        update={"status": CompanyStatus.OFFBOARDED}
    )
    command = RecordFailure(
        company_id="smb-1", execution_arn=EXECUTION, status="FAILED", error=_caught(ValueError())
    )
    assert steps.record_failure(command, companies, events).status is CompanyStatus.OFFBOARDED
    assert events.events == []


def test_a_failure_after_ready_leaves_the_company_ready_and_publishes_nothing(
    companies, codat, events
):
    # MarkReady wrote READY and published CompanyReady, then its task timed out: the Catch
    # runs RecordFailure for an onboarding that is done.
    record = _authorized(companies, codat, events)
    steps.record_initial_read("smb-1", _initial_read(record, {"bills": "Complete"}), companies)
    ready = steps.mark_ready("smb-1", EXECUTION, {}, companies, events)
    published = list(events.events)
    timed_out = {"Error": "States.Timeout", "Cause": "States.Timeout"}
    command = RecordFailure(
        company_id="smb-1", execution_arn=EXECUTION, status="FAILED", error=timed_out
    )
    record = steps.record_failure(command, companies, events, _clock())
    assert record == ready
    assert companies.items["smb-1"] == ready
    assert record.last_error is None
    assert events.events == published  # CompanyReady once, no OnboardingFailed
