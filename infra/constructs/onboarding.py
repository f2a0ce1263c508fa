"""The onboarding state machine the product backend starts for each SMB.

Today it registers the company; the Codat steps (create company and connection, hand out the Link
URL, wait for authorization and the initial read, load bills and suppliers) extend this chain.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.common import acknowledge, log_group, nag_name


class OnboardingWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        register_company: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = f"{config.prefix}-onboarding"
        failed = sfn.Fail(
            self,
            "OnboardingFailed",
            cause_path="$.error.Cause",
            error_path="$.error.Error",
        )
        register = tasks.LambdaInvoke(
            self,
            "RegisterCompany",
            lambda_function=register_company,
            payload=sfn.TaskInput.from_object(
                {
                    "companyId": sfn.JsonPath.string_at("$.companyId"),
                    "name": sfn.JsonPath.string_at("$.name"),
                    "executionArn": sfn.JsonPath.string_at("$$.Execution.Id"),
                }
            ),
            result_selector={"company.$": "$.Payload"},
            result_path="$.registration",
            # LambdaInvoke retries Lambda's own transient faults; nothing else is retried here
            # because registering is idempotent but a validation error will not heal itself.
            retry_on_service_exceptions=True,
            task_timeout=sfn.Timeout.duration(Duration.seconds(config.lambda_timeout_seconds + 5)),
        )
        register.add_catch(failed, result_path="$.error")
        definition = register.next(sfn.Succeed(self, "Onboarded"))
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.days(7),  # an SMB may take days to authorize through Link
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", config),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # inputs carry SMB data; history holds it instead
            ),
        )
        role = self.state_machine.role
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing: xray:PutTraceSegments and friends support no resource-level scoping.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_name(role, f'{register_company.function_arn}:*')}]",
            "LambdaInvoke may call the function's versions and aliases; still this one function.",
        )

    def grant_start(self, grantee: iam.IGrantable) -> None:
        """Start onboarding executions and read back the executions of this state machine only.

        DescribeExecution tells a repeated start (same input: answer as before) from a conflicting
        one; execution names are chosen at run time, hence the one wildcard.
        """
        self.state_machine.grant_start_execution(grantee)
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["states:DescribeExecution"], resource_arns=[executions]
        )
        principal = grantee.grant_principal
        if isinstance(principal, Construct):
            acknowledge(
                principal,
                f"AwsSolutions-IAM5[Resource::{nag_name(principal, executions)}]",
                "Executions of the onboarding state machine only; their names are per company.",
            )
