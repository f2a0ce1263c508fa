"""Settling a payment the workflow left UNKNOWN (`python -m ops settle-payment`, docs/payments.md).

The operator has looked at the bill in the accounting platform; this records what they found
through the same repository, rules and finish step the workflow uses (billpay.payments.logic
`settle`): the payment PAID (with evidence) or FAILED, listed on the bill, BillPaid or
PaymentFailed on the bus, the bill let go. An illegal settlement is refused with what is wrong
and writes nothing.

The payment policy (Codat's idempotency window, the margin) is the one the deployed payment
functions run with, read from the Reconcile step's function: a FAILED settlement is refused
until the last attempt can no longer land at Codat.
"""

from __future__ import annotations

import json
from typing import Any

from billpay.bills.repository import DynamoPayablesRepository
from billpay.companies.repository import DynamoCompanyRepository
from billpay.events.publisher import EventBridgePublisher
from billpay.payments import logic
from billpay.payments.logic import PaymentRef, Workflow
from billpay.payments.models import PaymentPolicy, PaymentRecord, PaymentStatus
from billpay.payments.ports import CodatPayables
from billpay.payments.repository import DynamoPaymentStore
from infra import constants

# The state whose function carries the policy the workflow decides with.
POLICY_STATE = "Reconcile"


def deployed_policy(
    stepfunctions: Any, lambda_client: Any, state_machine_arn: str
) -> PaymentPolicy:
    """The PAYMENT_POLICY of the function behind the payment state machine's Reconcile state."""
    definition = json.loads(
        stepfunctions.describe_state_machine(stateMachineArn=state_machine_arn)["definition"]
    )
    state = definition["States"].get(POLICY_STATE)
    function = (state or {}).get("Parameters", {}).get("FunctionName") or (state or {}).get(
        "Resource"
    )
    if not function:
        raise RuntimeError(f"the payment state machine has no {POLICY_STATE} task")
    config = lambda_client.get_function_configuration(FunctionName=function)
    policy = config.get("Environment", {}).get("Variables", {}).get(constants.ENV_PAYMENT_POLICY)
    if not policy:
        raise RuntimeError(f"{function} has no {constants.ENV_PAYMENT_POLICY}")
    return PaymentPolicy.model_validate_json(policy)


def _no_codat() -> CodatPayables:
    raise RuntimeError("settling a payment never calls Codat")


def settlement_workflow(
    dynamodb: Any,
    eventbridge: Any,
    *,
    payments_table: str,
    companies_table: str,
    payables_table: str,
    event_bus: str,
    policy: PaymentPolicy,
) -> Workflow:
    return Workflow(
        payments=DynamoPaymentStore(dynamodb, payments_table),
        companies=DynamoCompanyRepository(dynamodb, companies_table),
        codat=_no_codat,
        bill_payments=DynamoPayablesRepository(dynamodb, payables_table),
        events=EventBridgePublisher(eventbridge, event_bus),
        policy=policy,
    )


def settle_payment(
    flow: Workflow,
    company_id: str,
    payment_id: str,
    status: str,
    evidence: str,
    operator: str,
    codat_payment_id: str | None = None,
    dismissed_writes: frozenset[str] = frozenset(),
) -> PaymentRecord:
    """Raises billpay.core.errors.BillPayError (NotFound, IllegalSettlement, a concurrent write)
    with a message for the operator; nothing is written then."""
    return logic.settle(
        PaymentRef(company_id=company_id, payment_id=payment_id),
        PaymentStatus(status),
        evidence,
        operator,
        flow,
        codat_payment_id=codat_payment_id,
        dismissed_writes=dismissed_writes,
    )
