"""Codat webhooks: the public ingress API and function, the processing queue with its dead-letter
queue, and the processor (mirrors functions/billpay/webhooks/).

The ingress is a REST API of its own, not a route on the product API: Codat cannot sign AWS
requests, so its method has no AWS authorization (the function verifies Codat's signature on the
raw body), while the product API stays AWS_IAM-only. Its own stage also gets its own throttling,
its own WAF (with the body-size rule relaxed for Codat's larger events, and an optional allowlist
of Codat's source IPs) and its own metrics for the 4xx/5xx alarms.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from billpay.companies.repository import CODAT_COMPANY_INDEX
from infra import constants
from infra.config import StageConfig
from infra.constructs.api import waf_visibility
from infra.constructs.common import acknowledge, grant_index_query, log_group
from infra.constructs.functions import FunctionFactory

# Codat waits 15 s for an answer; the ingress must answer (even 503) well inside it.
INGRESS_TIMEOUT_SECONDS = 10
PROCESSOR_TIMEOUT_SECONDS = 30
PROCESSOR_BATCH_SIZE = 10
# A message failing this many times goes to the dead-letter queue (alarmed; redriven by ops).
MAX_RECEIVE_COUNT = 5


class CodatWebhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        functions: FunctionFactory,
        events_table: dynamodb.ITable,
        companies_table: dynamodb.ITable,
        signing_secret: secretsmanager.ISecret,
        event_bus: events.IEventBus,
        onboarding: sfn.IStateMachine,
        payments_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This is the dead-letter queue of the webhook queue; it has none of its own.",
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # Lambda's advice: six times the function timeout, so a slow batch is not redelivered
            # while it still runs.
            visibility_timeout=Duration.seconds(6 * PROCESSOR_TIMEOUT_SECONDS),
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )

        self.ingress = functions.function(
            "WebhookIngress",
            handler=constants.WEBHOOK_INGRESS_HANDLER,
            description="Codat webhooks: verify the signature, store the event, queue it, answer",
            timeout_seconds=INGRESS_TIMEOUT_SECONDS,
            environment={
                constants.ENV_WEBHOOK_EVENTS_TABLE: events_table.table_name,
                constants.ENV_WEBHOOK_QUEUE_URL: self.queue.queue_url,
                constants.ENV_WEBHOOK_SECRET_ARN: signing_secret.secret_arn,
            },
        )
        events_table.grant(self.ingress, "dynamodb:PutItem", "dynamodb:GetItem")
        self.queue.grant_send_messages(self.ingress)
        signing_secret.grant_read(self.ingress)

        self.processor = functions.function(
            "WebhookProcessor",
            handler=constants.WEBHOOK_PROCESSOR_HANDLER,
            description="Codat webhooks: apply each stored event once (company, waits, events)",
            timeout_seconds=PROCESSOR_TIMEOUT_SECONDS,
            environment={
                constants.ENV_WEBHOOK_EVENTS_TABLE: events_table.table_name,
                constants.ENV_COMPANIES_TABLE: companies_table.table_name,
                constants.ENV_EVENT_BUS_NAME: event_bus.event_bus_name,
                # billPayments.write.* webhooks are attached to the payment awaiting Codat's
                # answer; the policy's window says which attempt a write can be.
                constants.ENV_PAYMENTS_TABLE: payments_table.table_name,
                constants.ENV_PAYMENT_POLICY: config.payments.to_env(),
            },
        )
        payments_table.grant(
            self.processor, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"
        )
        events_table.grant(
            self.processor, "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"
        )
        companies_table.grant_read_write_data(self.processor)
        grant_index_query(self.processor, companies_table, CODAT_COMPANY_INDEX)
        event_bus.grant_put_events_to(self.processor)
        # Resuming a parked onboarding (SendTaskSuccess is authorized on the state machine).
        onboarding.grant_task_response(self.processor)
        self.processor.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=PROCESSOR_BATCH_SIZE,
                report_batch_item_failures=True,
            )
        )

        self.api = self._api(config)
        self.url = self.api.url_for_path(f"/{constants.ROUTE_WEBHOOKS}/{constants.ROUTE_CODAT}")

    def _api(self, config: StageConfig) -> apigw.RestApi:
        access_logs = log_group(self, "AccessLogs", config)
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.prefix}-webhooks",
            description="Codat Bill Pay integration: Codat webhook endpoint (signed by Codat)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,  # the product API creates the account-level logging role
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # webhook bodies carry SMB data
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=config.webhook_rate_limit,
                throttling_burst_limit=config.webhook_burst_limit,
            ),
        )
        codat = api.root.add_resource(constants.ROUTE_WEBHOOKS).add_resource(constants.ROUTE_CODAT)
        codat.add_method(
            "POST",
            apigw.LambdaIntegration(self.ingress),
            authorization_type=apigw.AuthorizationType.NONE,
        )
        acknowledge(
            api,
            "AwsSolutions-APIG2",
            "The body is checked by the ingress function after the signature, on the exact bytes "
            "Codat signed: a gateway model would judge unverified input and would have to refuse "
            "event types the project does not know yet, which Codat must see acknowledged.",
        )
        reason = (
            "Codat posts webhooks without AWS credentials and cannot sign requests with SigV4 or "
            "present a Cognito token; the ingress function verifies Codat's Standard Webhooks "
            "signature on the raw body and rejects anything else (401). WAF and stage throttling "
            "apply, and the stage can be limited to Codat's source IPs (webhook_source_cidrs)."
        )
        acknowledge(api, "AwsSolutions-APIG4", reason)
        acknowledge(api, "AwsSolutions-COG4", reason)
        self._waf(config, api)
        return api

    def _waf(self, config: StageConfig, api: apigw.RestApi) -> None:
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="AWSManagedRulesCommonRuleSet",
                priority=1,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name="AWSManagedRulesCommonRuleSet",
                        # Its 8 KB body limit would block a large read.completed; the function
                        # enforces its own limit (413).
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name="SizeRestrictions_BODY",
                                action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                            )
                        ],
                    )
                ),
                visibility_config=waf_visibility("WebhookCommonRuleSet"),
            ),
            wafv2.CfnWebACL.RuleProperty(
                name="AWSManagedRulesKnownBadInputsRuleSet",
                priority=2,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name="AWSManagedRulesKnownBadInputsRuleSet"
                    )
                ),
                visibility_config=waf_visibility("WebhookKnownBadInputs"),
            ),
        ]
        if config.webhook_source_cidrs:
            ip_set = wafv2.CfnIPSet(
                self,
                "CodatSourceIps",
                scope="REGIONAL",
                ip_address_version="IPV4",
                addresses=list(config.webhook_source_cidrs),
                description="Codat's published webhook source addresses",
            )
            rules.insert(
                0,
                wafv2.CfnWebACL.RuleProperty(
                    name="OnlyCodatSourceIps",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        not_statement=wafv2.CfnWebACL.NotStatementProperty(
                            statement=wafv2.CfnWebACL.StatementProperty(
                                ip_set_reference_statement=wafv2.CfnWebACL.IPSetReferenceStatementProperty(
                                    arn=ip_set.attr_arn
                                )
                            )
                        )
                    ),
                    visibility_config=waf_visibility("WebhookOnlyCodatSourceIps"),
                ),
            )
        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=waf_visibility(f"{config.prefix}-webhooks"),
            rules=rules,
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
