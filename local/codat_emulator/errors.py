"""Codat's error body, on every error the emulator returns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from codat_emulator.store import ValidationItem

SERVICE = "PublicApi"

_DEFAULT_MESSAGES = {
    400: "The request was malformed.",
    401: "Unauthorized: the Authorization header is missing or does not carry a valid API key.",
    403: "Forbidden.",
    404: "The requested resource was not found.",
    405: "The HTTP method is not allowed for this resource.",
    409: "Conflict.",
    413: "The request body is too large.",
    415: "The request content type is not supported.",
    422: "The request could not be processed.",
    429: "Too many requests: the quota or rate limit has been reached.",
    500: "An unexpected error occurred.",
    503: "The service is temporarily unavailable.",
}


def can_be_retried(status: int) -> str:
    # Codat sends a string: "True"/"False", or "Unknown" when it cannot tell (a 500).
    if status in (429, 503, 409):
        return "True"
    if status >= 500:
        return "Unknown"
    return "False"


class ApiError(Exception):
    """Raised anywhere below a route; rendered as Codat's error body by the app."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        errors: Sequence[ValidationItem] = (),
        headers: Mapping[str, str] | None = None,
        detailed_error_code: int = 0,
    ) -> None:
        self.status = status
        self.message = message or _DEFAULT_MESSAGES.get(status, "Error.")
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.detailed_error_code = detailed_error_code
        super().__init__(f"{status}: {self.message}")


def error_body(
    status: int,
    message: str,
    correlation_id: str,
    errors: Sequence[ValidationItem] = (),
    detailed_error_code: int = 0,
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "service": SERVICE,
        "error": message,
        "correlationId": correlation_id,
        "validation": {
            "errors": [
                {"itemId": e.item_id, "message": e.message, "validatorName": e.validator_name}
                for e in errors
            ],
            "warnings": [],
        },
        "canBeRetried": can_be_retried(status),
        "detailedErrorCode": detailed_error_code,
    }


def error_response(error: ApiError, correlation_id: str) -> Response:
    body = error_body(
        error.status, error.message, correlation_id, error.errors, error.detailed_error_code
    )
    return Response(
        json.dumps(body),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )
