"""What can go wrong when calling Codat, as the workflows need to know it.

Step Functions' Retry and Catch match an error by its NAME (the exception's class name, as the
Lambda runtime reports it), never by inheritance; so the names below are a contract with
infra/constructs/onboarding.py, which imports them from here:

- retryable, retried by the workflow with back-off:
  `CodatUnavailableError` (5xx, timeouts, no answer), `CodatStillSyncingError` (a 409 "data set not
  requested or still syncing" while the initial read runs);
- `CodatRateLimitedError` (429, or the throttle still holds): the workflow waits for
  `retryAfterSeconds` and runs the step again;
- permanent, caught to a failed status: `CodatRejectedError` (any other 4xx; `CodatNotFoundError`
  for a 404) and `CodatUnexpectedResponseError` (an answer the SDK cannot read).

`str(error)` is a JSON object (`message`, `status`, `correlationId`, `retryAfterSeconds`), so the
state machine (`States.StringToJson`) and the failure step read its fields without parsing prose.
No SDK import here: the workflow definition and the unit tests import this module freely.
"""

from __future__ import annotations

import json
from typing import Any


class CodatError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        correlation_id: str | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        # Codat's id for the failed request: what Codat support asks for.
        self.correlation_id = correlation_id
        self.retry_after_seconds = retry_after_seconds

    def detail(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "status": self.status,
            "correlationId": self.correlation_id,
            "retryAfterSeconds": self.retry_after_seconds,
        }

    def __str__(self) -> str:
        return json.dumps(self.detail())


class CodatRetryableError(CodatError):
    """Trying again later may succeed."""


class CodatRateLimitedError(CodatRetryableError):
    """Codat's quota is used up (429) or the throttle holds: no call before `retry_after_seconds`."""


class CodatUnavailableError(CodatRetryableError):
    """5xx, a timeout or no answer at all: a write may or may not have been applied."""


class CodatStillSyncingError(CodatRetryableError):
    """409: the data set is not there yet (the initial read has not finished)."""


class CodatPermanentError(CodatError):
    """Trying again will give the same answer: the caller must change something."""


class CodatRejectedError(CodatPermanentError):
    """A 4xx other than 409 and 429: bad input, bad credentials, a product not enabled..."""


class CodatNotFoundError(CodatRejectedError):
    """404: the company or connection does not exist (any more)."""


class CodatUnexpectedResponseError(CodatPermanentError):
    """Codat answered, but not in a shape the SDK can read (e.g. a new enum value)."""


# The names the state machine matches (see the module docstring).
RETRIED_ERRORS = (CodatUnavailableError.__name__, CodatStillSyncingError.__name__)
RATE_LIMITED_ERROR = CodatRateLimitedError.__name__


def codat_error_detail(message: str) -> dict[str, Any] | None:
    """The fields of a CodatError from its message as a failed task reports it, else None."""
    try:
        detail = json.loads(message)
    except ValueError:
        return None
    if isinstance(detail, dict) and "message" in detail and "correlationId" in detail:
        return detail
    return None
