"""Domain errors. Handlers map them to answers in one place; logic raises them."""

from __future__ import annotations


class BillPayError(Exception):
    """Base of every error the product backend may be told about."""

    code = "BillPayError"


class NotFoundError(BillPayError):
    code = "NotFound"


class ConflictError(BillPayError):
    """The request contradicts what already exists (same id, different data)."""

    code = "Conflict"
