"""The Lambda context object and error shapes; no moto import (the subprocess loads this)."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_epoch_ms: int
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = field(default=None)

    def get_remaining_time_in_millis(self) -> int:
        return max(self.deadline_epoch_ms - int(time.time() * 1000), 0)


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The payload Lambda's Python runtime returns for an uncaught exception."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def timeout_payload(seconds: float) -> dict[str, Any]:
    return {
        "errorMessage": f"Task timed out after {seconds:.2f} seconds",
        "errorType": "Sandbox.Timedout",
    }
