"""In-memory implementations of the ports, with the same contracts as the adapters."""

from __future__ import annotations

from typing import Any

from billpay.companies.models import CompanyRecord
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
