"""Tasks of the onboarding state machine. An exception fails the task; the workflow decides."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from billpay.companies.ports import CompanyRepository
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.onboarding import logic as onboarding
from billpay.onboarding.models import RegisterCompany


@logger.inject_lambda_context(clear_state=True)
def register_company(
    event: dict[str, Any], context: LambdaContext, companies: CompanyRepository | None = None
) -> dict[str, Any]:
    command = RegisterCompany.model_validate(event)
    repository = companies or DynamoCompanyRepository(aws.dynamodb(), settings().companies_table)
    record = onboarding.register_company(command, repository)
    logger.info("company registered", extra={"company_id": record.company_id})
    return record.model_dump(mode="json", by_alias=True)
