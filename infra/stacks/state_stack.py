"""The stateful stack: deployed rarely, protected in prod, referenced by the service stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import constants
from infra.config import StageConfig
from infra.constructs.state import (
    CodatSecrets,
    CompanyTable,
    IntegrationEventBus,
    PageTokenKey,
    PayablesTable,
    PaymentTable,
    WebhookEventsTable,
)


class StateStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.companies = CompanyTable(self, "Companies", config=config)
        self.secrets = CodatSecrets(self, "Codat", config=config)
        self.event_bus = IntegrationEventBus(self, "Events", config=config)
        self.page_token_key = PageTokenKey(self, "PageTokens", config=config)
        self.webhook_events = WebhookEventsTable(self, "WebhookEvents", config=config)
        self.payables = PayablesTable(self, "Payables", config=config)
        self.payments = PaymentTable(self, "Payments", config=config)

        CfnOutput(self, constants.OUTPUT_COMPANIES_TABLE, value=self.companies.table.table_name)
        CfnOutput(self, constants.OUTPUT_EVENT_BUS_NAME, value=self.event_bus.bus.event_bus_name)
        CfnOutput(
            self, constants.OUTPUT_CODAT_API_KEY_SECRET_ARN, value=self.secrets.api_key.secret_arn
        )
        CfnOutput(
            self,
            constants.OUTPUT_WEBHOOK_SECRET_ARN,
            value=self.secrets.webhook_secret.secret_arn,
        )
        CfnOutput(
            self,
            constants.OUTPUT_WEBHOOK_EVENTS_TABLE,
            value=self.webhook_events.table.table_name,
        )
        CfnOutput(self, constants.OUTPUT_PAYABLES_TABLE, value=self.payables.table.table_name)
        CfnOutput(self, constants.OUTPUT_PAYMENTS_TABLE, value=self.payments.table.table_name)
