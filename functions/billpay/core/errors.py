"""Domain errors. Handlers map them to answers in one place; logic raises them."""

from __future__ import annotations

from http import HTTPStatus


class BillPayError(Exception):
    """Base of every error the product backend may be told about."""

    code = "BillPayError"
    # The answer the product API gives for it.
    http_status = HTTPStatus.BAD_REQUEST


class NotFoundError(BillPayError):
    code = "NotFound"
    http_status = HTTPStatus.NOT_FOUND


class ConflictError(BillPayError):
    """The request contradicts what already exists (same id, different data)."""

    code = "Conflict"
    http_status = HTTPStatus.CONFLICT
