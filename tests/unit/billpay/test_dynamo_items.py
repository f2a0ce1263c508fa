"""Our DynamoDB item codec: exact, and the same attribute values boto3's serializer wrote before."""

from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from billpay.core.dynamo import from_dynamo, to_dynamo

# What model_dump(mode="json") produces (no floats: DynamoDB numbers are exact).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
items = st.dictionaries(st.text(min_size=1), json_values, max_size=6)


@given(items)
def test_items_round_trip_exactly(item):
    assert from_dynamo(to_dynamo(item)) == item


@given(items)
def test_attribute_values_are_those_boto3_wrote(item):
    """Items stored by the boto3-based repository read back the same, and new ones look alike."""
    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    written_by_boto3 = {k: serializer.serialize(v) for k, v in item.items()}
    assert to_dynamo(item) == written_by_boto3
    assert from_dynamo(written_by_boto3) == {
        k: deserializer.deserialize(v) for k, v in written_by_boto3.items()
    }


def test_bool_is_not_a_number_and_fractions_stay_decimal():
    assert to_dynamo({"a": True, "b": 1}) == {"a": {"BOOL": True}, "b": {"N": "1"}}
    assert from_dynamo({"n": {"N": "12.50"}}) == {"n": Decimal("12.50")}
    assert type(from_dynamo({"n": {"N": "12"}})["n"]) is int


def test_floats_and_unknown_types_are_refused():
    with pytest.raises(TypeError, match="use int or Decimal"):
        to_dynamo({"amount": 0.1})
    with pytest.raises(TypeError, match="set"):
        to_dynamo({"tags": {"a"}})
    with pytest.raises(TypeError, match="'SS'"):
        from_dynamo({"tags": {"SS": ["a"]}})
