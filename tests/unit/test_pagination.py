"""Keyset pagination helpers: opaque cursors, page sizes, and connections built from ``LIMIT n + 1`` rows."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError

from subgraphs.kit.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Connection,
    build_connection,
    cursor_timestamp,
    decode_cursor,
    encode_cursor,
    page_size,
)


def _code(error: GraphQLError) -> Any:
    return (error.extensions or {}).get("code")


# --- cursors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        [1999, "7d1c2b9e-8d4f-4c55-9e4e-1a2b3c4d5e6f"],
        ["2024-05-01T10:00:00.123456+00:00", "id"],
        ["Émile's “quoted” name / with + and =", 3],
        [0.123456789012345, "x"],
        [None, ""],
        [],
    ],
)
def test_cursor_round_trip(key: list[Any]) -> None:
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, len(key)) == key


def test_cursor_is_url_safe_and_unpadded() -> None:
    for n in range(20):
        cursor = encode_cursor(["?" * n + ">" * n, n])
        assert "=" not in cursor and "+" not in cursor and "/" not in cursor
        assert decode_cursor(cursor, 2) == ["?" * n + ">" * n, n]


def test_cursor_accepts_tuples_and_stringifies_other_values() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert decode_cursor(encode_cursor((1, Odd())), 2) == [1, "odd"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "not a cursor",
        "\ud800",  # cannot even be encoded
        "é",
        _b64(b"\xff\xfe\xfd"),  # not UTF-8
        _b64(b"{not json"),
        _b64(b'{"price": 1}'),  # JSON, but not a list
        _b64(b'"a string"'),
        _b64(b"42"),
        _b64(b"null"),
        _b64(b"[1]"),  # wrong arity
        _b64(b"[1, 2, 3]"),
        encode_cursor([1, "a"])[:-3],  # truncated
        encode_cursor(["a\x00b", "c"]),  # a NUL character PostgreSQL could not compare
        encode_cursor([["\x00"], "c"]),
    ],
)
def test_forged_cursors_are_bad_user_input(cursor: str) -> None:
    with pytest.raises(GraphQLError) as caught:
        decode_cursor(cursor, 2)
    assert _code(caught.value) == "BAD_USER_INPUT"
    assert caught.value.message == "Invalid cursor."


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "yesterday", "2026-13-01T00:00:00", None]
)
def test_out_of_range_cursor_timestamps_are_bad_user_input(value: object) -> None:
    with pytest.raises(GraphQLError) as caught:
        cursor_timestamp(value)
    assert _code(caught.value) == "BAD_USER_INPUT"


def test_cursor_timestamps_are_normalised_to_utc() -> None:
    assert cursor_timestamp("2026-11-21T08:00:00+02:00").isoformat() == "2026-11-21T06:00:00+00:00"


# --- page sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "size"), [(None, DEFAULT_PAGE_SIZE), (0, 0), (1, 1), (MAX_PAGE_SIZE, 100)])
def test_page_size(first: int | None, size: int) -> None:
    assert page_size(first) == size


@pytest.mark.parametrize("first", [-1, MAX_PAGE_SIZE + 1, 10**9])
def test_page_size_out_of_range(first: int) -> None:
    with pytest.raises(GraphQLError) as caught:
        page_size(first)
    assert _code(caught.value) == "BAD_USER_INPUT"


# --- connections ---------------------------------------------------------------------------


@strawberry.type
class Item:
    id: int
    name: str


ITEMS = [(i, f"item {i}") for i in range(1, 24)]
COUNT_CALLS: list[int] = []


async def _count() -> int:
    COUNT_CALLS.append(1)
    return len(ITEMS)


@strawberry.type
class Query:
    @strawberry.field
    def items(self, first: int | None = None, after: str | None = None) -> Connection[Item]:
        """What a subgraph resolver does: a keyset page of ``size + 1`` rows, then build_connection."""
        size = page_size(first)
        last = decode_cursor(after, 1)[0] if after else 0
        rows = [row for row in ITEMS if row[0] > last][: size + 1]
        return build_connection(
            rows,
            size,
            after=after,
            key_of=lambda row: [row[0]],
            node_of=lambda row: Item(id=row[0], name=row[1]),
            count=_count,
        )


schema = strawberry.federation.Schema(query=Query)  # PageInfo is @shareable
PAGE = """
    query($first: Int, $after: String) {
        items(first: $first, after: $after) {
            edges { cursor node { id } }
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        }
    }
"""


async def _run(query: str, **variables: Any) -> dict[str, Any]:
    result = await schema.execute(query, variable_values=variables)
    assert result.errors is None, result.errors
    assert result.data is not None
    items: dict[str, Any] = result.data["items"]
    return items


async def test_walking_all_pages_yields_every_item_once() -> None:
    seen: list[int] = []
    after: str | None = None
    pages = 0
    while True:
        page = await _run(PAGE, first=5, after=after)
        edges, info = page["edges"], page["pageInfo"]
        pages += 1
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == edges[0]["cursor"] and info["endCursor"] == edges[-1]["cursor"]
        assert [json.loads(base64.urlsafe_b64decode(e["cursor"] + "==")) for e in edges] == [
            [e["node"]["id"]] for e in edges
        ]
        seen += [e["node"]["id"] for e in edges]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == [row[0] for row in ITEMS]
    assert pages == 5  # 5 + 5 + 5 + 5 + 3


async def test_an_exactly_full_last_page_has_no_next_page() -> None:
    page = await _run(PAGE, first=3, after=encode_cursor([20]))
    assert [e["node"]["id"] for e in page["edges"]] == [21, 22, 23]
    assert page["pageInfo"]["hasNextPage"] is False


async def test_an_empty_page() -> None:
    page = await _run(PAGE, first=5, after=encode_cursor([23]))
    assert page["edges"] == []
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    zero = await _run(PAGE, first=0)
    assert zero["edges"] == [] and zero["pageInfo"]["hasNextPage"] is True


async def test_total_count_and_nodes_run_only_when_asked_for() -> None:
    COUNT_CALLS.clear()
    await _run(PAGE, first=2)
    assert COUNT_CALLS == []
    page = await _run("query { items(first: 2) { totalCount nodes { id name } } }")
    assert page == {"totalCount": 23, "nodes": [{"id": 1, "name": "item 1"}, {"id": 2, "name": "item 2"}]}
    assert COUNT_CALLS == [1]


@pytest.mark.parametrize(("variables", "message"), [({"first": 101}, "`first`"), ({"after": "bogus!"}, "cursor")])
async def test_bad_arguments_are_graphql_errors_with_a_code(variables: dict[str, Any], message: str) -> None:
    result = await schema.execute(PAGE, variable_values=variables)
    assert result.errors is not None and len(result.errors) == 1
    assert _code(result.errors[0]) == "BAD_USER_INPUT"
    assert message in result.errors[0].message
