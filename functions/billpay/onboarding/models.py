"""What the product backend sends to start onboarding, and what each onboarding step takes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from billpay.companies.models import CompanyId, CompanyName


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
