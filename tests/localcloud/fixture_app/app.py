"""The local cloud's own fixture: a small, real CDK app with one of each resource kind it must run.

Two stacks like the product (state apart from service, linked by exports): a table, a generated
secret and an event bus; a REST API (Lambda proxy, path parameter, ANY + proxy+, IAM auth on one
method), a layer, and a Standard state machine with a Lambda task, Retry, Catch and a 60 s Wait.

Usage: python app.py OUTDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

HERE = Path(__file__).parent


class FixtureState(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Items",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.secret = secretsmanager.Secret(
            self,
            "ApiKey",
            description="fixture secret, generated at deploy time",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=40, exclude_punctuation=True
            ),
        )
        self.bus = events.EventBus(self, "Bus")
        cdk.CfnOutput(self, "TableName", value=self.table.table_name)
        cdk.CfnOutput(self, "SecretArn", value=self.secret.secret_arn)


class FixtureService(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, state: FixtureState) -> None:
        super().__init__(scope, construct_id)
        layer = lambda_.LayerVersion(
            self,
            "DepsLayer",
            code=lambda_.Code.from_asset(str(HERE / "layer")),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
        )
        common = {
            "runtime": lambda_.Runtime.PYTHON_3_11,
            "code": lambda_.Code.from_asset(str(HERE / "functions")),
            "layers": [layer],
            "timeout": cdk.Duration.seconds(10),
        }
        api_fn = lambda_.Function(
            self,
            "ApiFn",
            handler="fixture_handlers.api.handler",
            environment={
                "TABLE_NAME": state.table.table_name,
                "SECRET_ARN": state.secret.secret_arn,
                "STAGE_LABEL": "fixture",
            },
            **common,  # type: ignore[arg-type]
        )
        state.table.grant_read_write_data(api_fn)
        state.secret.grant_read(api_fn)
        step_fn = lambda_.Function(
            self,
            "StepFn",
            handler="fixture_handlers.workflow.record_attempt",
            environment={"TABLE_NAME": state.table.table_name},
            **common,  # type: ignore[arg-type]
        )
        state.table.grant_read_write_data(step_fn)
        cloudwatch.Alarm(
            self,
            "ApiErrors",
            metric=api_fn.metric_errors(),
            threshold=1,
            evaluation_periods=1,
        )

        api = apigw.RestApi(
            self,
            "Api",
            cloud_watch_role=True,
            binary_media_types=["application/octet-stream"],
            deploy_options=apigw.StageOptions(stage_name="test"),
        )
        integration = apigw.LambdaIntegration(api_fn)
        items = api.root.add_resource("items")
        item_model = api.add_model(
            "Item",
            content_type="application/json",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                type=apigw.JsonSchemaType.OBJECT,
                required=["id", "name"],
                properties={
                    "id": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1),
                    "name": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING),
                },
            ),
        )
        items.add_method(
            "POST",
            integration,
            request_models={"application/json": item_model},
            request_validator_options=apigw.RequestValidatorOptions(validate_request_body=True),
        )
        items.add_resource("{itemId}").add_method("GET", integration)
        for path in ("echo", "boom", "malformed", "secret", "slow"):
            api.root.add_resource(path).add_method("GET", integration)
        api.root.add_resource("binary").add_method("POST", integration)
        api.root.add_resource(
            "cors",
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=["https://app.example"], allow_methods=["GET"]
            ),
        ).add_method("GET", integration)
        api.root.add_resource("iam").add_method(
            "GET", integration, authorization_type=apigw.AuthorizationType.IAM
        )
        api.root.add_resource("proxy").add_proxy(default_integration=integration)

        record = tasks.LambdaInvoke(
            self,
            "Record",
            lambda_function=step_fn,
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        record.add_retry(
            errors=["FlakyError"],
            interval=cdk.Duration.seconds(30),
            max_attempts=2,
            backoff_rate=2,
        )
        record.add_catch(
            sfn.Fail(self, "GaveUp", error="FixtureGaveUp", cause="retries exhausted"),
            errors=["States.ALL"],
            result_path="$.error",
        )
        definition = record.next(
            sfn.Wait(self, "Pause", time=sfn.WaitTime.duration(cdk.Duration.seconds(60)))
        ).next(sfn.Succeed(self, "Done"))
        machine = sfn.StateMachine(
            self,
            "Workflow",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
        )
        cdk.CfnOutput(self, "StateMachineArn", value=machine.state_machine_arn)
        cdk.CfnOutput(self, "ApiFunctionName", value=api_fn.function_name)


def build(outdir: str) -> cdk.App:
    app = cdk.App(outdir=outdir)
    state = FixtureState(app, "Fixture-State")
    FixtureService(app, "Fixture-Service", state)
    return app


if __name__ == "__main__":
    build(sys.argv[1]).synth()
