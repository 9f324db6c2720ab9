"""Helpers for per-request dataloaders: one query per batch, results in key order."""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Literal, TypeVar, cast, overload

from sqlalchemy import Column, ColumnElement, Row, Select, Table, any_, bindparam, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database, Read, Record

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


def parse_uuid(value: object) -> uuid.UUID | None:
    """An ID from the client: a malformed one simply matches nothing."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def in_keys(column: ColumnElement[Any], keys: Sequence[Any]) -> ColumnElement[bool]:
    """``column = ANY($1)``, one array parameter, rather than ``column IN ($1, …, $n)``: the SQL is the
    same for every number of keys, so each connection prepares it once (an IN list was a new statement
    per distinct batch size, re-prepared by asyncpg and re-planned by PostgreSQL), and no bind
    parameter is built per key."""
    return column == any_(literal(list(keys), ARRAY(column.type)))


def one_per_key(keys: Sequence[K], rows: Iterable[R], key_of: Callable[[R], K]) -> list[R | None]:
    """Align rows to keys: a missing key gets None (a dataloader's contract)."""
    found = {key_of(r): r for r in rows}
    return [found.get(k) for k in keys]


def many_per_key(keys: Sequence[K], rows: Iterable[R], key_of: Callable[[R], K]) -> list[list[R]]:
    groups: dict[K, list[R]] = defaultdict(list)
    for r in rows:
        groups[key_of(r)].append(r)
    return [groups.get(k, []) for k in keys]


@overload
async def rows_by(
    db: Database | AsyncConnection,
    source: Table | Select[Any],
    column: ColumnElement[Any],
    keys: Sequence[K],
    *,
    many: Literal[False] = False,
    order_by: Sequence[ColumnElement[Any]] = (),
) -> list[Row[Any] | None]: ...


@overload
async def rows_by(
    db: Database | AsyncConnection,
    source: Table | Select[Any],
    column: ColumnElement[Any],
    keys: Sequence[K],
    *,
    many: Literal[True],
    order_by: Sequence[ColumnElement[Any]] = (),
) -> list[list[Row[Any]]]: ...


async def rows_by(
    db: Database | AsyncConnection,
    source: Table | Select[Any],
    column: ColumnElement[Any],
    keys: Sequence[K],
    *,
    many: bool = False,
    order_by: Sequence[ColumnElement[Any]] = (),
) -> list[Row[Any] | None] | list[list[Row[Any]]]:
    """A dataloader's batch in one query: the rows of ``source`` whose ``column`` is in ``keys``,
    aligned to ``keys``. One row (or None) per key, or with ``many`` a list per key in ``order_by``
    order. ``column`` must be among the selected columns; ``db`` may be an open connection.

    A whole table read through the ``Database`` (the loaders' case) runs on asyncpg directly
    (``Database.fetch``): ``Record`` rows, read like SQLAlchemy's by attribute."""
    if isinstance(source, Table) and isinstance(db, Database) and isinstance(column, Column):
        records = await db.fetch(_by_keys(source, column, tuple(order_by)), keys=list(keys))
        name = column.name

        def record_key(record: Record) -> Any:
            return record[name]

        # Typed as SQLAlchemy rows for the loaders: a Record reads the same by attribute.
        aligned = many_per_key(keys, records, record_key) if many else one_per_key(keys, records, record_key)
        return cast(list[Row[Any] | None] | list[list[Row[Any]]], aligned)
    statement = (select(source) if isinstance(source, Table) else source).where(in_keys(column, keys))
    statement = statement.order_by(*order_by)
    if isinstance(db, AsyncConnection):
        rows = (await db.execute(statement)).all()
    else:
        async with db.read() as conn:
            rows = (await conn.execute(statement)).all()

    def key_of(row: Row[Any]) -> Any:
        return row._mapping[column]

    return many_per_key(keys, rows, key_of) if many else one_per_key(keys, rows, key_of)


# Keyed by the expressions themselves, which hash by identity: callers pass ``order_by`` built once
# (module level); the bound keeps a caller that builds it per call from growing the cache forever.
@functools.lru_cache(maxsize=256)
def _by_keys(table: Table, column: Column[Any], order_by: tuple[ColumnElement[Any], ...]) -> Read:
    """``SELECT <table's columns> FROM table WHERE column = ANY($1) ORDER BY …``, compiled once."""
    keys = bindparam("keys", type_=ARRAY(column.type))
    return Read(select(table).where(column == any_(keys)).order_by(*order_by))
