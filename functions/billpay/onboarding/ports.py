"""What the onboarding logic needs from the outside world. Adapters implement these; tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


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
