"""What the product API answers about a company: its state, never the workflow's internals
(task tokens, signals) that the companies table also holds."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from billpay.companies.models import CompanyRecord, CompanyStatus, LastError, WaitKind


class CompanyView(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    # The product's own id for the SMB, and the id Codat gave the company it created for it.
    company_id: str = Field(serialization_alias="companyId")
    codat_company_id: str | None = Field(serialization_alias="codatCompanyId")
    name: str
    status: CompanyStatus
    platform_key: str | None = Field(serialization_alias="platformKey")
    connection_id: str | None = Field(serialization_alias="connectionId")
    # Codat's status of the connection: PendingAuth, Linked, Unlinked, Deauthorized.
    connection_status: str | None = Field(serialization_alias="connectionStatus")
    # Where to send the SMB user; only while the company waits for them (PENDING_LINK).
    link_url: str | None = Field(serialization_alias="linkUrl")
    link_issued_at: datetime | None = Field(serialization_alias="linkIssuedAt")
    redirect_url: str | None = Field(serialization_alias="redirectUrl")
    tags: dict[str, str]
    # Codat's status of each data type after the initial read (Complete, AuthError, ...).
    data_types: dict[str, str] = Field(serialization_alias="dataTypes")
    # What onboarding is waiting for right now, if anything.
    waiting_for: WaitKind | None = Field(serialization_alias="waitingFor")
    last_error: LastError | None = Field(serialization_alias="lastError")
    onboarding_execution_arn: str = Field(serialization_alias="onboardingExecutionArn")
    created_at: datetime = Field(serialization_alias="createdAt")
    updated_at: datetime = Field(serialization_alias="updatedAt")

    @classmethod
    def of(cls, record: CompanyRecord) -> CompanyView:
        pending = record.status is CompanyStatus.PENDING_LINK
        return cls(
            company_id=record.company_id,
            codat_company_id=record.codat_company_id,
            name=record.name,
            status=record.status,
            platform_key=record.platform_key,
            connection_id=record.connection_id,
            connection_status=record.connection_status,
            link_url=record.link_url if pending else None,
            link_issued_at=record.link_issued_at,
            redirect_url=record.redirect_url,
            tags=record.tags,
            data_types=record.data_types,
            waiting_for=record.wait.kind if record.wait else None,
            last_error=record.last_error,
            onboarding_execution_arn=record.onboarding_execution_arn,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )
