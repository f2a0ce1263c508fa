"""The SMB (company) aggregate: one item of the companies table, and the rules for changing it.

Two ids, never confused: `company_id` is the product's own id for the SMB (the table's key, the
API's path parameter); `codat_company_id` is the id Codat gave the company it created for it.

Every change is a pure function from one record to the next (see `billpay.companies.logic`), written
back conditionally on `version`, so a webhook and the workflow writing at once lose nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from billpay.core.errors import BillPayError

# The product's own id for the SMB. Also part of the onboarding execution name, so it is limited to
# the characters Step Functions allows there. infra/constructs/api.py validates the same pattern at
# the gateway (it imports it from here).
COMPANY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
CompanyId = Annotated[str, StringConstraints(pattern=COMPANY_ID_PATTERN)]
CompanyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# The tag set on the Codat company: Codat echoes tags in every webhook's `referenceCompany`, so an
# event maps back to the product's company without a lookup.
PRODUCT_COMPANY_ID_TAG = "billpayCompanyId"


class CompanyStatus(StrEnum):
    REGISTERED = "REGISTERED"  # recorded; no Codat company yet
    PENDING_LINK = "PENDING_LINK"  # Codat company and connection exist; Link URL handed out
    LINKED = "LINKED"  # the SMB authorized (connection.connected)
    INITIAL_READ = "INITIAL_READ"  # Codat finished the first read; loading bills and suppliers
    READY = "READY"
    NEEDS_RELINK = "NEEDS_RELINK"  # disconnected or deauthorized after READY
    LINK_EXPIRED = "LINK_EXPIRED"
    LINK_FAILED = "LINK_FAILED"
    FAILED = "FAILED"
    OFFBOARDED = "OFFBOARDED"


_S = CompanyStatus
# Where each status may go next. Staying put is always allowed (a retried step, a duplicate event).
ALLOWED_TRANSITIONS: dict[CompanyStatus, frozenset[CompanyStatus]] = {
    _S.REGISTERED: frozenset({_S.PENDING_LINK, _S.FAILED, _S.OFFBOARDED}),
    _S.PENDING_LINK: frozenset(
        {_S.LINKED, _S.LINK_EXPIRED, _S.LINK_FAILED, _S.FAILED, _S.OFFBOARDED}
    ),
    _S.LINKED: frozenset({_S.INITIAL_READ, _S.NEEDS_RELINK, _S.FAILED, _S.OFFBOARDED}),
    _S.INITIAL_READ: frozenset({_S.READY, _S.NEEDS_RELINK, _S.FAILED, _S.OFFBOARDED}),
    _S.READY: frozenset({_S.NEEDS_RELINK, _S.OFFBOARDED}),
    # READY again when the SMB re-authorizes the same connection (connection.reconnected).
    _S.NEEDS_RELINK: frozenset({_S.PENDING_LINK, _S.READY, _S.OFFBOARDED, _S.FAILED}),
    _S.LINK_EXPIRED: frozenset({_S.PENDING_LINK, _S.OFFBOARDED}),
    _S.LINK_FAILED: frozenset({_S.PENDING_LINK, _S.OFFBOARDED}),
    _S.FAILED: frozenset({_S.PENDING_LINK, _S.OFFBOARDED}),
    _S.OFFBOARDED: frozenset(),
}


class InvalidTransitionError(BillPayError):
    code = "InvalidTransition"


class WaitKind(StrEnum):
    """What an onboarding execution can be waiting for, resumed by a webhook through a task token."""

    AUTHORIZATION = "authorization"  # connection.connected / connection.failed
    INITIAL_READ = "initialRead"  # read.completed.initial


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class Signal(_Model):
    """What a webhook said that a wait may be waiting for. Stored on the company until a wait of
    the same kind consumes it, so an event that arrives before the wait is armed is not lost."""

    kind: WaitKind
    event_type: str = Field(alias="eventType")
    # Codat's `generatedDate`: orders events that arrive out of order.
    occurred_at: datetime = Field(alias="occurredAt")
    webhook_id: str = Field(alias="webhookId")
    # The facts the waiting workflow decides on (connection status, data type statuses, ...).
    detail: dict[str, Any] = Field(default_factory=dict)


class Wait(_Model):
    """A task token an onboarding execution parked on this company."""

    kind: WaitKind
    token: str
    # Signals generated before this instant belong to an earlier Link cycle (a replayed
    # `connection.connected` must not complete a relink) and do not settle the wait.
    not_before: datetime = Field(alias="notBefore")
    armed_at: datetime = Field(alias="armedAt")
    # When set, only a signal about this connection (its detail's `connectionId`) settles the wait.
    connection_id: str | None = Field(default=None, alias="connectionId")


class LastError(_Model):
    code: str
    message: str
    correlation_id: str | None = Field(default=None, alias="correlationId")
    at: datetime


class CompanyRecord(_Model):
    """One item of the companies table, keyed by the product's company id."""

    company_id: str = Field(alias="companyId")
    name: str
    status: CompanyStatus
    onboarding_execution_arn: str = Field(alias="onboardingExecutionArn")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    # Incremented by every write; each write is conditional on the version it read.
    version: int = 0
    platform_key: str | None = Field(default=None, alias="platformKey")
    # Where the product wants the SMB user to land after Link, and the product's own tags.
    redirect_url: str | None = Field(default=None, alias="redirectUrl")
    tags: dict[str, str] = Field(default_factory=dict)
    codat_company_id: str | None = Field(default=None, alias="codatCompanyId")
    # Set just before asking Codat to create the company. Create-company takes no Idempotency-Key:
    # while this is set and `codat_company_id` is not, an earlier attempt may have created it, so
    # the company is looked up by its tag before creating again.
    codat_company_requested_at: datetime | None = Field(
        default=None, alias="codatCompanyRequestedAt"
    )
    # The execution that asked Codat for the current Link cycle's connection (same reasoning).
    connection_requested_by: str | None = Field(default=None, alias="connectionRequestedBy")
    connection_id: str | None = Field(default=None, alias="connectionId")
    connection_status: str | None = Field(default=None, alias="connectionStatus")
    # generatedDate of the connection webhook that set connection_status: an older one arriving
    # late changes nothing.
    connection_event_at: datetime | None = Field(default=None, alias="connectionEventAt")
    link_url: str | None = Field(default=None, alias="linkUrl")
    link_issued_at: datetime | None = Field(default=None, alias="linkIssuedAt")
    # dataType -> Codat's status for it after the initial read (e.g. Complete, AuthError).
    data_types: dict[str, str] = Field(default_factory=dict, alias="dataTypes")
    # When Codat's read that set each data type's status was generated (newest wins per type),
    # and the newest read of any type (read.completed and read.completed.initial).
    data_types_read_at: dict[str, datetime] = Field(default_factory=dict, alias="dataTypesReadAt")
    last_read_at: datetime | None = Field(default=None, alias="lastReadAt")
    last_error: LastError | None = Field(default=None, alias="lastError")
    # Signals not yet consumed by a wait, newest per kind; and the wait parked here, if any.
    signals: dict[WaitKind, Signal] = Field(default_factory=dict)
    wait: Wait | None = None

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (JSON types; absent values left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def moved_to(self, status: CompanyStatus) -> CompanyRecord:
        """This record in `status`, if the transition is allowed; InvalidTransitionError if not."""
        if status != self.status and status not in ALLOWED_TRANSITIONS[self.status]:
            raise InvalidTransitionError(
                f"company {self.company_id!r} cannot go from {self.status} to {status}"
            )
        return self.model_copy(update={"status": status})
