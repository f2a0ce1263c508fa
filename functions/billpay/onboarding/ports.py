"""What the onboarding logic needs from the outside world. Adapters implement these; tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from billpay.codat.models import CodatCompany, CodatConnection, CompanyData


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

    def stop(self, execution_arn: str, cause: str) -> bool:
        """Stop the execution if it is running; False when it was not."""
        ...


class Codat(Protocol):
    """The Codat operations onboarding uses (implemented by billpay.codat.client.CodatClient).

    Each raises billpay.codat.errors on failure.
    """

    def find_company_by_tag(self, key: str, value: str) -> CodatCompany | None: ...

    def create_company(self, name: str, tags: dict[str, str]) -> CodatCompany: ...

    def list_connections(self, company_id: str) -> list[CodatConnection]: ...

    def create_connection(self, company_id: str, platform_key: str) -> CodatConnection: ...

    def get_connection(self, company_id: str, connection_id: str) -> CodatConnection: ...

    def unlink_connection(self, company_id: str, connection_id: str) -> CodatConnection: ...

    def has_read_data(self, company_id: str, connection_id: str) -> bool: ...

    def read_company_data(self, company_id: str, connection_id: str) -> CompanyData: ...
