"""Codat's ``query`` filter language: ``field op value`` joined by ``&&`` and ``||``.

Operators ``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=`` and ``~`` (contains); ``{ }`` or ``( )``
group; ``&&`` binds tighter than ``||``. Field names are dotted paths (``supplierRef.id``) and match
case-insensitively; values may be quoted with double quotes. Numbers compare as decimals, dates and
date-times as instants (a bare date is midnight UTC), everything else as case-insensitive text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")
MAX_QUERY_LENGTH = 2000
MAX_NESTING = 20


class QueryError(ValueError):
    """The query cannot be parsed or cannot apply to the data type's fields."""


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    op: str
    value: str


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


Node = Comparison | And | Or


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self._or()
        self._skip_space()
        if self.pos != len(self.text):
            raise QueryError(f"Unexpected '{self.text[self.pos :]}' at position {self.pos}.")
        return node

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self, token: str) -> bool:
        self._skip_space()
        return self.text.startswith(token, self.pos)

    def _or(self) -> Node:
        parts = [self._and()]
        while self._peek("||"):
            self.pos += 2
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _and(self) -> Node:
        parts = [self._factor()]
        while self._peek("&&"):
            self.pos += 2
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _factor(self) -> Node:
        for opening, closing in (("{", "}"), ("(", ")")):
            if self._peek(opening):
                self.pos += 1
                self.depth += 1
                if self.depth > MAX_NESTING:
                    raise QueryError(f"Groups nest deeper than {MAX_NESTING}.")
                node = self._or()
                self.depth -= 1
                if not self._peek(closing):
                    raise QueryError(f"Missing '{closing}' at position {self.pos}.")
                self.pos += 1
                return node
        return self._comparison()

    def _comparison(self) -> Comparison:
        self._skip_space()
        start = self.pos
        while self.pos < len(self.text) and (
            self.text[self.pos].isalnum() or self.text[self.pos] in "._"
        ):
            self.pos += 1
        field = self.text[start : self.pos]
        if not field or field.startswith(".") or field.endswith(".") or ".." in field:
            raise QueryError(f"Expected a field name at position {start}.")
        self._skip_space()
        op = next((o for o in OPERATORS if self.text.startswith(o, self.pos)), None)
        if op is None:
            raise QueryError(f"Expected an operator after '{field}' at position {self.pos}.")
        self.pos += len(op)
        self._skip_space()
        value = self._value()
        return Comparison(tuple(field.split(".")), op, value)

    def _value(self) -> str:
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                raise QueryError(f"Unterminated quoted value at position {self.pos}.")
            value = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return value
        start = self.pos
        while self.pos < len(self.text):
            if self.text.startswith(("&&", "||"), self.pos) or self.text[self.pos] in "})":
                break
            self.pos += 1
        value = self.text[start : self.pos].strip()
        if not value or value[0] in "=<>!~":
            # "status==Open" is a typo, not a search for "=Open": quote such a value.
            raise QueryError(f"Expected a value at position {start}.")
        return value


def parse(text: str) -> Node:
    if not text.strip():
        raise QueryError("The query is empty.")
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"The query is longer than {MAX_QUERY_LENGTH} characters.")
    return _Parser(text).parse()


def fields(node: Node) -> set[str]:
    """The (lower-cased, dotted) field names a query mentions."""
    if isinstance(node, Comparison):
        return {".".join(node.path).lower()}
    out: set[str] = set()
    for part in node.parts:
        out |= fields(part)
    return out


def value_scope(node: Node, field: str, universe: frozenset[str]) -> frozenset[str] | None:
    """The values of ``field`` (from ``universe``) a record can have and still match, or None when
    the query does not narrow them. Lets a caller scan only the matching index."""
    if isinstance(node, Comparison):
        if ".".join(node.path).lower() != field.lower():
            return None
        by_lower = {v.lower(): v for v in universe}
        if node.op == "=":
            match = by_lower.get(node.value.lower())
            return frozenset({match}) if match else frozenset()
        if node.op == "!=":
            return universe - {by_lower.get(node.value.lower(), "")}
        return None
    scopes = [value_scope(part, field, universe) for part in node.parts]
    if isinstance(node, Or):
        if any(s is None for s in scopes):
            return None
        return frozenset().union(*(s for s in scopes if s is not None))
    narrowed = [s for s in scopes if s is not None]
    if not narrowed:
        return None
    result = narrowed[0]
    for s in narrowed[1:]:
        result &= s
    return result


def _lookup(record: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    current: Any = record
    for name in path:
        if not isinstance(current, Mapping):
            return False, None
        if name in current:
            current = current[name]
            continue
        lowered = name.lower()
        for key in current:
            if key.lower() == lowered:
                current = current[key]
                break
        else:
            return False, None
    return True, current


def _as_instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)


def _number(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise QueryError(f"'{text}' is not a number for '{name}'.") from error
    if not value.is_finite():
        raise QueryError(f"'{text}' is not a finite number for '{name}'.")
    return value


def _matches(node: Comparison, record: Mapping[str, Any]) -> bool:
    found, actual = _lookup(record, node.path)
    if not found or actual is None:
        wants_null = node.value.lower() == "null"
        return (node.op == "=" and wants_null) or (node.op == "!=" and not wants_null)
    if node.op == "~":
        return node.value.lower() in str(actual).lower()
    if isinstance(actual, bool):
        return _compare(node.op, str(actual).lower(), node.value.lower())
    if isinstance(actual, int | float | Decimal):
        wanted = _number(node.value, ".".join(node.path))
        return _compare(node.op, Decimal(str(actual)), wanted)
    text = str(actual)
    if node.op in (">", ">=", "<", "<=") or node.path[-1].lower().endswith("date"):
        left, right = _as_instant(text), _as_instant(node.value)
        if left is not None and right is not None:
            return _compare(node.op, left, right)
        if node.path[-1].lower().endswith("date") and right is None:
            raise QueryError(f"'{node.value}' is not a date for '{'.'.join(node.path)}'.")
    return _compare(node.op, text.casefold(), node.value.casefold())


def evaluate(node: Node, record: Mapping[str, Any]) -> bool:
    if isinstance(node, Comparison):
        return _matches(node, record)
    if isinstance(node, And):
        return all(evaluate(part, record) for part in node.parts)
    return any(evaluate(part, record) for part in node.parts)


def predicate(node: Node) -> Callable[[Mapping[str, Any]], bool]:
    return lambda record: evaluate(node, record)


def validate_values(node: Node, field_types: Mapping[str, str]) -> None:
    """Reject, up front, values that can never compare (``amountDue>abc``), so a bad query is a
    400 even when no record would have been examined. ``field_types`` maps lower-cased dotted
    names to "number" or "date"."""
    if isinstance(node, Comparison):
        kind = field_types.get(".".join(node.path).lower())
        name = ".".join(node.path)
        if node.value.lower() == "null" or node.op == "~":
            return
        if kind == "number":
            _number(node.value, name)
        elif kind == "date" and _as_instant(node.value) is None:
            raise QueryError(f"'{node.value}' is not a date for '{name}'.")
        return
    for part in node.parts:
        validate_values(part, field_types)
