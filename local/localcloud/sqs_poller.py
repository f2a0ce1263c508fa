"""Lambda's SQS poller, as AWS runs it, for the local cloud (moto's own mapping does not do this).

moto invokes a queue's function synchronously inside SendMessage, one record at a time, never
redelivers a failed message and ignores `batchItemFailures`. AWS instead polls: it receives a
batch (up to the mapping's BatchSize), invokes the function once with it, deletes what succeeded
and leaves the rest in flight until the queue's visibility timeout, after which they are received
again; past the redrive policy's maxReceiveCount SQS moves a message to the dead-letter queue.
With ReportBatchItemFailures only the records the function names failed; otherwise, or when the
function raises, the whole batch failed.

This module does the same, from a thread: `hide_mappings_from_send` (installed as a moto patch)
stops moto's synchronous delivery, and `SqsPoller` polls every queue that has an enabled
mapping. The visibility timeout is multiplied by the local cloud's time scale, so a failing
message reaches its DLQ in a fraction of a second in tests.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from moto.awslambda.utils import get_backend as lambda_backend
from moto.core.utils import unix_time_millis
from moto.sqs import models as sqs_models

LOG = logging.getLogger(__name__)
POLL_INTERVAL_SECONDS = 0.02
# Receive holds a message this long; the poller then sets the (scaled) visibility timeout itself.
_RECEIVE_HOLD_SECONDS = 3600

_original_add_message = sqs_models.Queue.add_message
_mappings_lock = threading.RLock()


def hide_mappings_from_send(self: Any, message: Any) -> None:
    """Queue.add_message without moto's synchronous event-source-mapping delivery."""
    with _mappings_lock:
        mappings = self.lambda_event_source_mappings
        self.lambda_event_source_mappings = {}
        try:
            _original_add_message(self, message)
        finally:
            self.lambda_event_source_mappings = mappings


class SqsPoller:
    """Polls the queues with Lambda event source mappings in one account and region."""

    def __init__(
        self, account_id: str, region: str, time_scale: Callable[[], float] = lambda: 1.0
    ) -> None:
        self._account_id = account_id
        self._region = region
        self._time_scale = time_scale
        self._stop = threading.Event()
        self._busy = 0
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="localcloud-sqs-poller", daemon=True)

    def start(self) -> SqsPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> SqsPoller:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.poll_once()
            except Exception:  # a bug here must not end polling for every queue
                LOG.exception("SQS poller failed")
                worked = False
            if not worked:
                self._stop.wait(POLL_INTERVAL_SECONDS)

    def _mapped_queues(self) -> Iterator[tuple[Any, Any]]:
        backend = sqs_models.sqs_backends[self._account_id][self._region]
        for queue in list(backend.queues.values()):
            with _mappings_lock:
                mappings = list(queue.lambda_event_source_mappings.values())
            for mapping in mappings:
                if mapping.enabled:
                    yield queue, mapping

    def poll_once(self) -> bool:
        """Receive and deliver one batch per mapped queue; True if any message was delivered."""
        delivered = False
        for queue, mapping in self._mapped_queues():
            backend = sqs_models.sqs_backends[self._account_id][self._region]
            messages = backend.receive_message(
                queue.name, mapping.batch_size or 10, 0, _RECEIVE_HOLD_SECONDS
            )
            if not messages:
                continue
            delivered = True
            with self._lock:
                self._busy += 1
            try:
                failed = self._deliver(mapping, queue, messages)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._lock.notify_all()
            visible_at = unix_time_millis() + queue.visibility_timeout * 1000 * self._time_scale()
            originals = {m.id: m for m in queue._messages}
            for message in messages:
                if message.id in failed:
                    if message.id in originals:  # back after the (scaled) visibility timeout
                        originals[message.id].visible_at = visible_at
                else:
                    backend.delete_message(queue.name, str(message.receipt_handle))
        return delivered

    def _deliver(self, mapping: Any, queue: Any, messages: list[Any]) -> set[str]:
        """Invoke the function with one batch; the ids of the messages that failed."""
        event = {
            "Records": [
                {
                    "messageId": m.id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": {
                        "ApproximateReceiveCount": str(m.approximate_receive_count),
                        "SentTimestamp": str(m.sent_timestamp),
                        "ApproximateFirstReceiveTimestamp": str(
                            m.approximate_first_receive_timestamp
                        ),
                    },
                    "messageAttributes": {},
                    "md5OfBody": m.body_md5,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue.queue_arn,
                    "awsRegion": self._region,
                }
                for m in messages
            ]
        }
        headers: dict[str, Any] = {}
        all_ids = {m.id for m in messages}
        try:
            payload = lambda_backend(self._account_id, self._region).invoke(
                mapping.function_arn, None, json.dumps(event), {}, headers
            )
        except Exception:
            LOG.exception("invoking %s for %s failed", mapping.function_arn, queue.name)
            return all_ids
        if "x-amz-function-error" in headers:
            return all_ids
        if "ReportBatchItemFailures" not in (mapping.function_response_types or []):
            return set()
        try:
            answer = json.loads(payload or b"null")
            failures = (answer or {}).get("batchItemFailures") or []
            failed = {str(f["itemIdentifier"]) for f in failures}
        except (ValueError, TypeError, KeyError, AttributeError):
            return all_ids  # Lambda treats an unreadable response as a failed batch
        # An identifier that is not in the batch fails the whole batch, as on AWS.
        return all_ids if not failed <= all_ids else failed

    def wait_until_idle(self, timeout: float) -> bool:
        """True once no mapped queue holds a visible or in-flight message and no batch runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = self._busy
            pending = sum(len(queue._messages) for queue, _ in self._mapped_queues())
            if not busy and not pending:
                return True
            time.sleep(POLL_INTERVAL_SECONDS)
        return False
