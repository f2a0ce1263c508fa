"""The payment state machine's steps that call Codat (infra/constructs/payments.py): Check, Submit,
Reconcile. Only these payment functions import Codat's SDK, at the top, so that its cost is paid by
their cold start and never by a request; the other steps are in billpay.payments.handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billpay.codat.client import codat_client
from billpay.core.observability import logger
from billpay.payments import logic
from billpay.payments.codat import CodatPayablesAdapter
from billpay.payments.handlers import default_workflow, run_step
from billpay.payments.logic import Workflow

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _codat() -> CodatPayablesAdapter:
    return CodatPayablesAdapter(codat_client())


def _workflow(flow: Workflow | None) -> Workflow:
    return flow or default_workflow(codat=_codat)


@logger.inject_lambda_context(clear_state=True)
def check(
    event: dict[str, Any], context: LambdaContext, flow: Workflow | None = None
) -> dict[str, Any]:
    return run_step("Check", logic.check, event, _workflow(flow))


@logger.inject_lambda_context(clear_state=True)
def submit(
    event: dict[str, Any], context: LambdaContext, flow: Workflow | None = None
) -> dict[str, Any]:
    return run_step("Submit", logic.submit, event, _workflow(flow))


@logger.inject_lambda_context(clear_state=True)
def reconcile(
    event: dict[str, Any], context: LambdaContext, flow: Workflow | None = None
) -> dict[str, Any]:
    return run_step("Reconcile", logic.reconcile, event, _workflow(flow))
