"""The SQS-triggered processor: applies each queued webhook once, reporting partial batch failures.

Thin: each record's body names a stored webhook; `logic.process` does the rest. A record that
fails is reported in `batchItemFailures` (the event source mapping has ReportBatchItemFailures),
so only it is retried, and the others of the batch are not held up by it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from billpay.codat.throttle import DynamoThrottleStore
from billpay.companies.repository import DynamoCompanyRepository
from billpay.core import aws
from billpay.core.observability import logger
from billpay.core.settings import settings
from billpay.events.publisher import EventBridgePublisher
from billpay.onboarding.workflow import StepFunctionsTasks
from billpay.payments.models import PaymentPolicy
from billpay.payments.repository import DynamoPaymentStore
from billpay.webhooks import logic
from billpay.webhooks.store import DynamoWebhookStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# A claim outlives the invocation by this margin; a crashed invocation's claim then lapses
# before SQS shows its message again (visibility timeout: six times the function timeout).
LEASE_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True)
class ProcessorDependencies:
    store: DynamoWebhookStore
    effects: logic.Effects


@cache
def default_dependencies() -> ProcessorDependencies:
    config = settings()
    if not config.webhook_events_table or not config.event_bus_name:
        raise RuntimeError("WEBHOOK_EVENTS_TABLE and EVENT_BUS_NAME must be set for the processor")
    dynamodb = aws.dynamodb()
    return ProcessorDependencies(
        store=DynamoWebhookStore(dynamodb, config.webhook_events_table),
        effects=logic.Effects(
            companies=DynamoCompanyRepository(dynamodb, config.companies_table),
            resumer=StepFunctionsTasks(aws.stepfunctions()),
            publisher=EventBridgePublisher(aws.eventbridge(), config.event_bus_name),
            throttle=DynamoThrottleStore(dynamodb, config.companies_table),
            payment_writes=_payment_writes(dynamodb),
        ),
    )


def _payment_writes(dynamodb: Any) -> logic.PaymentWrites | None:
    config = settings()
    if not config.payments_table or not config.payment_policy:
        return None  # a stack without payments (the fixture app): write events only published
    return logic.PaymentWrites(
        payments=DynamoPaymentStore(dynamodb, config.payments_table),
        policy=PaymentPolicy.model_validate_json(config.payment_policy),
    )


def webhook_id_of(message_body: str) -> str:
    document = json.loads(message_body)
    webhook_id = document.get("webhookId") if isinstance(document, dict) else None
    if not isinstance(webhook_id, str) or not webhook_id:
        raise ValueError("the message names no webhookId")
    return webhook_id


@logger.inject_lambda_context(clear_state=True)
def handler(
    event: dict[str, Any], context: LambdaContext, deps: ProcessorDependencies | None = None
) -> dict[str, Any]:
    deps = deps or default_dependencies()
    lease = timedelta(milliseconds=context.get_remaining_time_in_millis()) + LEASE_MARGIN
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        try:
            webhook_id = webhook_id_of(record["body"])
            outcome = logic.process(
                webhook_id, deps.store, deps.effects, now=lambda: datetime.now(UTC), lease=lease
            )
            if outcome is not None:
                logger.info(
                    "webhook applied",
                    extra={"webhook_id": webhook_id, "effect": outcome.effect,
                           "company_id": outcome.company_id},
                )  # fmt: skip
        except Exception:
            logger.exception("webhook processing failed", extra={"message_id": record["messageId"]})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
