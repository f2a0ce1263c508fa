"""Continuation tokens and page/pageSize bodies."""

from __future__ import annotations

import pytest

from codat_emulator.errors import ApiError
from codat_emulator.paging import PageRequest, decode_token, encode_token, page_request, paged_body


def test_token_round_trip_is_tied_to_its_query():
    token = encode_token(42, "status=Open")
    assert decode_token(token, "status=Open") == 42
    assert decode_token(None, "status=Open") == 0
    with pytest.raises(ApiError) as caught:
        decode_token(token, "status=Paid")
    assert caught.value.status == 400


@pytest.mark.parametrize("token", ["x", "eyJhIjogLTF9", "eyJhIjoiMSIsInEiOiIifQ", "!!!"])
def test_garbage_tokens_are_400(token):
    with pytest.raises(ApiError):
        decode_token(token, None)


def test_page_request_bounds():
    assert page_request({}, 5000) == PageRequest(1, 100)
    assert page_request({"page": "3", "pageSize": "7"}, 5000) == PageRequest(3, 7)
    for bad in ({"page": "0"}, {"pageSize": "5001"}, {"page": "two"}):
        with pytest.raises(ApiError):
            page_request(bad, 5000)


def test_paged_body_links():
    items = [{"n": n} for n in range(5)]
    middle = paged_body(items, PageRequest(2, 2), "/companies", "name~a")
    assert middle["results"] == [{"n": 2}, {"n": 3}]
    assert middle["totalResults"] == 5
    assert "next" in middle["_links"]
    assert "previous" in middle["_links"]
    assert middle["_links"]["next"]["href"] == "/companies?page=3&pageSize=2&query=name~a"
    last = paged_body(items, PageRequest(3, 2), "/companies", None)
    assert last["results"] == [{"n": 4}]
    assert "next" not in last["_links"]
