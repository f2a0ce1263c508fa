"""The payment state machine's steps that do not call Codat (infra/constructs/payments.py): TakeBill,
Finish, GiveUp. Thin: parse which payment, run one step of billpay.payments.logic, answer what the
state machine does next. The steps that call Codat (Check, Submit, Reconcile) are in
billpay.payments.codat_handlers, the only module here that imports Codat's SDK.

An exception fails the task: the state machine retries it, and the step, reading the record first,
carries on from what the failed try recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from billpay.bills.repository import DynamoPayablesRepository
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.events.publisher import EventBridgePublisher
from billpay.payments import logic
from billpay.payments.logic import PaymentRef, Step, Workflow
from billpay.payments.models import PaymentPolicy
from billpay.payments.ports import CodatPayables
from billpay.payments.repository import DynamoPaymentStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def no_codat() -> CodatPayables:
    raise RuntimeError(
        "this payment step does not call Codat; Check, Submit and Reconcile do "
        "(billpay.payments.codat_handlers)"
    )


def default_workflow(codat: Callable[[], CodatPayables] = no_codat) -> Workflow:
    config = settings()
    return Workflow(
        payments=DynamoPaymentStore(
            aws.dynamodb(), required(config.payments_table, "PAYMENTS_TABLE")
        ),
        companies=DynamoCompanyRepository(aws.dynamodb(), config.companies_table),
        codat=codat,
        bill_payments=DynamoPayablesRepository(
            aws.dynamodb(), required(config.payables_table, "PAYABLES_TABLE")
        ),
        events=EventBridgePublisher(
            aws.eventbridge(), required(config.event_bus_name, "EVENT_BUS_NAME")
        ),
        policy=PaymentPolicy.model_validate_json(required(config.payment_policy, "PAYMENT_POLICY")),
    )


def required(value: str | None, variable: str) -> str:
    if not value:
        raise RuntimeError(
            f"{variable} is not set for this function (infra/constructs/payments.py)"
        )
    return value


def _answer(name: str, ref: PaymentRef, step: Step) -> dict[str, Any]:
    logger.info(
        f"payment step {name}",
        extra={
            "company_id": ref.company_id,
            "payment_id": ref.payment_id,
            "status": step.status.value,
            "next": step.next.value,
            "wait_seconds": step.wait_seconds,
        },
    )
    return step.to_json()


# A step's decision: the logic function each handler runs.
Decide = Callable[[PaymentRef, Workflow], Step]


def run_step(name: str, decide: Decide, event: dict[str, Any], flow: Workflow) -> dict[str, Any]:
    ref = PaymentRef.model_validate(event)
    return _answer(name, ref, decide(ref, flow))


@logger.inject_lambda_context(clear_state=True)
def take_bill(
    event: dict[str, Any], context: LambdaContext, flow: Workflow | None = None
) -> dict[str, Any]:
    return run_step("TakeBill", logic.take_bill, event, flow or default_workflow())


@logger.inject_lambda_context(clear_state=True)
def finish(
    event: dict[str, Any], context: LambdaContext, flow: Workflow | None = None
) -> dict[str, Any]:
    return run_step("Finish", logic.finish, event, flow or default_workflow())


@logger.inject_lambda_context(clear_state=True)
def give_up(
    event: dict[str, Any], context: LambdaContext, flow: Workflow | None = None
) -> dict[str, Any]:
    ref = PaymentRef.model_validate(event)
    error = event.get("error") or {}
    step = logic.give_up(ref, error, flow or default_workflow())
    logger.error("payment workflow stopped", extra={"error": error.get("Error")})
    return _answer("GiveUp", ref, step)
