"""The webhook queue (SQS): the ingress hands each stored event to the processor through it.

A message carries only the webhook id: the event itself is in the events table, which is what the
processor reads (so a replay or a DLQ redrive needs nothing but ids).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def message_body(webhook_id: str) -> str:
    return json.dumps({"webhookId": webhook_id})


class SqsWebhookQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, webhook_id: str) -> None:
        self._client.send_message(QueueUrl=self._url, MessageBody=message_body(webhook_id))
