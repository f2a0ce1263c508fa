"""The company aggregate: allowed transitions, conditional writes, and signals meeting waits."""

from datetime import UTC, datetime, timedelta

import pytest

from billpay.companies import logic
from billpay.companies.models import (
    ALLOWED_TRANSITIONS,
    CompanyRecord,
    CompanyStatus,
    InvalidTransitionError,
    Signal,
    Wait,
    WaitKind,
)
from billpay.core.errors import NotFoundError

from .fakes import InMemoryCompanies, RecordingResumer

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _company(companies: InMemoryCompanies, company_id: str = "smb-1") -> CompanyRecord:
    record = CompanyRecord(
        company_id=company_id,
        name="Acme Ltd",
        status=CompanyStatus.PENDING_LINK,
        onboarding_execution_arn="arn:aws:states:eu-west-1:123456789012:execution:o:onboard-smb-1",
        created_at=T0,
        updated_at=T0,
        link_issued_at=T0,
    )
    assert companies.create(record)
    return record


def _signal(at: datetime, webhook_id: str = "wh-1", status: str = "Linked") -> Signal:
    return Signal(
        kind=WaitKind.AUTHORIZATION,
        event_type="connection.connected",
        occurred_at=at,
        webhook_id=webhook_id,
        detail={"connectionStatus": status},
    )


def _wait(task_token: str = "token-1", not_before: datetime = T0) -> Wait:
    return Wait(kind=WaitKind.AUTHORIZATION, token=task_token, not_before=not_before, armed_at=T0)


def test_every_status_has_its_transitions_and_offboarded_is_final():
    assert set(ALLOWED_TRANSITIONS) == set(CompanyStatus)
    assert ALLOWED_TRANSITIONS[CompanyStatus.OFFBOARDED] == frozenset()


def test_a_transition_outside_the_table_is_refused_and_staying_put_is_allowed():
    companies = InMemoryCompanies()
    record = _company(companies)
    assert record.moved_to(CompanyStatus.PENDING_LINK) == record
    assert record.moved_to(CompanyStatus.LINKED).status is CompanyStatus.LINKED
    with pytest.raises(InvalidTransitionError, match="PENDING_LINK to READY"):
        record.moved_to(CompanyStatus.READY)


def test_update_bumps_the_version_and_leaves_an_unchanged_record_alone():
    companies = InMemoryCompanies()
    _company(companies)
    updated = logic.update_company(
        companies, "smb-1", lambda r: r.moved_to(CompanyStatus.LINKED), now=lambda: T0
    )
    assert (updated.status, updated.version) == (CompanyStatus.LINKED, 1)
    same = logic.update_company(companies, "smb-1", lambda r: None)
    assert same.version == 1


def test_update_retries_when_another_writer_got_there_first():
    # Given a writer that lands between our read and our write, once
    companies = InMemoryCompanies()
    _company(companies)
    interfered = []

    def change(record: CompanyRecord) -> CompanyRecord:
        if not interfered:
            interfered.append(True)
            other = record.model_copy(update={"connection_status": "Linked", "version": 1})
            companies.items["smb-1"] = other
        return record.moved_to(CompanyStatus.LINKED)

    # When we update, Then our change is applied on top of theirs, not over it
    updated = logic.update_company(companies, "smb-1", change)
    assert updated.connection_status == "Linked"
    assert updated.status is CompanyStatus.LINKED
    assert updated.version == 2


def test_update_of_an_unknown_company_is_not_found():
    with pytest.raises(NotFoundError):
        logic.update_company(InMemoryCompanies(), "nobody", lambda r: r)


def test_a_writer_that_never_stops_interfering_ends_in_an_error():
    companies = InMemoryCompanies()
    _company(companies)

    def change(record: CompanyRecord) -> CompanyRecord:
        companies.items["smb-1"] = record.model_copy(update={"version": record.version + 1})
        return record.moved_to(CompanyStatus.LINKED)

    with pytest.raises(logic.ConcurrentUpdateError):
        logic.update_company(companies, "smb-1", change)


def test_wait_first_then_signal_resumes_the_workflow_once():
    companies, resumer = InMemoryCompanies(), RecordingResumer()
    _company(companies)
    armed = logic.arm_wait(companies, resumer, "smb-1", _wait())
    assert armed.delivered is None
    assert armed.record.wait is not None
    outcome = logic.record_signal(companies, resumer, "smb-1", _signal(T0 + timedelta(minutes=1)))
    assert outcome.delivered is not None
    assert resumer.resumed["token-1"]["detail"] == {"connectionStatus": "Linked"}
    assert outcome.record.wait is None
    assert outcome.record.signals == {}


def test_signal_first_then_wait_finds_it_and_resumes_at_once():
    companies, resumer = InMemoryCompanies(), RecordingResumer()
    _company(companies)
    logic.record_signal(companies, resumer, "smb-1", _signal(T0 + timedelta(minutes=1)))
    assert resumer.resumed == {}
    armed = logic.arm_wait(companies, resumer, "smb-1", _wait())
    assert armed.delivered is not None
    assert "token-1" in resumer.resumed
    assert armed.record.signals == {}
    assert armed.record.wait is None


def test_a_signal_from_before_the_wait_window_does_not_settle_it():
    # A replayed connection.connected from an earlier Link cycle must not complete a relink.
    companies, resumer = InMemoryCompanies(), RecordingResumer()
    _company(companies)
    logic.arm_wait(companies, resumer, "smb-1", _wait(not_before=T0 + timedelta(hours=1)))
    outcome = logic.record_signal(companies, resumer, "smb-1", _signal(T0))
    assert outcome.delivered is None
    assert resumer.resumed == {}
    assert outcome.record.wait is not None


def test_an_older_signal_never_replaces_a_newer_one():
    companies, resumer = InMemoryCompanies(), RecordingResumer()
    _company(companies)
    newer = _signal(T0 + timedelta(minutes=5), webhook_id="wh-new")
    logic.record_signal(companies, resumer, "smb-1", newer)
    logic.record_signal(companies, resumer, "smb-1", _signal(T0 + timedelta(minutes=1), "wh-old"))
    stored = companies.items["smb-1"].signals[WaitKind.AUTHORIZATION]
    assert stored.webhook_id == "wh-new"


def test_a_signal_of_another_kind_is_kept_for_its_own_wait():
    companies, resumer = InMemoryCompanies(), RecordingResumer()
    _company(companies)
    logic.arm_wait(companies, resumer, "smb-1", _wait())
    read = Signal(
        kind=WaitKind.INITIAL_READ,
        event_type="read.completed.initial",
        occurred_at=T0 + timedelta(minutes=2),
        webhook_id="wh-read",
    )
    outcome = logic.record_signal(companies, resumer, "smb-1", read)
    assert outcome.delivered is None
    assert outcome.record.wait is not None
    assert WaitKind.INITIAL_READ in outcome.record.signals


def test_the_record_round_trips_through_its_item_form():
    companies = InMemoryCompanies()
    record = _company(companies).model_copy(
        update={"signals": {WaitKind.AUTHORIZATION: _signal(T0)}, "wait": _wait()}
    )
    assert CompanyRecord.model_validate(record.to_item()) == record


class ForgetfulResumer(RecordingResumer):
    """Like Step Functions after a wait timed out to reconcile: the old token is dead."""

    def __init__(self, dead: set[str]) -> None:
        super().__init__()
        self.dead = dead

    def resume(self, token: str, output: dict) -> bool:
        if token in self.dead:
            return False
        return super().resume(token, output)


def test_a_signal_meeting_a_dead_token_is_kept_for_the_next_wait():
    # Given a wait whose task already timed out (the execution went to reconcile)
    companies, resumer = InMemoryCompanies(), ForgetfulResumer(dead={"token-1"})
    _company(companies)
    logic.arm_wait(companies, resumer, "smb-1", _wait("token-1"))
    # When the webhook arrives, it cannot resume that token
    outcome = logic.record_signal(companies, resumer, "smb-1", _signal(T0 + timedelta(minutes=1)))
    # Then the signal is not lost: it is stored, and the next wait takes it at once
    assert outcome.delivered is None
    assert outcome.record.wait is None
    assert WaitKind.AUTHORIZATION in outcome.record.signals
    armed = logic.arm_wait(companies, resumer, "smb-1", _wait("token-2"))
    assert armed.delivered is not None
    assert "token-2" in resumer.resumed


def test_a_wait_for_one_connection_ignores_a_signal_about_another():
    # A relink's new connection must not be completed by news of the old one.
    companies, resumer = InMemoryCompanies(), RecordingResumer()
    _company(companies)
    wait = _wait().model_copy(update={"connection_id": "conn-new"})
    logic.arm_wait(companies, resumer, "smb-1", wait)
    old = _signal(T0 + timedelta(minutes=1)).model_copy(update={"detail": {"connectionId": "old"}})
    assert logic.record_signal(companies, resumer, "smb-1", old).delivered is None
    new = _signal(T0 + timedelta(minutes=2), "wh-2").model_copy(
        update={"detail": {"connectionId": "conn-new", "outcome": "linked"}}
    )
    assert logic.record_signal(companies, resumer, "smb-1", new).delivered is not None
    assert resumer.resumed["token-1"]["detail"]["connectionId"] == "conn-new"
