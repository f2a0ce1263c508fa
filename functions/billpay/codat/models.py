"""Codat's records as the product uses them: small, stable views the adapter maps SDK models to.

The rest of the code never sees an SDK type, so a breaking SDK major changes one module.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class CodatCompany(_Model):
    id: str
    name: str
    tags: dict[str, str] = Field(default_factory=dict)


class CodatConnection(_Model):
    id: str
    # Codat's connection status: PendingAuth, Linked, Unlinked, Deauthorized.
    status: str
    # The platform key (integrationKey), e.g. "gbol" for Xero.
    platform_key: str | None = None
    link_url: str


class Listed(_Model):
    """What one page of a listing held, and whether there is more."""

    count: int
    more: bool


class CompanyData(_Model):
    """What Bill Pay works from, as read after the initial read (first page of each listing)."""

    suppliers: Listed
    open_bills: Listed = Field(serialization_alias="openBills")
    payment_accounts: Listed = Field(serialization_alias="paymentAccounts")
