"""Codat's two paging styles: ``page``/``pageSize`` with HAL links (companies, connections) and an
opaque ``continuationToken`` (suppliers, bills)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from codat_emulator.errors import ApiError
from codat_emulator.store import ValidationItem

DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class PageRequest:
    page: int
    page_size: int


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            400,
            f"'{name}' must be an integer from {low} to {high}.",
            [ValidationItem(f"'{raw}' is not an integer from {low} to {high}.", name)],
        )
    return value


def page_request(params: Mapping[str, str], max_page_size: int) -> PageRequest:
    return PageRequest(
        page=_int_param(params, "page", 1, 1, 1_000_000),
        page_size=_int_param(params, "pageSize", DEFAULT_PAGE_SIZE, 1, max_page_size),
    )


def paged_body(
    items: Sequence[dict[str, Any]], request: PageRequest, path: str, query: str | None
) -> dict[str, Any]:
    """One page of ``items`` (the full filtered list) with Codat's HAL ``_links``."""
    start = (request.page - 1) * request.page_size
    results = list(items[start : start + request.page_size])

    def href(page: int) -> dict[str, str]:
        params: dict[str, str | int] = {"page": page, "pageSize": request.page_size}
        if query:
            params["query"] = query
        return {"href": f"{path}?{urlencode(params)}"}

    links: dict[str, Any] = {"self": {"href": path}, "current": href(request.page)}
    if start + request.page_size < len(items):
        links["next"] = href(request.page + 1)
    if request.page > 1:
        links["previous"] = href(request.page - 1)
    return {
        "results": results,
        "pageNumber": request.page,
        "pageSize": request.page_size,
        "totalResults": len(items),
        "_links": links,
    }


def encode_token(after: int, query: str | None) -> str:
    raw = json.dumps({"a": after, "q": query or ""}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, query: str | None) -> int:
    """The sequence number to continue after (0 for the first page). A token only continues the
    listing it came from: another query with it is a 400."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["a"]
        token_query = data["q"]
        if not isinstance(after, int) or after < 0 or not isinstance(token_query, str):
            raise ValueError(token)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ApiError(
            400,
            "The continuation token is not valid.",
            [ValidationItem("Not a token this API issued.", "continuationToken")],
        ) from error
    if token_query != (query or ""):
        raise ApiError(
            400,
            "The continuation token belongs to a listing with a different query.",
            [ValidationItem("Send the same query with the token.", "continuationToken")],
        )
    return after
