"""In-memory implementations of the ports, with the same contracts as the adapters."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billpay.codat.errors import CodatNotFoundError
from billpay.codat.models import CodatCompany, CodatConnection, CompanyData, Listed
from billpay.codat.throttle import Throttle
from billpay.companies.models import CompanyRecord
from billpay.events.models import DomainEvent
from billpay.onboarding.ports import Execution


class InMemoryCompanies:
    def __init__(self) -> None:
        self.items: dict[str, CompanyRecord] = {}

    def get(self, company_id: str) -> CompanyRecord | None:
        return self.items.get(company_id)

    def find_by_codat_company_id(self, codat_company_id: str) -> str | None:
        return next(
            (r.company_id for r in self.items.values() if r.codat_company_id == codat_company_id),
            None,
        )

    def create(self, record: CompanyRecord) -> bool:
        if record.company_id in self.items:
            return False
        self.items[record.company_id] = record
        return True

    def replace(self, record: CompanyRecord, expected_version: int) -> bool:
        stored = self.items.get(record.company_id)
        if stored is None or stored.version != expected_version:
            return False
        self.items[record.company_id] = record
        return True


class RecordingResumer:
    """A TaskResumer that remembers what it handed to which token; a token takes one answer."""

    def __init__(self) -> None:
        self.resumed: dict[str, dict[str, Any]] = {}

    def resume(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.resumed:
            return False
        self.resumed[token] = output
        return True


class InMemoryWorkflow:
    """Like Step Functions: execution names are unique per state machine."""

    def __init__(self) -> None:
        self.executions: dict[str, Execution] = {}

    def start(self, name: str, payload: dict[str, Any]) -> Execution | None:
        if name in self.executions:
            return None
        self.executions[name] = Execution(
            arn=f"arn:aws:states:eu-west-1:123456789012:execution:onboarding:{name}",
            input=payload,
            status="RUNNING",
        )
        return self.executions[name]

    def describe(self, name: str) -> Execution:
        return self.executions[name]

    def stop(self, execution_arn: str, cause: str) -> bool:
        for name, execution in self.executions.items():
            if execution.arn == execution_arn and execution.status == "RUNNING":
                self.executions[name] = Execution(execution.arn, execution.input, "ABORTED")
                return True
        return False


class RecordingPublisher:
    """An EventPublisher that keeps what it was given; `fail` makes the next publish raise."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.fail = False

    @property
    def published(self) -> list[DomainEvent]:
        return self.events

    def publish(self, events: Sequence[DomainEvent]) -> None:
        if self.fail:
            raise RuntimeError("EventBridge refused the events")
        self.events.extend(events)

    def of_type(self, detail_type: str) -> list[DomainEvent]:
        return [e for e in self.events if detail_type == e.DETAIL_TYPE]


class FakeCodat:
    """The Codat port in memory, with failures on demand: `fail[operation] = [error, ...]`
    raises those errors, in order, on the next calls of that operation. `applied_then_fail`
    names operations whose next call is applied and then fails (an ambiguous 500)."""

    def __init__(self) -> None:
        self.companies: dict[str, CodatCompany] = {}
        self.connections: dict[str, list[CodatConnection]] = {}
        self.calls: list[str] = []
        self.fail: dict[str, list[Exception]] = {}
        self.applied_then_fail: dict[str, Exception] = {}
        self.read_ready = True
        self._ids = itertools.count(1)

    def _enter(self, operation: str) -> None:
        self.calls.append(operation)
        queued = self.fail.get(operation)
        if queued:
            raise queued.pop(0)

    def _leave(self, operation: str) -> None:
        error = self.applied_then_fail.pop(operation, None)
        if error is not None:
            raise error

    def find_company_by_tag(self, key: str, value: str) -> CodatCompany | None:
        self._enter("find_company_by_tag")
        found = [c for c in self.companies.values() if c.tags.get(key) == value]
        return found[0] if found else None

    def create_company(self, name: str, tags: dict[str, str]) -> CodatCompany:
        self._enter("create_company")
        company = CodatCompany(id=f"codat-{next(self._ids)}", name=name, tags=tags)
        self.companies[company.id] = company
        self._leave("create_company")
        return company

    def list_connections(self, company_id: str) -> list[CodatConnection]:
        self._enter("list_connections")
        return list(self.connections.get(company_id, []))

    def create_connection(self, company_id: str, platform_key: str) -> CodatConnection:
        self._enter("create_connection")
        n = next(self._ids)
        connection = CodatConnection(
            id=f"conn-{n}",
            status="PendingAuth",
            platform_key=platform_key,
            link_url=f"https://link.example/{company_id}/conn-{n}",
        )
        self.connections.setdefault(company_id, []).append(connection)
        self._leave("create_connection")
        return connection

    def set_status(self, company_id: str, connection_id: str, status: str) -> None:
        self.connections[company_id] = [
            c.model_copy(update={"status": status}) if c.id == connection_id else c
            for c in self.connections[company_id]
        ]

    def get_connection(self, company_id: str, connection_id: str) -> CodatConnection:
        self._enter("get_connection")
        for connection in self.connections.get(company_id, []):
            if connection.id == connection_id:
                return connection
        raise CodatNotFoundError("no such connection", status=404, correlation_id="corr-404")

    def unlink_connection(self, company_id: str, connection_id: str) -> CodatConnection:
        self._enter("unlink_connection")
        self.get_connection(company_id, connection_id)
        self.calls.pop()  # the lookup above is not a call of its own
        self.set_status(company_id, connection_id, "Unlinked")
        return next(c for c in self.connections[company_id] if c.id == connection_id)

    def has_read_data(self, company_id: str, connection_id: str) -> bool:
        self._enter("has_read_data")
        return self.read_ready

    def read_company_data(self, company_id: str, connection_id: str) -> CompanyData:
        self._enter("read_company_data")
        listed = Listed(count=3, more=False)
        return CompanyData(suppliers=listed, open_bills=listed, payment_accounts=listed)


class InMemoryThrottle:
    """The throttle store's contract (billpay.codat.throttle) in memory: the longest hold wins."""

    def __init__(self) -> None:
        self.held: Throttle | None = None
        self.calls: list[tuple[str, Any]] = []  # what was asked of it, in order

    def current(self) -> Throttle | None:
        return self.held

    def hold(self, throttle: Throttle) -> None:
        self.calls.append(("hold", throttle))
        if self.held is None or self.held.until < throttle.until:
            self.held = throttle

    def release(self, reset_at: datetime) -> None:
        self.calls.append(("release", reset_at))
        if self.held is not None and self.held.set_at <= reset_at:
            self.held = None


@dataclass
class LambdaContext:
    """What a handler reads of Lambda's context object (Powertools' logger and the time left)."""

    function_name: str = "billpay-test"
    remaining_ms: int = 300_000
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:billpay-test"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
