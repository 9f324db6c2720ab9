"""Database access for one subgraph: an async engine pinned to its own schema.

Each subgraph owns one PostgreSQL schema and sets ``search_path`` to it on every
connection, so its SQL never names (and cannot reach by accident) another
subgraph's tables.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import Column, DateTime, event, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


def async_url(url: str) -> str:
    """``postgresql://…`` (what users and libpq tools write) → the asyncpg dialect URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def _loopback(url: str) -> bool:
    host = make_url(url).host
    if not host or host == "localhost" or host.startswith("/"):
        return True  # no host: a Unix socket
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect_args(url: str, schema: str) -> dict[str, Any]:
    """asyncpg's connection arguments: the schema on the search path; no TLS over loopback.

    asyncpg's default (``sslmode=prefer``) first offers TLS and builds an SSL
    context for every new connection, a measurable cost on a busy pool for a
    link that never leaves the machine; an explicit ``ssl``/``sslmode`` wins."""
    args: dict[str, Any] = {"server_settings": {"search_path": schema, "application_name": schema}}
    query = make_url(url).query
    if _loopback(url) and "ssl" not in query and "sslmode" not in query:
        args["ssl"] = False
    return args


class StatementCounter:
    """Counts the SQL statements a database runs, on either path; query-count tests read it, and
    may add ``observers`` (called with each statement's SQL)."""

    def __init__(self) -> None:
        self.count = 0
        self.observers: list[Callable[[str], None]] = []

    def ran(self, sql: str) -> None:
        self.count += 1
        for observe in self.observers:
            observe(sql)

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.ran(statement)  # SQLAlchemy's before_cursor_execute


class Record(asyncpg.Record):  # type: ignore[misc]
    """A row read on asyncpg directly: by attribute (``row.id``) as SQLAlchemy's rows, or by name.
    asyncpg's own methods win over columns of the same name (``get``, ``keys``, ``values``,
    ``items``): label such a column otherwise."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON documents as Python values, as SQLAlchemy's JSONB type reads them.
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads
        )


class _ReadPool:
    """A few asyncpg connections for autocommit reads, handed out in a few microseconds (asyncpg's
    own pool costs as much as the query: it resets every connection on release). A connection whose
    statement failed or was cancelled is closed, never reused: its state is unknown."""

    def __init__(self, url: str, schema: str, size: int) -> None:
        self._url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._args = connect_args(url, schema)
        self._size = size
        self._open = 0
        self._idle: list[asyncpg.Connection] = []
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[Record]:
        conn = await self._acquire()
        try:
            rows: list[Record] = await conn.fetch(sql, *args, record_class=Record)
        except BaseException:
            self._discard(conn)
            raise
        self._release(conn)
        return rows

    async def _acquire(self) -> asyncpg.Connection:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._open -= 1
            if self._open < self._size:
                self._open += 1
                opened: asyncpg.Connection | None = None
                try:
                    opened = await asyncpg.connect(self._url, **self._args)
                    await _init_connection(opened)
                except BaseException:
                    if opened is not None:  # failed or cancelled half-way: it must not outlive its slot
                        opened.terminate()
                    self._open -= 1
                    self._wake()
                    raise
                return opened
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # woken when a connection is back (or closed): take it on the next turn
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:
                    self._wake()  # it was woken for us: pass that on
                raise

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, conn: asyncpg.Connection) -> None:
        if self._closed:
            self._discard(conn)
            return
        self._idle.append(conn)
        self._wake()

    def _discard(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        self._open -= 1
        self._wake()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            await conn.close()


class Database:
    """The engine of one subgraph, its schema on the search path."""

    # At most 10 connections per subgraph: four subgraphs (and a test stack beside a
    # benchmark stack) share one server's max_connections (100 by default), and
    # connections stay open once made. ``pool_size`` are SQLAlchemy's (transactions,
    # the other reads), ``read_pool_size`` serve ``fetch`` (hot reads on asyncpg
    # directly). No overflow: overflow connections close on return, and under load
    # the pool churned, each new connection paying for its start-up and re-preparing
    # its statements (a third of the subgraphs' CPU in the admin dashboard's profile).
    # Both pools open connections only as concurrency needs them.
    def __init__(
        self, url: str, schema: str, *, pool_size: int = 5, max_overflow: int = 0, read_pool_size: int = 5
    ) -> None:
        self.schema = schema
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
            connect_args=connect_args(url, schema),
        )
        # Reads run without BEGIN/ROLLBACK: at READ COMMITTED each statement sees
        # its own snapshot inside a transaction too, so the two extra round trips
        # per read bought nothing. Same pool, same event listeners.
        self._reads: AsyncEngine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.statements = StatementCounter()
        event.listen(self.engine.sync_engine, "before_cursor_execute", self.statements)
        self._fetches = _ReadPool(url, schema, read_pool_size)

    async def fetch(self, read: Read, **params: Any) -> list[Record]:
        """Run a read on asyncpg directly, outside a transaction: no SQLAlchemy execution (statement
        cache key, compiled-cache lookup, execution context, result rows, greenlet hop), which cost
        several times the driver's own work per statement. Rows are ``Record``s."""
        sql, names = read.compiled(self.engine.dialect)
        try:
            args = tuple(params[name] for name in names)
        except KeyError as exc:
            raise TypeError(f"no value for the parameter {exc} of {sql!r}") from None
        rows = await self._fetches.fetch(sql, args)
        self.statements.ran(sql)
        return rows

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads, each statement on its own (autocommit): write with ``transaction``."""
        async with self._reads.connect() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        await self._fetches.close()
        await self.engine.dispose()


def uuid_pk() -> Column[uuid.UUID]:
    """A ``uuid`` primary key generated by PostgreSQL."""
    return Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


def created_at() -> Column[datetime]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()"))


class Read:
    """A read written with SQLAlchemy Core, compiled once to asyncpg's SQL for ``Database.fetch``.

    Every parameter is a named ``bindparam`` given to ``fetch`` by name (``bindparam("keys",
    type_=ARRAY(UUID))`` renders as ``$1::UUID[]``); a parameter not given is an error, never a
    value left over from the compilation (an unnamed literal in the statement is one too)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: tuple[str, tuple[str, ...]] | None = None

    def compiled(self, dialect: Any) -> tuple[str, tuple[str, ...]]:
        """The SQL and its parameters' names, in position order."""
        if self._compiled is None:
            compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            self._compiled = str(compiled), tuple(compiled.positiontup or ())
        return self._compiled
