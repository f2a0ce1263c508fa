"""The SMB (company) as the product backend and the companies table see it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# The product's own id for the SMB. Also part of the onboarding execution name, so it is limited to
# the characters Step Functions allows there. infra/constructs/api.py validates the same pattern at
# the gateway (it imports it from here).
COMPANY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
CompanyId = Annotated[str, StringConstraints(pattern=COMPANY_ID_PATTERN)]
CompanyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CompanyStatus(StrEnum):
    ONBOARDING = "ONBOARDING"


class StartOnboarding(BaseModel):
    """Body of POST /companies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    company_id: CompanyId = Field(alias="companyId")
    name: CompanyName


class OnboardingStarted(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    company_id: str = Field(serialization_alias="companyId")
    execution_arn: str = Field(serialization_alias="executionArn")


class RegisterCompany(BaseModel):
    """Input of the onboarding state machine's RegisterCompany step."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    company_id: CompanyId = Field(alias="companyId")
    name: CompanyName
    execution_arn: str = Field(alias="executionArn", min_length=1)


class CompanyRecord(BaseModel):
    """One item of the companies table."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    company_id: str = Field(alias="companyId")
    name: str
    status: CompanyStatus
    onboarding_execution_arn: str = Field(alias="onboardingExecutionArn")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")

    def to_item(self) -> dict[str, str]:
        return self.model_dump(mode="json", by_alias=True)
