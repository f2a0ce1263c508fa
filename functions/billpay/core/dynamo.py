"""DynamoDB attribute values from JSON-typed items and back (what `model_dump(mode="json")` gives).

Our own, not boto3's TypeSerializer: importing anything from boto3 imports boto3's package, which
imports s3transfer and multiprocessing on every cold start; the functions need only botocore.
Numbers are exact: ints and Decimals are stored, floats are refused (as boto3 refuses them);
reading gives back an int where the number is whole, else a Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def to_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's attribute map (`{"name": {"S": "Acme"}, ...}`)."""
    return {key: to_attribute(value) for key, value in item.items()}


def from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: from_attribute(value) for key, value in item.items()}


def to_attribute(value: Any) -> dict[str, Any]:
    # bool first: it is an int to Python, not to DynamoDB.
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    raise TypeError(
        f"{type(value).__name__} cannot be stored exactly in DynamoDB"
        + (": use int or Decimal" if isinstance(value, float) else "")
    )


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else number
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    raise TypeError(f"DynamoDB type {kind!r} is not used by this project's items")
