"""The stateless service: API, functions, state machines, alarms. Safe to redeploy at any time."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants
from infra.config import StageConfig
from infra.constructs.api import ProductApi
from infra.constructs.bills import PayablesRoutes, PayablesSync, grant_payables
from infra.constructs.common import table_reference
from infra.constructs.functions import FunctionFactory
from infra.constructs.monitoring import Monitoring
from infra.constructs.onboarding import OnboardingWorkflow, codat_environment
from infra.constructs.payments import PaymentWorkflow, grant_bill_payments
from infra.constructs.webhooks import CodatWebhooks
from infra.stacks.state_stack import StateStack


class ServiceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        state: StateStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        table = table_reference(self, "CompaniesTable", state.companies.table)
        functions = FunctionFactory(self, "Functions", config=config)

        onboarding = OnboardingWorkflow(
            self,
            "Onboarding",
            config=config,
            functions=functions,
            table=table,
            codat_api_key=state.secrets.api_key,
            event_bus=state.event_bus.bus,
        )

        payables_table = state.payables.table
        payables_sync = PayablesSync(
            self,
            "PayablesSync",
            config=config,
            functions=functions,
            companies=table,
            payables=payables_table,
            codat_environment=codat_environment(config, state.secrets.api_key),
            codat_api_key=state.secrets.api_key,
            event_bus=state.event_bus.bus,
        )

        payments = PaymentWorkflow(
            self,
            "Payments",
            config=config,
            functions=functions,
            payments_table=state.payments.table,
            payables_table=state.payables.table,
            companies_table=table,
            codat_api_key=state.secrets.api_key,
            event_bus=state.event_bus.bus,
        )

        def api_function(
            name: str, handler: str, description: str, *, calls_codat: bool
        ) -> lambda_.Function:
            fn = functions.function(
                name,
                handler=handler,
                description=description,
                environment={
                    constants.ENV_COMPANIES_TABLE: table.table_name,
                    constants.ENV_ONBOARDING_STATE_MACHINE_ARN: (
                        onboarding.state_machine.state_machine_arn
                    ),
                    # Payments are accepted against the product's copy of the bill.
                    constants.ENV_PAYMENTS_TABLE: state.payments.table.table_name,
                    constants.ENV_PAYABLES_TABLE: state.payables.table.table_name,
                    constants.ENV_PAYMENT_STATE_MACHINE_ARN: (
                        payments.state_machine.state_machine_arn
                    ),
                    constants.ENV_PAGE_TOKEN_KEY_SECRET_ARN: state.page_token_key.secret.secret_arn,
                    **(codat_environment(config, state.secrets.api_key) if calls_codat else {}),
                },
            )
            state.payments.table.grant_read_write_data(fn)
            grant_bill_payments(state.payables.table, fn)
            payments.grant_start(fn)
            table.grant_read_write_data(fn)
            onboarding.grant_start(fn)
            grant_payables(payables_table, fn, with_indexes=True)
            state.page_token_key.secret.grant_read(fn)
            if calls_codat:
                state.secrets.api_key.grant_read(fn)
            return fn

        # One resolver (billpay.api), two functions: the routes that call Codat (offboarding
        # unlinks the connection; the payables writes go through it) have a function of their
        # own, so that only it imports Codat's SDK and the other routes' cold starts never pay it.
        api_handler = api_function(
            "Api",
            constants.API_HANDLER,
            "Product backend API: onboard, relink, read company state, bills and payments; pay",
            calls_codat=False,
        )
        api_codat_handler = api_function(
            "ApiCodat",
            constants.API_CODAT_HANDLER,
            "Product backend API, the routes that call Codat: offboard; write bills, suppliers, "
            "payment accounts",
            calls_codat=True,
        )

        api = ProductApi(
            self,
            "ProductApi",
            config=config,
            handler=api_handler,
            codat_handler=api_codat_handler,
        )
        PayablesRoutes(
            self,
            "PayablesRoutes",
            company=api.company,
            integration=api.integration,
            codat_integration=api.codat_integration,
            validator=api.validator,
        )

        webhooks = CodatWebhooks(
            self,
            "Webhooks",
            config=config,
            functions=functions,
            events_table=table_reference(self, "WebhookEventsTable", state.webhook_events.table),
            companies_table=table,
            signing_secret=state.secrets.webhook_secret,
            event_bus=state.event_bus.bus,
            onboarding=onboarding.state_machine,
            payments_table=state.payments.table,
        )
        # API Gateway logs through the account-level role the product API sets up.
        webhooks.api.node.add_dependency(api.api)

        monitoring = Monitoring(self, "Monitoring", config=config)
        monitoring.watch_function("Api", api_handler)
        monitoring.watch_function("ApiCodat", api_codat_handler)
        for name, fn in onboarding.functions.items():
            monitoring.watch_function(name, fn)
        monitoring.watch_state_machine("Onboarding", onboarding.state_machine)
        monitoring.watch_function("SyncPayables", payables_sync.step)
        monitoring.watch_function("RequestPayablesSync", payables_sync.requester)
        monitoring.watch_state_machine("PayablesSync", payables_sync.state_machine)
        for name, fn in payments.functions.items():
            monitoring.watch_function(f"Payment{name}", fn)
        monitoring.watch_state_machine("Payments", payments.state_machine)
        monitoring.watch_api("ProductApi", api.api)
        monitoring.watch_webhooks(
            api=webhooks.api,
            ingress=webhooks.ingress,
            processor=webhooks.processor,
            queue=webhooks.queue,
            dead_letter_queue=webhooks.dead_letter_queue,
        )

        CfnOutput(self, constants.OUTPUT_API_URL, value=api.api.url)
        CfnOutput(
            self,
            constants.OUTPUT_ONBOARDING_STATE_MACHINE_ARN,
            value=onboarding.state_machine.state_machine_arn,
        )
        CfnOutput(
            self,
            constants.OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN,
            value=payables_sync.state_machine.state_machine_arn,
        )
        CfnOutput(self, constants.OUTPUT_ALARM_TOPIC_ARN, value=monitoring.topic.topic_arn)
        CfnOutput(self, constants.OUTPUT_WEBHOOK_URL, value=webhooks.url)
        CfnOutput(self, constants.OUTPUT_DASHBOARD_NAME, value=monitoring.dashboard.dashboard_name)
        CfnOutput(self, constants.OUTPUT_WEBHOOK_QUEUE_URL, value=webhooks.queue.queue_url)
        CfnOutput(
            self, constants.OUTPUT_WEBHOOK_DLQ_URL, value=webhooks.dead_letter_queue.queue_url
        )
        CfnOutput(
            self,
            constants.OUTPUT_PAYMENT_STATE_MACHINE_ARN,
            value=payments.state_machine.state_machine_arn,
        )
