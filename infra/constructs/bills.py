"""The payables capability (functions/billpay/bills): the sync state machine and its step function,
and the product API's routes for bills, suppliers and payment accounts.

The sync, one execution per run (execution name = run id: billpay.bills.sync.sync_run_id):

    SyncStep -> Synced?  done            -> Synced
                         waitSeconds > 0 -> WaitForCodat (waitSeconds) -> SyncStep
                         otherwise       -> SyncStep

SyncStep is one Lambda invocation reading pages until its time is nearly up; the cursor it returns
is the next step's input. A transient failure (Codat unavailable, DynamoDB failing, the Lambda
dying) is retried with back-off from the same cursor: the run resumes at the last page it stored. `SyncPayablesLoop` is
the same loop as a fragment, for another state machine to embed (onboarding's initial load).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from billpay.bills.handlers import SYNC_CAUSES
from billpay.bills.repository import BY_DUE_DATE, BY_STATUS_DUE_DATE, WritesKeptConflictingError
from billpay.codat.errors import CodatUnavailableError
from billpay.events.models import SOURCE as EVENT_SOURCE
from infra import constants
from infra.config import StageConfig
from infra.constructs.common import acknowledge, log_group, nag_name
from infra.constructs.functions import FunctionFactory

# A step reads for up to this long (minus billpay.bills.codat_handlers.RESERVE_MS) before handing over.
SYNC_STEP_TIMEOUT_SECONDS = 180
# What a step may fail with and succeed with later, from the same cursor: the Lambda died (timed
# out, crashed, throttled), DynamoDB failed or throttled beyond botocore's own retries, or other
# writers kept cancelling a page's transaction.
_TRANSIENT = [
    "Sandbox.Timedout",
    "States.Timeout",
    "Lambda.Unknown",
    "Lambda.ServiceException",
    "InternalServerError",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    WritesKeptConflictingError.__name__,
]


class SyncPayablesLoop(sfn.StateMachineFragment):
    """Steps until the run is done. Input: a start request or a cursor; output: the last cursor."""

    def __init__(self, scope: Construct, construct_id: str, *, step: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        failed = sfn.Fail(
            self, "SyncFailed", cause_path="$.error.Cause", error_path="$.error.Error"
        )
        sync_step = tasks.LambdaInvoke(
            self,
            "SyncStep",
            lambda_function=step,
            payload_response_only=True,
            retry_on_service_exceptions=True,
            task_timeout=sfn.Timeout.duration(Duration.seconds(SYNC_STEP_TIMEOUT_SECONDS + 10)),
        )
        sync_step.add_retry(
            errors=[CodatUnavailableError.__name__, *_TRANSIENT],
            interval=Duration.seconds(5),
            backoff_rate=2,
            max_attempts=6,
        )
        sync_step.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.error")
        wait = sfn.Wait(self, "WaitForCodat", time=sfn.WaitTime.seconds_path("$.waitSeconds")).next(
            sync_step
        )
        synced = sfn.Pass(self, "Synced")
        sync_step.next(
            sfn.Choice(self, "RunDone")
            .when(sfn.Condition.boolean_equals("$.done", True), synced)
            .when(sfn.Condition.number_greater_than("$.waitSeconds", 0), wait)
            .otherwise(sync_step)
        )
        self._start = sync_step
        self._ends = [synced]

    @property
    def start_state(self) -> sfn.State:
        return self._start

    @property
    def end_states(self) -> list[sfn.INextable]:
        return list(self._ends)


class PayablesSync(Construct):
    """The sync's step function and state machine; `grant_start` for whoever starts runs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        functions: FunctionFactory,
        companies: dynamodb.ITable,
        payables: dynamodb.ITable,
        codat_environment: dict[str, str],
        codat_api_key: secretsmanager.ISecret,
        event_bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = f"{config.prefix}-payables-sync"
        self.step = functions.function(
            "SyncPayables",
            handler=constants.SYNC_PAYABLES_HANDLER,
            description="Payables sync: read pages of suppliers, bills and accounts from Codat",
            timeout_seconds=SYNC_STEP_TIMEOUT_SECONDS,
            environment={
                constants.ENV_COMPANIES_TABLE: companies.table_name,
                constants.ENV_PAYABLES_TABLE: payables.table_name,
                **codat_environment,
            },
        )
        companies.grant_read_write_data(self.step)  # reads companies; the throttle item is there
        grant_payables(payables, self.step, with_indexes=False)
        codat_api_key.grant_read(self.step)

        loop = SyncPayablesLoop(self, "Run", step=self.step)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(loop),
            # A run of a company with 100,000 bills and a busy Codat fits well within this.
            timeout=Duration.hours(6),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", config),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # cursors carry SMB data
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
            f"AwsSolutions-IAM5[Resource::{nag_name(role, f'{self.step.function_arn}:*')}]",
            "LambdaInvoke may call the function's versions and aliases; still this one function.",
        )

        # A run when onboarding reaches READY (the initial load), for every read of the books and
        # every late bill or supplier write outcome: onboarding and the webhook processor publish
        # them on the integration bus (billpay.onboarding.steps, billpay.webhooks.logic). A refused
        # write also fails the product's pending request for it (the ledger, in the payables table).
        self.requester = functions.function(
            "RequestPayablesSync",
            handler=constants.REQUEST_PAYABLES_SYNC_HANDLER,
            description="Payables sync: start a run on READY, a read of the books or a write",
            environment={
                constants.ENV_COMPANIES_TABLE: companies.table_name,
                constants.ENV_PAYABLES_TABLE: payables.table_name,
                constants.ENV_PAYABLES_SYNC_STATE_MACHINE_ARN: self.state_machine.state_machine_arn,
            },
        )
        self.grant_start(self.requester)
        grant_payables(payables, self.requester, with_indexes=False)
        events.Rule(
            self,
            "OnBooksChanged",
            event_bus=event_bus,
            description="A company READY, a read of the books, or a bill or supplier write outcome",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE], detail_type=sorted(SYNC_CAUSES)
            ),
            targets=[targets.LambdaFunction(self.requester, retry_attempts=8)],
        )

    def grant_start(self, grantee: iam.IGrantable) -> None:
        """Start runs (the requester above; operators for a full run)."""
        self.state_machine.grant_start_execution(grantee)


# What the payables code does with its table (billpay.bills.repository); TransactWriteItems is
# authorized by the actions inside it.
_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
]


def grant_payables(table: dynamodb.ITable, grantee: iam.IGrantable, *, with_indexes: bool) -> None:
    """The payables table's actions, on the table and, for the product's listings, its two local
    indexes by name (no `index/*` wildcard)."""
    resources = [table.table_arn]
    if with_indexes:
        resources += [
            f"{table.table_arn}/index/{index}" for index in (BY_DUE_DATE, BY_STATUS_DUE_DATE)
        ]
    iam.Grant.add_to_principal(grantee=grantee, actions=_TABLE_ACTIONS, resource_arns=resources)


class PayablesRoutes(Construct):
    """The payables routes on the product API (billpay.api.payables): the reads to the API function,
    the writes, which go through Codat, to the API's Codat function.

    The gateway validates path parameters' presence; ids, filters and bodies are validated by the
    function (pydantic), which answers each with a 4xx that says what is wrong.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        company: apigw.IResource,
        integration: apigw.Integration,
        codat_integration: apigw.Integration,
        validator: apigw.IRequestValidator,
    ) -> None:
        super().__init__(scope, construct_id)

        def route(resource: apigw.IResource, method: str, *params: str) -> None:
            required = {f"method.request.path.{p}": True for p in ("companyId", *params)}
            resource.add_method(
                method,
                integration if method == "GET" else codat_integration,
                request_validator=validator,
                request_parameters=required,
            )

        def resource(parent: apigw.IResource, part: str) -> apigw.IResource:
            # The payments' routes (ProductApi) may have made the bill's resources already.
            return parent.get_resource(part) or parent.add_resource(part)

        bills = resource(company, constants.ROUTE_BILLS)
        route(bills, "GET")
        route(bills, "POST")
        bill = resource(bills, "{billId}")
        route(bill, "GET", "billId")
        route(bill, "PUT", "billId")
        route(bill.add_resource(constants.ROUTE_ATTACHMENTS), "POST", "billId")
        suppliers = company.add_resource(constants.ROUTE_SUPPLIERS)
        route(suppliers, "GET")
        route(suppliers, "POST")
        supplier = suppliers.add_resource("{supplierId}")
        route(supplier, "GET", "supplierId")
        route(supplier, "PUT", "supplierId")
        accounts = company.add_resource(constants.ROUTE_PAYMENT_ACCOUNTS)
        route(accounts, "GET")
        route(accounts, "POST")
