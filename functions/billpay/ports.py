"""What the logic needs from the outside world. Adapters implement these; tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from billpay.models.company import CompanyRecord


class CompanyRepository(Protocol):
    def get(self, company_id: str) -> CompanyRecord | None: ...

    def create(self, record: CompanyRecord) -> bool:
        """Store the record unless one exists for its id; True when this call created it."""
        ...


@dataclass(frozen=True)
class Execution:
    arn: str
    input: dict[str, Any]
    status: str


class WorkflowStarter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> Execution | None:
        """Start an execution with this name; None when one with the name already exists."""
        ...

    def describe(self, name: str) -> Execution: ...
