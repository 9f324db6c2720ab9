"""Relay-style connections with opaque keyset cursors.

A cursor encodes the sort key of its row (e.g. ``[price, id]``), so pages stay
stable while rows are inserted, and a page costs one indexed range scan
instead of an OFFSET walk.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import strawberry
from graphql import FieldNode
from strawberry.federation.schema_directives import ListSize
from strawberry.types import Info

from .errors import bad_input
from .inputs import contains_nul

T = TypeVar("T")
Row = TypeVar("Row")

DEFAULT_PAGE_SIZE = 20
# On every connection field: the router's demand control sizes `edges`/`nodes` by `first`.
CONNECTION_SIZE = ListSize(
    slicing_arguments=["first"],
    sized_fields=["edges", "nodes"],
    assumed_size=DEFAULT_PAGE_SIZE,
    require_one_slicing_argument=False,
)
MAX_PAGE_SIZE = 100


@strawberry.federation.type(shareable=True)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    # Counting is a second query: only run it when the client asks for it.
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of items across all pages.")
    async def total_count(self) -> int:
        return await self.count()

    @strawberry.field(description="The nodes of this page, without cursors.")
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """Decode a cursor made by ``encode_cursor``; a forged one is a client error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad_input("Invalid cursor.") from exc
    # A cursor is client input like any other: no NUL characters reach SQL through it either.
    if not isinstance(key, list) or len(key) != arity or contains_nul(key):
        raise bad_input("Invalid cursor.")
    return key


def cursor_timestamp(value: object) -> datetime:
    """A timestamp from a cursor, in UTC: out-of-range or malformed is a client error, not a driver one."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise bad_input("Invalid cursor.") from exc


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0 or first > MAX_PAGE_SIZE:
        raise bad_input(f"`first` must be between 0 and {MAX_PAGE_SIZE}.")
    return first


def selects(info: Info[Any, Any], *path: str) -> bool:
    """Whether the field being resolved selects ``path`` (e.g. ``"edges", "node", "items"``); a fragment
    on the way counts as yes. Lets a resolver read in its own statement what a field would load apart."""
    nodes: list[FieldNode] = list(info._raw_info.field_nodes)
    for name in path:
        found: list[FieldNode] = []
        for node in nodes:
            for selection in node.selection_set.selections if node.selection_set else ():
                if not isinstance(selection, FieldNode):
                    return True
                if selection.name.value == name:
                    found.append(selection)
        if not found:
            return False
        nodes = found
    return True


def selects_total(info: Info[Any, Any]) -> bool:
    """Whether the connection being resolved asks for ``totalCount``: counted with the page, then."""
    return selects(info, "totalCount")


def build_connection(
    rows: Sequence[Row],
    size: int,
    *,
    after: str | None,
    key_of: Callable[[Row], Sequence[Any]],
    node_of: Callable[[Row], T],
    count: Callable[[], Awaitable[int]],
) -> Connection[T]:
    """``rows`` is the page fetched with ``LIMIT size + 1``: the extra row tells if more exist."""
    page = rows[:size]
    edges = [Edge(cursor=encode_cursor(key_of(r)), node=node_of(r)) for r in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > size,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )
