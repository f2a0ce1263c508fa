"""Alarms that page the operator when money or onboarding is at risk."""

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
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.common import removal_policy


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

    def _alarm(self, construct_id: str, metric: cloudwatch.Metric, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)

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
