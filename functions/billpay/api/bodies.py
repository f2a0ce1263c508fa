"""Reading a request body: one way for every route.

A body that is not JSON is a 415, one that does not parse a 400 (a deeply nested document too:
Python's parser gives up with RecursionError). Numbers are read as Decimal, never float: request
bodies carry money.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from http import HTTPStatus
from typing import TypeVar

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel

from billpay.core.errors import BillPayError

JSON_MEDIA_TYPE = "application/json"
Body = TypeVar("Body", bound=BaseModel)


class BadRequest(BillPayError):
    code = "MalformedRequest"


class UnsupportedMediaType(BillPayError):
    code = "UnsupportedMediaType"
    http_status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


def parse_body(event: BaseProxyEvent, model: type[Body] | None) -> Body | None:
    """The request body as `model`; None for a route that takes no body (and got none)."""
    raw = event.body or ""
    if event.is_base64_encoded and raw:
        raw = base64.b64decode(raw).decode("utf-8", "replace")
    if not raw.strip():
        if model is None:
            return None
        raise BadRequest("the request needs a JSON body")
    # API Gateway assumes JSON when there is no Content-Type; so do we (headers: any case).
    media_type = event.headers.get("content-type") or JSON_MEDIA_TYPE
    if media_type.split(";", 1)[0].strip().lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(f"the body must be {JSON_MEDIA_TYPE}, not {media_type!r}")
    try:
        document = json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if model is None:
        raise BadRequest(f"{event.http_method} {event.path} takes no body")
    return model.model_validate(document)
