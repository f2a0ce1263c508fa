"""Codat's query language: parsing, evaluation, and the status scope the bill listing indexes on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codat_emulator.query import (
    And,
    Comparison,
    Or,
    QueryError,
    evaluate,
    fields,
    parse,
    validate_values,
    value_scope,
)

BILL = {
    "id": "b1",
    "status": "PartiallyPaid",
    "amountDue": 40.5,
    "currency": "GBP",
    "sourceModifiedDate": "2024-05-01T10:00:00.000Z",
    "supplierRef": {"id": "s1", "supplierName": "Paper Co"},
    "reference": None,
}
STATUSES = frozenset({"Unknown", "Open", "PartiallyPaid", "Paid", "Void", "Draft"})


def test_and_binds_tighter_than_or():
    node = parse("status=Paid||status=Open&&amountDue>10")
    assert isinstance(node, Or)
    assert isinstance(node.parts[1], And)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=PartiallyPaid", True),
        ("status=partiallypaid", True),
        ("status!=PartiallyPaid", False),
        ("amountDue>40", True),
        ("amountDue>=40.5&&amountDue<=40.5", True),
        ("amountDue<40.5", False),
        ("sourceModifiedDate>2024-01-01", True),
        ("sourceModifiedDate>2024-05-01T10:00:01Z", False),
        ("supplierRef.id=s1", True),
        ("supplierref.supplierName~paper", True),
        ("reference=null", True),
        ("reference!=null", False),
        ("{status=Paid||status=PartiallyPaid}&&currency=GBP", True),
        ("(status=Paid||currency=EUR)", False),
        ('supplierRef.supplierName="Paper Co"', True),
        ("missingField=x", False),
    ],
)
def test_evaluate(query, expected):
    assert evaluate(parse(query), BILL) is expected


@pytest.mark.parametrize(
    "query",
    [
        "",
        "status",
        "status=",
        "=Open",
        "status==Open",
        "{status=Open",
        "status=Open&&",
        "a..b=1",
        'x="open',
    ],
)
def test_malformed_queries_are_refused(query):
    with pytest.raises(QueryError):
        parse(query)


def test_deep_or_long_queries_are_refused_not_crashes():
    with pytest.raises(QueryError):
        parse("{" * 500 + "status=Open" + "}" * 500)
    with pytest.raises(QueryError):
        parse("&&".join(["status=Open"] * 300))
    assert evaluate(parse("{" * 20 + "status=PartiallyPaid" + "}" * 20), BILL)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "abc"])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(QueryError):
        evaluate(parse(f"amountDue>{value}"), BILL)
    with pytest.raises(QueryError):
        validate_values(parse(f"amountDue>{value}"), {"amountdue": "number"})


def test_values_are_checked_against_field_types():
    with pytest.raises(QueryError):
        validate_values(parse("amountDue>abc"), {"amountdue": "number"})
    with pytest.raises(QueryError):
        validate_values(parse("sourceModifiedDate>yesterday"), {"sourcemodifieddate": "date"})
    validate_values(
        parse("amountDue>1&&sourceModifiedDate>2024-01-01"),
        {"amountdue": "number", "sourcemodifieddate": "date"},
    )


@pytest.mark.parametrize(
    ("query", "scope"),
    [
        ("status=Open", {"Open"}),
        ("status=open||status=Paid", {"Open", "Paid"}),
        ("status!=Paid", STATUSES - {"Paid"}),
        ("status=Open&&amountDue>1", {"Open"}),
        ("{status=Open||status=Paid}&&status!=Paid", {"Open"}),
        ("status=Open||amountDue>1", None),
        ("amountDue>1", None),
        ("status=Nonsense", set()),
    ],
)
def test_status_scope(query, scope):
    result = value_scope(parse(query), "status", STATUSES)
    assert (None if result is None else set(result)) == scope


def test_fields_lists_every_mentioned_field():
    assert fields(parse("status=Open&&{supplierRef.id=1||amountDue>2}")) == {
        "status",
        "supplierref.id",
        "amountdue",
    }


@given(st.sampled_from(sorted(STATUSES)), st.sets(st.sampled_from(sorted(STATUSES)), min_size=1))
def test_scope_never_excludes_a_matching_record(status, wanted):
    # The index narrowing must be sound: any record the query matches is inside the scope.
    node = parse("||".join(f"status={s}" for s in sorted(wanted)))
    scope = value_scope(node, "status", STATUSES)
    assert scope is not None
    if evaluate(node, {"status": status}):
        assert status in scope


def test_comparison_shape():
    assert parse("a.b>=3") == Comparison(("a", "b"), ">=", "3")
