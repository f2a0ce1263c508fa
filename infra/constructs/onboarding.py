"""The onboarding state machine, and the step functions it runs: from start to READY.

    RegisterCompany -> StartedEarlier? yes -> StartedEarlier (succeeds, Codat not called)
      -> CreateCodatCompany -> CreateConnection (PENDING_LINK, LinkReady)
      -> WaitForAuthorization -> AuthorizationOutcome
           linked  -> RecordAuthorization (LINKED) -> WaitForInitialRead -> RecordInitialRead
                      (INITIAL_READ) -> LoadCompanyData -> MarkReady (READY, CompanyReady)
           failed  -> RecordLinkFailed (LINK_FAILED)      expired -> RecordLinkExpired
           pending -> WaitForAuthorization

- The waits are `.waitForTaskToken` tasks: a Lambda parks the token on the company, and the
  webhook processor resumes it (billpay.companies.logic.record_signal). No polling: if nothing
  arrives within the reconcile interval, the task times out, one Reconcile step reads Codat, and
  the workflow waits again or moves on. Timings come from the stage (`onboarding_timings`) or the
  execution input (`timings`), through RegisterCompany's output.
- Steps that call Codat retry `CodatUnavailableError` and `CodatStillSyncingError` with back-off;
  `CodatRateLimitedError` goes to a Wait fed by its `retryAfterSeconds`, then the step runs again;
  anything else is caught to RecordFailure (FAILED, Codat's correlationId kept) and the execution
  fails. A Link that fails or expires is not an operator's problem: the company records it and the
  execution succeeds (no alarm).
- JSONPath only (moto, which runs it locally, does not execute JSONata).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from billpay.codat.errors import (
    RATE_LIMITED_ERROR,
    CodatStillSyncingError,
    CodatUnavailableError,
)
from billpay.companies.models import WaitKind
from billpay.onboarding.models import MAX_INITIAL_READ_SECONDS, MAX_LINK_EXPIRY_SECONDS
from infra import constants
from infra.config import StageConfig
from infra.constructs.common import acknowledge, log_group, nag_name
from infra.constructs.functions import FunctionFactory

_COMPANY_ID = sfn.JsonPath.string_at("$.companyId")
_EXECUTION_ARN = sfn.JsonPath.string_at("$$.Execution.Id")
_TIMINGS = "$.registration.timings"


@dataclass(frozen=True)
class _Step:
    construct_id: str
    handler: str
    description: str
    calls_codat: bool = False
    publishes_events: bool = False


# One Lambda function per step; names are the states' names.
_STEPS = (
    _Step(
        "RegisterCompany",
        constants.REGISTER_COMPANY_HANDLER,
        "Onboarding: validate the input and record the SMB (a relink: claim it)",
    ),
    _Step(
        "CreateCodatCompany",
        constants.CREATE_CODAT_COMPANY_HANDLER,
        "Onboarding: create the Codat company tagged with the product's id, or find it",
        calls_codat=True,
    ),
    _Step(
        "CreateConnection",
        constants.CREATE_CONNECTION_HANDLER,
        "Onboarding: create the platform connection, keep its Link URL, publish LinkReady",
        calls_codat=True,
        publishes_events=True,
    ),
    _Step(
        "WaitForSignal",
        constants.WAIT_FOR_SIGNAL_HANDLER,
        "Onboarding: park a task token on the company until its webhook arrives",
    ),
    _Step(
        "Reconcile",
        constants.RECONCILE_HANDLER,
        "Onboarding: no webhook within the interval, so read Codat once",
        calls_codat=True,
    ),
    _Step(
        "RecordAuthorization",
        constants.RECORD_AUTHORIZATION_HANDLER,
        "Onboarding: the SMB authorized (LINKED)",
    ),
    _Step(
        "RecordInitialRead",
        constants.RECORD_INITIAL_READ_HANDLER,
        "Onboarding: Codat's first read finished; record each data type's status",
    ),
    _Step(
        "LoadCompanyData",
        constants.LOAD_COMPANY_DATA_HANDLER,
        "Onboarding: read suppliers, open bills and payment accounts",
        calls_codat=True,
    ),
    _Step(
        "MarkReady",
        constants.MARK_READY_HANDLER,
        "Onboarding: READY, publish CompanyReady",
        publishes_events=True,
    ),
    _Step(
        "RecordFailure",
        constants.RECORD_FAILURE_HANDLER,
        "Onboarding: record why onboarding stopped, publish OnboardingFailed",
        publishes_events=True,
    ),
)

# Retries of the steps that call Codat: a few quick ones for an unavailable Codat (2+4+...+32 s,
# about a minute), longer ones for a data set still syncing (15+30+...+480 s, about 16 minutes).
_RETRIES = (
    (CodatUnavailableError.__name__, Duration.seconds(2), 5),
    (CodatStillSyncingError.__name__, Duration.seconds(15), 6),
)


class OnboardingWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        functions: FunctionFactory,
        table: dynamodb.ITable,
        codat_api_key: secretsmanager.ISecret,
        event_bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = f"{config.prefix}-onboarding"
        self._config = config
        self.functions: dict[str, lambda_.Function] = {}
        for step in _STEPS:
            self.functions[step.construct_id] = self._function(
                step, functions, table, codat_api_key, event_bus
            )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            # Longer than any wait can last (the timings' upper bounds), plus a day of margin.
            timeout=Duration.seconds(MAX_LINK_EXPIRY_SECONDS + MAX_INITIAL_READ_SECONDS + 86_400),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", config),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # inputs carry SMB data; history holds it instead
            ),
        )
        self.grant_task_response(self.functions["WaitForSignal"])
        self._acknowledge_state_machine_role()

    # --- functions -----------------------------------------------------------------------

    def _function(
        self,
        step: _Step,
        functions: FunctionFactory,
        table: dynamodb.ITable,
        codat_api_key: secretsmanager.ISecret,
        event_bus: events.IEventBus,
    ) -> lambda_.Function:
        environment = {constants.ENV_COMPANIES_TABLE: table.table_name}
        if step.calls_codat:
            environment |= codat_environment(self._config, codat_api_key)
        if step.publishes_events:
            environment[constants.ENV_EVENT_BUS_NAME] = event_bus.event_bus_name
        fn = functions.function(
            step.construct_id,
            handler=step.handler,
            description=step.description,
            environment=environment,
        )
        # Every step reads and writes the company (and the Codat throttle item beside it).
        table.grant_read_write_data(fn)
        if step.calls_codat:
            codat_api_key.grant_read(fn)
        if step.publishes_events:
            event_bus.grant_put_events_to(fn)
        return fn

    # --- the definition ------------------------------------------------------------------

    def _invoke(
        self,
        state_id: str,
        function: str,
        payload: dict[str, Any],
        *,
        result_path: str | None,
        result_selector: dict[str, Any] | None = None,
    ) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self.functions[function],
            payload=sfn.TaskInput.from_object(payload),
            result_selector=result_selector,
            result_path=result_path if result_path is not None else sfn.JsonPath.DISCARD,
            # Lambda's own transient faults (throttling, service errors) are retried.
            retry_on_service_exceptions=True,
            task_timeout=sfn.Timeout.duration(
                Duration.seconds(self._config.lambda_timeout_seconds + 5)
            ),
        )

    def _wait(self, state_id: str, kind: WaitKind, result_path: str) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self.functions["WaitForSignal"],
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "companyId": _COMPANY_ID,
                    "kind": kind.value,
                    "token": sfn.JsonPath.task_token,
                }
            ),
            result_path=result_path,
            retry_on_service_exceptions=True,
            # Nothing within the interval: States.Timeout, caught to a Reconcile step.
            task_timeout=sfn.Timeout.at(f"{_TIMINGS}.reconcileIntervalSeconds"),
        )

    def _calls_codat(self, task: tasks.LambdaInvoke, failure: sfn.IChainable) -> None:
        """Retry what may heal, wait out a rate limit, and record anything else as a failure."""
        for error, interval, attempts in _RETRIES:
            task.add_retry(
                errors=[error], interval=interval, max_attempts=attempts, backoff_rate=2.0
            )
        name = task.node.id
        # The error's message is JSON (billpay.codat.errors): two parses reach retryAfterSeconds.
        read_cause = sfn.Pass(
            self,
            f"{name}RateLimited",
            parameters={"cause.$": "States.StringToJson($.rateLimited.Cause)"},
            result_path="$.rateLimited",
        )
        read_retry_after = sfn.Pass(
            self,
            f"{name}RetryAfter",
            parameters={"codat.$": "States.StringToJson($.rateLimited.cause.errorMessage)"},
            result_path="$.rateLimited",
        )
        hold = sfn.Wait(
            self,
            f"{name}HoldForRateLimit",
            time=sfn.WaitTime.seconds_path("$.rateLimited.codat.retryAfterSeconds"),
        )
        task.add_catch(read_cause, errors=[RATE_LIMITED_ERROR], result_path="$.rateLimited")
        task.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
        read_cause.next(read_retry_after).next(hold).next(task)

    def _definition(self) -> sfn.IChainable:
        company = {"companyId": _COMPANY_ID, "executionArn": _EXECUTION_ARN}

        # Failure: any step's error (Catch), recorded on the company, then a failed execution.
        record_failure = self._invoke(
            "RecordFailure",
            "RecordFailure",
            {**company, "status": "FAILED", "error": sfn.JsonPath.object_at("$.error")},
            result_path="$.failure",
        )
        # The company's lastError keeps the original error's name; the execution fails under one
        # name (an error path could hold "States.Runtime", which a Fail state may not raise).
        record_failure.next(
            sfn.Fail(self, "OnboardingFailed", error="OnboardingFailed", cause_path="$.error.Cause")
        )

        def recorded(
            state_id: str, status: str, detail_path: str, end: sfn.IChainable
        ) -> tasks.LambdaInvoke:
            step = self._invoke(
                state_id,
                "RecordFailure",
                {**company, "status": status, "detail": sfn.JsonPath.object_at(detail_path)},
                result_path="$.failure",
            )
            step.next(end)
            return step

        def unexpected(state_id: str, what: str) -> sfn.Pass:
            state = sfn.Pass(
                self,
                state_id,
                result=sfn.Result.from_object(
                    {"Error": "UnexpectedOutcome", "Cause": f"{what} answered an unknown outcome"}
                ),
                result_path="$.error",
            )
            state.next(record_failure)
            return state

        register = self._invoke(
            "RegisterCompany",
            "RegisterCompany",
            {
                "executionArn": _EXECUTION_ARN,
                "input": sfn.JsonPath.entire_payload,
                "defaultTimings": self._config.onboarding_timings.as_input(),
            },
            result_selector={
                "timings.$": "$.Payload.timings",
                "startedEarlier.$": "$.Payload.startedEarlier",
                "status.$": "$.Payload.status",
                "onboardingExecutionArn.$": "$.Payload.onboardingExecutionArn",
            },
            result_path="$.registration",
        )
        # Invalid input or a refused relink: nothing recorded, nothing asked of Codat.
        register.add_catch(
            sfn.Fail(
                self, "OnboardingRejected", error_path="$.error.Error", cause_path="$.error.Cause"
            ),
            errors=[sfn.Errors.ALL],
            result_path="$.error",
        )

        create_company = self._invoke(
            "CreateCodatCompany",
            "CreateCodatCompany",
            company,
            result_selector={"codatCompanyId.$": "$.Payload.codatCompanyId"},
            result_path="$.codat",
        )
        self._calls_codat(create_company, record_failure)

        create_connection = self._invoke(
            "CreateConnection",
            "CreateConnection",
            company,
            result_selector={
                "connectionId.$": "$.Payload.connectionId",
                "linkUrl.$": "$.Payload.linkUrl",
            },
            result_path="$.link",
        )
        self._calls_codat(create_connection, record_failure)

        # --- authorization ---
        wait_for_authorization = self._wait(
            "WaitForAuthorization", WaitKind.AUTHORIZATION, "$.authorization"
        )
        reconcile_authorization = self._invoke(
            "ReconcileAuthorization",
            "Reconcile",
            {
                **company,
                "kind": WaitKind.AUTHORIZATION.value,
                "timings": sfn.JsonPath.object_at(_TIMINGS),
            },
            result_selector={"result.$": "$.Payload"},
            result_path="$.reconciled",
        )
        self._calls_codat(reconcile_authorization, record_failure)
        # The reconciled answer takes the place of a signal.
        use_reconciled_authorization = sfn.Pass(
            self,
            "UseReconciledAuthorization",
            input_path="$.reconciled.result",
            result_path="$.authorization",
        )
        wait_for_authorization.add_catch(
            reconcile_authorization, errors=[sfn.Errors.TIMEOUT], result_path="$.timedOut"
        )
        wait_for_authorization.add_catch(
            record_failure, errors=[sfn.Errors.ALL], result_path="$.error"
        )
        reconcile_authorization.next(use_reconciled_authorization)

        record_authorization = self._invoke(
            "RecordAuthorization",
            "RecordAuthorization",
            {"companyId": _COMPANY_ID, "signal": sfn.JsonPath.object_at("$.authorization")},
            result_path=None,
        )
        record_authorization.add_catch(
            record_failure, errors=[sfn.Errors.ALL], result_path="$.error"
        )
        outcome = "$.authorization.detail.outcome"
        authorization_outcome = (
            sfn.Choice(self, "AuthorizationOutcome")
            .when(sfn.Condition.string_equals(outcome, "linked"), record_authorization)
            .when(
                sfn.Condition.string_equals(outcome, "failed"),
                recorded(
                    "RecordLinkFailed",
                    "LINK_FAILED",
                    "$.authorization.detail",
                    sfn.Succeed(self, "EndedLinkFailed"),
                ),
            )
            .when(
                sfn.Condition.string_equals(outcome, "expired"),
                recorded(
                    "RecordLinkExpired",
                    "LINK_EXPIRED",
                    "$.authorization.detail",
                    sfn.Succeed(self, "EndedLinkExpired"),
                ),
            )
            .when(sfn.Condition.string_equals(outcome, "pending"), wait_for_authorization)
            .otherwise(unexpected("UnexpectedAuthorization", "the authorization wait"))
        )
        wait_for_authorization.next(authorization_outcome)
        use_reconciled_authorization.next(authorization_outcome)

        # --- initial read ---
        wait_for_initial_read = self._wait(
            "WaitForInitialRead", WaitKind.INITIAL_READ, "$.initialRead"
        )
        reconcile_initial_read = self._invoke(
            "ReconcileInitialRead",
            "Reconcile",
            {
                **company,
                "kind": WaitKind.INITIAL_READ.value,
                "timings": sfn.JsonPath.object_at(_TIMINGS),
                "authorizedAt": sfn.JsonPath.string_at("$.authorization.occurredAt"),
            },
            result_selector={"result.$": "$.Payload"},
            result_path="$.reconciled",
        )
        self._calls_codat(reconcile_initial_read, record_failure)
        wait_for_initial_read.add_catch(
            reconcile_initial_read, errors=[sfn.Errors.TIMEOUT], result_path="$.timedOut"
        )
        wait_for_initial_read.add_catch(
            record_failure, errors=[sfn.Errors.ALL], result_path="$.error"
        )
        record_initial_read = self._invoke(
            "RecordInitialRead",
            "RecordInitialRead",
            {"companyId": _COMPANY_ID, "signal": sfn.JsonPath.object_at("$.initialRead")},
            result_path=None,
        )
        # RequiredDataTypeFailed (a data type Bill Pay needs ended in error) lands here too.
        record_initial_read.add_catch(
            record_failure, errors=[sfn.Errors.ALL], result_path="$.error"
        )
        read_outcome = "$.reconciled.result.detail.outcome"
        use_reconciled_read = sfn.Pass(
            self,
            "UseReconciledInitialRead",
            input_path="$.reconciled.result",
            result_path="$.initialRead",
        )
        use_reconciled_read.next(record_initial_read)
        reconcile_initial_read.next(
            sfn.Choice(self, "InitialReadOutcome")
            .when(sfn.Condition.string_equals(read_outcome, "complete"), use_reconciled_read)
            .when(sfn.Condition.string_equals(read_outcome, "pending"), wait_for_initial_read)
            .when(
                sfn.Condition.string_equals(read_outcome, "timedOut"),
                recorded(
                    "RecordInitialReadTimedOut",
                    "FAILED",
                    "$.reconciled.result.detail",
                    sfn.Fail(
                        self,
                        "InitialReadTimedOut",
                        error="InitialReadTimedOut",
                        cause="Codat's initial read did not complete in time",
                    ),
                ),
            )
            .otherwise(unexpected("UnexpectedInitialRead", "the initial read reconcile"))
        )

        # --- data and ready ---
        load_data = self._invoke(
            "LoadCompanyData",
            "LoadCompanyData",
            company,
            result_selector={"data.$": "$.Payload"},
            result_path="$.companyData",
        )
        self._calls_codat(load_data, record_failure)
        mark_ready = self._invoke(
            "MarkReady",
            "MarkReady",
            {**company, "companyData": sfn.JsonPath.object_at("$.companyData.data")},
            result_path=None,
        )
        mark_ready.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path="$.error")

        # A start for a company an earlier start took further (the name is free again 90 days
        # after that execution ended, or the product started another name) ends here, asking
        # nothing of Codat (billpay.onboarding.logic.started_earlier).
        register.next(
            sfn.Choice(self, "StartedEarlier?")
            .when(
                sfn.Condition.boolean_equals("$.registration.startedEarlier", True),
                sfn.Succeed(self, "StartedEarlier"),
            )
            .otherwise(create_company)
        )
        create_company.next(create_connection).next(wait_for_authorization)
        record_authorization.next(wait_for_initial_read).next(record_initial_read).next(
            load_data
        ).next(mark_ready).next(sfn.Succeed(self, "Ready"))
        return register

    # --- grants --------------------------------------------------------------------------

    @property
    def state_machine_arn_pattern(self) -> str:
        """This state machine's ARN, built from its name: granting on it from a function the
        state machine itself invokes does not make a dependency cycle."""
        return Stack.of(self).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def grant_task_response(self, grantee: iam.IGrantable) -> None:
        """Resume a parked wait (SendTaskSuccess): the wait step and the webhook processor."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
            resource_arns=[self.state_machine_arn_pattern],
        )

    def grant_start(self, grantee: iam.IGrantable) -> None:
        """Start, read back and stop the executions of this state machine only.

        DescribeExecution tells a repeated start (same input: answer as before) from a conflicting
        one; StopExecution ends the onboarding of an offboarded company. Execution names are
        chosen at run time (per company), hence the one wildcard.
        """
        self.state_machine.grant_start_execution(grantee)
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["states:DescribeExecution", "states:StopExecution"],
            resource_arns=[executions],
        )
        principal = grantee.grant_principal
        if isinstance(principal, Construct):
            acknowledge(
                principal,
                f"AwsSolutions-IAM5[Resource::{nag_name(principal, executions)}]",
                "Executions of the onboarding state machine only; their names are per company.",
            )

    def _acknowledge_state_machine_role(self) -> None:
        role = self.state_machine.role
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing: xray:PutTraceSegments and friends support no resource-level scoping.",
        )
        for fn in self.functions.values():
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_name(role, f'{fn.function_arn}:*')}]",
                "LambdaInvoke may call the function's versions and aliases; still one function.",
            )


def codat_environment(config: StageConfig, api_key: secretsmanager.ISecret) -> dict[str, str]:
    """What a function that calls Codat needs (billpay.codat.client)."""
    return {
        constants.ENV_CODAT_BASE_URL: str(config.codat_base_url).rstrip("/"),
        constants.ENV_CODAT_API_KEY_SECRET_ARN: api_key.secret_arn,
    }
