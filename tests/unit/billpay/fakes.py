"""In-memory implementations of the ports, with the same contracts as the adapters."""

from __future__ import annotations

from typing import Any

from billpay.models.company import CompanyRecord
from billpay.ports import Execution


class InMemoryCompanies:
    def __init__(self) -> None:
        self.items: dict[str, CompanyRecord] = {}

    def get(self, company_id: str) -> CompanyRecord | None:
        return self.items.get(company_id)

    def create(self, record: CompanyRecord) -> bool:
        if record.company_id in self.items:
            return False
        self.items[record.company_id] = record
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
