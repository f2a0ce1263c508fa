"""Lambda functions: one runtime, one architecture, one code asset, one layer, defined here once."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants
from infra.config import StageConfig
from infra.constructs import common
from infra.constructs.dependency_layer import DependencyLayer
from infra.constructs.function_code import function_code

# Python 3.13, not the newest (3.14): its interpreter is on the build machines, so the code and
# the layer ship compiled to bytecode, which more than halves every cold start's imports
# (docs/benchmarks.md). Move on when a 3.14 interpreter can be had where the assets are built.
# On Graviton (cheaper, faster cold starts).
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64


class FunctionFactory(Construct):
    """Builds every function of a stack the same way: shared code asset and layer, own log group,
    own role with only the log permissions it needs (no AWS managed policies)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.layer = DependencyLayer(
            self, "Dependencies", runtime=RUNTIME, architecture=ARCHITECTURE
        )
        self._code = function_code(RUNTIME)
        common.acknowledge(
            self,
            "AwsSolutions-L1",
            f"{RUNTIME.name} on purpose: the newest Python whose interpreter the build machines "
            "have, so code and layer ship as bytecode (about 2.5x faster cold-start imports).",
        )

    def function(
        self,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: dict[str, str] | None = None,
        timeout_seconds: int | None = None,
    ) -> lambda_.Function:
        config = self._config
        logs = common.log_group(self, f"{construct_id}Logs", config)
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{config.prefix} {construct_id}: writes its own logs, nothing more by default",
        )
        logs.grant_write(role)
        # The log group exists before the function first writes (the Ref in LoggingConfig orders
        # it, as the GetAtt of the role's ARN orders the role; an explicit dependency would only
        # repeat them, cfn-lint W3005), so Lambda never needs logs:CreateLogGroup and the role
        # stays scoped to this one group.
        return lambda_.Function(
            self,
            construct_id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=self._code,
            layers=[self.layer.layer],
            role=role,
            log_group=logs,
            logging_format=lambda_.LoggingFormat.JSON,
            memory_size=config.lambda_memory_mb,
            timeout=Duration.seconds(timeout_seconds or config.lambda_timeout_seconds),
            description=description,
            environment={
                constants.ENV_STAGE: config.stage,
                "POWERTOOLS_SERVICE_NAME": "billpay",
                **(environment or {}),
            },
        )
