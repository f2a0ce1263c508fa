"""Codat's webhook envelope and the payloads the processor acts on (spec: Codat-Platform.json).

Lenient where Codat may add values: statuses are kept as the strings Codat sends (a new dataset
or connection status must not fail a batch), unknown fields are ignored, and event types the
project does not know are routed to IGNORED. Strict where the project depends on a field: the
connection's id and status, each data type's name and status, a write's id and status, a rate
limit's expiry. A payload missing one of those fails processing, ends in the dead-letter queue
and raises the alarm, instead of being applied half-understood.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(moment: datetime) -> datetime:
    """Codat's DateTime: UTC, with or without an offset in the string."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
Text = Annotated[str, Field(min_length=1)]


class _Codat(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class CompanyReference(_Codat):
    id: Text
    tags: dict[str, str] = Field(default_factory=dict)


class Envelope(_Codat):
    id: Text
    event_type: Text = Field(alias="eventType")
    generated_date: UtcDateTime = Field(alias="generatedDate")
    payload: dict[str, Any]


class DataConnectionError(_Codat):
    """One of `connection.dataConnectionErrors` (why a link failed or a connection broke)."""

    status_code: str | None = Field(default=None, alias="statusCode")
    status_text: str | None = Field(default=None, alias="statusText")
    error_message: str | None = Field(default=None, alias="errorMessage")
    errored_on_utc: UtcDateTime | None = Field(default=None, alias="erroredOnUtc")


class Connection(_Codat):
    id: Text
    # PendingAuth, Linked, Unlinked, Deauthorized, ... (kept as sent)
    status: Text
    data_connection_errors: list[DataConnectionError] = Field(
        default_factory=list, alias="dataConnectionErrors"
    )

    def error_reason(self) -> str | None:
        """The newest error's message, as Codat words it (e.g. "User cancelled linking")."""
        if not self.data_connection_errors:
            return None
        newest = max(
            self.data_connection_errors,
            key=lambda e: e.errored_on_utc or datetime.min.replace(tzinfo=UTC),
        )
        return newest.error_message or newest.status_text or newest.status_code


class ConnectionPayload(_Codat):
    reference_company: CompanyReference = Field(alias="referenceCompany")
    connection: Connection


class DataTypeRead(_Codat):
    connection_id: str | None = Field(default=None, alias="connectionId")
    data_type: Text = Field(alias="dataType")
    records_modified: bool = Field(default=False, alias="recordsModified")
    # Complete, FetchError, AuthError, RateLimitError, ... (kept as sent)
    status: Text


class ReadCompletedPayload(_Codat):
    reference_company: CompanyReference = Field(alias="referenceCompany")
    modified_from_date: UtcDateTime | None = Field(default=None, alias="modifiedFromDate")
    data_types: list[DataTypeRead] = Field(alias="dataTypes")


class WrittenRecord(_Codat):
    id: str | None = None


class WritePayload(_Codat):
    id: Text  # the push operation id
    type: str | None = None  # Create, Update, Delete, UploadAttachment
    reference_company: CompanyReference = Field(alias="referenceCompany")
    connection_id: str | None = Field(default=None, alias="connectionId")
    # Pending, Failed, Success, TimedOut (kept as sent)
    status: Text
    record: WrittenRecord | None = None
    requested_on: UtcDateTime | None = Field(default=None, alias="requestedOnDate")
    completed_on: UtcDateTime | None = Field(default=None, alias="completedOnDate")


class RateLimitPayload(_Codat):
    daily_quota: int | None = Field(default=None, alias="dailyQuota")
    quota_remaining: int | None = Field(default=None, alias="quotaRemaining")
    expiry_date: UtcDateTime = Field(alias="expiryDate")


class EventKind(StrEnum):
    """What an event type means to the project (several spellings can mean one kind)."""

    CONNECTION = "connection"
    INITIAL_READ = "initialRead"
    READ = "read"
    BILL_WRITE = "billWrite"
    SUPPLIER_WRITE = "supplierWrite"
    BILL_PAYMENT_WRITE = "billPaymentWrite"
    RATE_LIMIT_REACHED = "rateLimitReached"
    RATE_LIMIT_RESET = "rateLimitReset"
    IGNORED = "ignored"


CONNECTION_EVENTS = frozenset(
    f"connection.{name}"
    for name in ("created", "connected", "reconnected", "failed", "disconnected", "deleted")
)
# Connection events that answer a wait for the SMB's authorization.
AUTHORIZATION_EVENTS = frozenset(
    {"connection.connected", "connection.reconnected", "connection.failed"}
)
# Connection events after which the company has no working connection.
LOST_CONNECTION_EVENTS = frozenset({"connection.disconnected", "connection.deleted"})
LOST_CONNECTION_STATUSES = frozenset({"Deauthorized", "Unlinked"})
LINKED = "Linked"
_EXACT = {
    "read.completed.initial": EventKind.INITIAL_READ,
    "read.completed": EventKind.READ,
    "client.rateLimit.reached": EventKind.RATE_LIMIT_REACHED,
    "client.rateLimit.reset": EventKind.RATE_LIMIT_RESET,
}
# Codat's catalogue says `bills.write.*`; its Bill Pay setup page says `bill.write.*`.
_WRITES = {
    "bills": EventKind.BILL_WRITE,
    "bill": EventKind.BILL_WRITE,
    "suppliers": EventKind.SUPPLIER_WRITE,
    "supplier": EventKind.SUPPLIER_WRITE,
    "billPayments": EventKind.BILL_PAYMENT_WRITE,
    "billPayment": EventKind.BILL_PAYMENT_WRITE,
}


def kind_of(event_type: str) -> EventKind:
    if event_type in CONNECTION_EVENTS:
        return EventKind.CONNECTION
    if event_type in _EXACT:
        return _EXACT[event_type]
    data_type, dot, outcome = event_type.partition(".write.")
    if dot and outcome in ("successful", "unsuccessful") and data_type in _WRITES:
        return _WRITES[data_type]
    return EventKind.IGNORED


def write_succeeded(event_type: str) -> bool:
    return event_type.endswith(".write.successful")
