"""Alarms that page the operator when money or onboarding is at risk, and the operations dashboard.

Hand-written rather than cdk-monitoring-constructs: the project needs a dozen alarms on four kinds
of resource, which fit in this file; the library would add a second jsii package to every synth
(and its own alarm naming and defaults to learn) for what `Alarm` and `Dashboard` already do.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from billpay.core.metrics import DIMENSION, NAMESPACE
from billpay.webhooks.intake import Metric
from infra.config import StageConfig
from infra.constructs.common import removal_policy

_MINUTE = Duration.minutes(1)
_FIVE_MINUTES = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, so the
        # topic gets its own key whose policy lets CloudWatch use it.
        key = kms.Key(
            self,
            "TopicKey",
            description=f"{config.prefix}: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=removal_policy(config),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{config.prefix} alarms", master_key=key
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._action = actions.SnsAction(self.topic)
        self._stage = config.stage
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{config.prefix}-operations"
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        description: str,
        threshold: float = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        return alarm

    def watch_function(self, name: str, fn: lambda_.IFunction) -> None:
        self._alarm(
            f"{name}Errors",
            fn.metric_errors(period=Duration.minutes(1), statistic="Sum"),
            f"{name} raised an unhandled error",
        )

    def watch_state_machine(self, name: str, machine: sfn.IStateMachine) -> None:
        for metric_id, metric in (
            ("Failed", machine.metric_failed(period=Duration.minutes(1), statistic="Sum")),
            ("TimedOut", machine.metric_timed_out(period=Duration.minutes(1), statistic="Sum")),
        ):
            self._alarm(f"{name}{metric_id}", metric, f"{name} executions {metric_id.lower()}")

    def watch_api(self, name: str, api: apigw.RestApi) -> None:
        self._alarm(
            f"{name}ServerErrors",
            api.metric_server_error(period=Duration.minutes(1), statistic="Sum"),
            f"{name} answered 5xx",
        )

    def _count(self, name: str, period: Duration = _FIVE_MINUTES) -> cloudwatch.Metric:
        """A count the functions emit as EMF (billpay.core.metrics)."""
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={DIMENSION: self._stage},
            statistic="Sum",
            period=period,
        )

    def watch_webhooks(
        self,
        *,
        api: apigw.RestApi,
        ingress: lambda_.IFunction,
        processor: lambda_.IFunction,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        """Codat webhooks: nothing lost (DLQ), nothing stuck (queue age), nobody locked out (4xx,
        signatures, the secret), the endpoint up (5xx: Codat disables it after 5 days)."""
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=_MINUTE, statistic="Maximum"
        )
        dlq_age = dead_letter_queue.metric_approximate_age_of_oldest_message(
            period=_FIVE_MINUTES, statistic="Maximum"
        )
        queue_age = queue.metric_approximate_age_of_oldest_message(
            period=_FIVE_MINUTES, statistic="Maximum"
        )
        client_errors = api.metric_client_error(period=_FIVE_MINUTES, statistic="Average")
        server_errors = api.metric_server_error(period=_MINUTE, statistic="Sum")
        self._alarm("WebhookDeadLetters", dlq_depth,
                    "Webhooks failed processing 5 times and wait in the DLQ: fix the cause, then "
                    "`python -m ops redrive-dlq` (docs/operations.md)")  # fmt: skip
        self._alarm("WebhookDeadLettersAge", dlq_age,
                    "A dead-lettered webhook is older than 3 days; the DLQ keeps 14",
                    threshold=3 * 24 * 3600)  # fmt: skip
        self._alarm("WebhookQueueAge", queue_age,
                    "Webhooks have waited 15 minutes for processing", threshold=15 * 60)  # fmt: skip
        self._alarm("WebhookClientErrorRate", client_errors,
                    "Over 5% of webhook requests got a 4xx (signature, secret, bad input)",
                    threshold=0.05)  # fmt: skip
        self._alarm("WebhookServerErrors", server_errors,
                    "The webhook endpoint answered 5xx: Codat retries, and disables an endpoint "
                    "failing for 5 days")  # fmt: skip
        self._alarm("WebhookSignatureFailures", self._count(Metric.UNAUTHORIZED),
                    "Webhooks with a missing or wrong signature (a rotated secret not yet set, "
                    "or someone probing)", threshold=5)  # fmt: skip
        self._alarm("WebhookSecretUnavailable", self._count(Metric.SECRET_UNAVAILABLE),
                    "The webhook signing secret is unset or unreadable: every webhook is refused")  # fmt: skip
        self.watch_function("WebhookIngress", ingress)
        self.watch_function("WebhookProcessor", processor)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Webhooks received",
                left=[
                    self._count(name)
                    for name in (
                        Metric.ACCEPTED,
                        Metric.DUPLICATE,
                        Metric.UNAUTHORIZED,
                        Metric.INVALID,
                        Metric.FAILED,
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="Webhook API 4xx rate / 5xx", left=[client_errors], right=[server_errors]
            ),
            cloudwatch.GraphWidget(
                title="Queue: waiting and oldest (s)",
                left=[queue.metric_approximate_number_of_messages_visible(period=_MINUTE)],
                right=[queue_age],
            ),
            cloudwatch.GraphWidget(title="Dead letters", left=[dlq_depth], right=[dlq_age]),
            cloudwatch.GraphWidget(
                title="Ingress and processor duration (p99)",
                left=[
                    fn.metric_duration(statistic="p99", period=_FIVE_MINUTES)
                    for fn in (ingress, processor)
                ],
            ),
            cloudwatch.GraphWidget(
                title="Ingress and processor errors",
                left=[fn.metric_errors(period=_FIVE_MINUTES) for fn in (ingress, processor)],
            ),
        )
