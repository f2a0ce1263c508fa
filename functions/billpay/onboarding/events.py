"""The events onboarding publishes on the integration bus (source "billpay"); docs/onboarding.md.

`eventId` is derived from the execution and what happened in it, so a retried step publishes the
same id and consumers dedupe on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from billpay.events.models import DomainEvent


class LinkReady(DomainEvent):
    """The SMB user can be sent to `linkUrl` now: no need to wait for anything else."""

    DETAIL_TYPE: ClassVar[str] = "LinkReady"

    connection_id: str = Field(alias="connectionId")
    platform_key: str = Field(alias="platformKey")
    link_url: str = Field(alias="linkUrl")
    link_issued_at: datetime = Field(alias="linkIssuedAt")
    redirect_url: str | None = Field(default=None, alias="redirectUrl")


class CompanyReady(DomainEvent):
    """Authorized, read, and its suppliers, open bills and payment accounts are readable."""

    DETAIL_TYPE: ClassVar[str] = "CompanyReady"

    connection_id: str = Field(alias="connectionId")
    data_types: dict[str, str] = Field(default_factory=dict, alias="dataTypes")
    # What was read (first page of each listing): {"suppliers": {"count", "more"}, ...}.
    company_data: dict[str, Any] = Field(default_factory=dict, alias="companyData")


class OnboardingFailed(DomainEvent):
    """Onboarding stopped: the Link failed or expired, or a step failed for good."""

    DETAIL_TYPE: ClassVar[str] = "OnboardingFailed"

    # FAILED, LINK_FAILED or LINK_EXPIRED: the company's status now.
    status: str
    code: str
    message: str
    correlation_id: str | None = Field(default=None, alias="correlationId")
