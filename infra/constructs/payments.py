"""The payment state machine: one execution per payment (named after it, so a repeated request
finds it running), from PENDING to PAID, REJECTED or FAILED.

    TakeBill ─┐        ┌─ WaitForBill ─────── TakeBill
    Check ────┤        ├─ WaitToCheck ─────── Check
    Submit ───┼─ Route ┼─ WaitForRateLimit ── Submit
    Reconcile ┘        ├─ WaitToReconcile ─── Reconcile
                       ├─ Check | Submit | Reconcile
                       ├─ Finish ── Done
                       └─ NeedsReview (fails: an attempt no one can settle without a person)

- Every decision is a step's (billpay.payments.logic), made from the payment's record; the state
  machine only routes on the step's `next` and waits its `waitSeconds`. No business rule lives in
  the definition, and it is JSONPath only (moto, which runs it locally, does not execute JSONata).
- A step that raises is retried: it reads the record first and carries on from what the failed
  try recorded. One that keeps failing goes to GiveUp: FAILED if nothing was sent, else UNKNOWN for
  a person to settle; either way the execution fails, so the alarm fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from billpay.payments.logic import Next
from infra import constants
from infra.config import StageConfig
from infra.constructs.common import acknowledge, log_group, nag_name
from infra.constructs.functions import FunctionFactory
from infra.constructs.onboarding import codat_environment


@dataclass(frozen=True)
class _Step:
    name: str
    handler: str
    description: str
    calls_codat: bool = False
    publishes_events: bool = False


_STEPS = (
    _Step(
        "TakeBill",
        constants.TAKE_BILL_HANDLER,
        "Payments: hold the bill, or wait while another payment of it is in flight",
    ),
    _Step(
        "Check",
        constants.CHECK_PAYMENT_HANDLER,
        "Payments: check against Codat's fresh bill and accounts; snapshot the bill",
        calls_codat=True,
    ),
    _Step(
        "Submit",
        constants.SUBMIT_PAYMENT_HANDLER,
        "Payments: send the attempt to Codat under its Idempotency-Key",
        calls_codat=True,
    ),
    _Step(
        "Reconcile",
        constants.RECONCILE_PAYMENT_HANDLER,
        "Payments: read the bill to settle an attempt whose answer said nothing",
        calls_codat=True,
    ),
    _Step(
        "Finish",
        constants.FINISH_PAYMENT_HANDLER,
        "Payments: list on the bill, publish BillPaid or PaymentFailed, let the bill go",
        publishes_events=True,
    ),
    _Step(
        "GiveUp",
        constants.GIVE_UP_PAYMENT_HANDLER,
        "Payments: a step failed for good; FAILED if nothing was sent, else UNKNOWN",
        publishes_events=True,
    ),
)

# Where each wait leads, once waited.
_WAITS = {
    Next.WAIT_FOR_BILL: "TakeBill",
    Next.WAIT_TO_CHECK: "Check",
    Next.WAIT_FOR_RATE_LIMIT: "Submit",
    Next.WAIT_TO_RECONCILE: "Reconcile",
}
_PAYMENT = {
    "companyId": sfn.JsonPath.string_at("$.companyId"),
    "paymentId": sfn.JsonPath.string_at("$.paymentId"),
}


class PaymentWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        functions: FunctionFactory,
        payments_table: dynamodb.ITable,
        payables_table: dynamodb.ITable,
        companies_table: dynamodb.ITable,
        codat_api_key: secretsmanager.ISecret,
        event_bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = f"{config.prefix}-payments"
        self._config = config
        environment = {
            constants.ENV_COMPANIES_TABLE: companies_table.table_name,
            constants.ENV_PAYMENTS_TABLE: payments_table.table_name,
            constants.ENV_PAYABLES_TABLE: payables_table.table_name,
            constants.ENV_EVENT_BUS_NAME: event_bus.event_bus_name,
            constants.ENV_PAYMENT_POLICY: config.payments.to_env(),
        }
        self.functions: dict[str, lambda_.Function] = {}
        for step in _STEPS:
            fn = functions.function(
                f"Payment{step.name}",
                handler=step.handler,
                description=step.description,
                environment={
                    **environment,
                    **(codat_environment(config, codat_api_key) if step.calls_codat else {}),
                },
            )
            payments_table.grant_read_write_data(fn)
            # Every change of status is listed on the bill (the payables table's payments item).
            grant_bill_payments(payables_table, fn)
            if step.calls_codat:
                # The company's connection, and the Codat throttle item beside the companies.
                companies_table.grant_read_write_data(fn)
                codat_api_key.grant_read(fn)
            else:
                companies_table.grant_read_data(fn)
            if step.publishes_events:
                event_bus.grant_put_events_to(fn)
            self.functions[step.name] = fn
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            timeout=Duration.seconds(self._longest_payment_seconds() + 86_400),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", config),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # payment details stay in the history
            ),
        )
        self._acknowledge_state_machine_role()

    def _longest_payment_seconds(self) -> int:
        """Waiting for the bill, then every attempt's window read out to its end."""
        policy = self._config.payments
        per_attempt = (
            policy.idempotency_window_seconds
            + 2 * policy.window_margin_seconds
            + max(policy.reconcile_schedule_seconds)
        )
        return policy.max_pending_seconds + policy.max_attempts * per_attempt

    def _task(self, name: str, payload: dict[str, Any]) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self.functions[name],
            payload=sfn.TaskInput.from_object(payload),
            result_selector={
                "next.$": "$.Payload.next",
                "status.$": "$.Payload.status",
                "waitSeconds.$": "$.Payload.waitSeconds",
            },
            result_path="$.step",
            retry_on_service_exceptions=True,
            task_timeout=sfn.Timeout.duration(
                Duration.seconds(self._config.lambda_timeout_seconds + 5)
            ),
        )
        # Steps resume from the record, so any failure is worth a few more tries.
        task.add_retry(
            errors=[sfn.Errors.ALL],
            interval=Duration.seconds(2),
            max_attempts=4,
            backoff_rate=2.0,
        )
        return task

    def _definition(self) -> sfn.IChainable:
        give_up = tasks.LambdaInvoke(
            self,
            "GiveUp",
            lambda_function=self.functions["GiveUp"],
            payload=sfn.TaskInput.from_object(
                {**_PAYMENT, "error": sfn.JsonPath.object_at("$.error")}
            ),
            result_path=sfn.JsonPath.DISCARD,
            retry_on_service_exceptions=True,
            task_timeout=sfn.Timeout.duration(
                Duration.seconds(self._config.lambda_timeout_seconds + 5)
            ),
        )
        give_up.next(
            sfn.Fail(self, "Stopped", error_path="$.error.Error", cause_path="$.error.Cause")
        )
        steps = {
            name: self._task(name, _PAYMENT)
            for name in ("TakeBill", "Check", "Submit", "Reconcile")
        }
        finish = self._task("Finish", _PAYMENT)
        finish.next(sfn.Succeed(self, "Done"))
        targets: dict[Next, sfn.IChainable] = {
            Next.CHECK: steps["Check"],
            Next.SUBMIT: steps["Submit"],
            Next.RECONCILE: steps["Reconcile"],
            Next.FINISH: finish,
            Next.NEEDS_REVIEW: sfn.Fail(
                self,
                "NeedsReview",
                error="PaymentNeedsReview",
                cause="An attempt may have landed and the bill does not settle it: the payment "
                "stays UNKNOWN, with the reason on its record, for a person to check.",
            ),
        }
        for wait, then in _WAITS.items():
            targets[wait] = sfn.Wait(
                self, wait.value, time=sfn.WaitTime.seconds_path("$.step.waitSeconds")
            ).next(steps[then])
        route = sfn.Choice(self, "Route")
        for step_next in Next:
            route.when(
                sfn.Condition.string_equals("$.step.next", step_next.value), targets[step_next]
            )
        route.otherwise(
            sfn.Fail(
                self,
                "UnexpectedStep",
                error="UnexpectedStep",
                cause="a step answered an unknown next",
            )
        )
        for task in (*steps.values(), finish):
            task.add_catch(give_up, errors=[sfn.Errors.ALL], result_path="$.error")
        for task in steps.values():
            task.next(route)
        return steps["TakeBill"]

    def grant_start(self, grantee: iam.IGrantable) -> None:
        """Start payment executions (the API); a repeated start is refused by name, nothing more
        is needed to tell it apart."""
        self.state_machine.grant_start_execution(grantee)

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


def grant_bill_payments(payables_table: dynamodb.ITable, grantee: iam.IGrantable) -> None:
    """Read a bill and the payments listed on it, and list a payment there: items by key, no
    index (so no `index/*` wildcard)."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem"],
        resource_arns=[payables_table.table_arn],
    )
