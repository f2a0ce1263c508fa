"""What the company logic needs from the outside world. Adapters implement these; tests pass fakes."""

from __future__ import annotations

from typing import Any, Protocol

from billpay.companies.models import CompanyRecord


class CompanyRepository(Protocol):
    def get(self, company_id: str) -> CompanyRecord | None: ...

    def find_by_codat_company_id(self, codat_company_id: str) -> str | None:
        """The product's company id for a Codat company id (webhooks carry only Codat's)."""
        ...

    def create(self, record: CompanyRecord) -> bool:
        """Store the record unless one exists for its id; True when this call created it."""
        ...

    def replace(self, record: CompanyRecord, expected_version: int) -> bool:
        """Store the record if the stored one is at `expected_version`; False if it is not."""
        ...


class TaskResumer(Protocol):
    """Hands a waiting workflow its answer (Step Functions SendTaskSuccess)."""

    def resume(self, token: str, output: dict[str, Any]) -> bool:
        """True when the waiting task took the answer; False when it no longer waits for it."""
        ...
