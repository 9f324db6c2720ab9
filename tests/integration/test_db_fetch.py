"""kit.db's direct asyncpg reads (``Database.fetch`` of a ``Read``): rows, parameters, counting, its pool."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import Integer, bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from deploy.stack import ThreadedStack
from subgraphs.kit.db import Database, Read
from tests.support.wait import until

VALUES = Read(
    select(
        literal_column("'6f1d5c1e-2f57-4b47-9d0e-7e6a3b9f1c20'::uuid").label("id"),
        literal_column("""'{"city": "Springfield", "lines": [1, 2]}'::jsonb""").label("doc"),
    ).where(
        literal_column("'6f1d5c1e-2f57-4b47-9d0e-7e6a3b9f1c20'::uuid")
        == func.any(bindparam("ids", type_=ARRAY(UUID())))
    )
)
SLEEP = Read(
    select(func.pg_sleep(bindparam("seconds", type_=Integer)).label("slept"), bindparam("n", type_=Integer).label("n"))
)

# The other connections' statements now sleeping in pg_sleep (what SLEEP runs).
SLEEPING = Read(
    select(func.count().label("n"))
    .select_from(text("pg_stat_activity"))
    .where(
        text(
            "datname = current_database() AND state = 'active' AND query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()"
        )
    )
)


@pytest.fixture
async def db(stack: ThreadedStack) -> AsyncIterator[Database]:
    assert stack.settings is not None
    database = Database(stack.settings.database_url_for("orders"), "orders", pool_size=1, read_pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


async def test_rows_read_by_attribute_or_name_with_json_decoded_and_every_statement_counted(db: Database) -> None:
    seen: list[str] = []
    db.statements.observers.append(seen.append)
    wanted = uuid.UUID("6f1d5c1e-2f57-4b47-9d0e-7e6a3b9f1c20")
    rows = await db.fetch(VALUES, ids=[uuid.uuid4(), wanted])
    assert len(rows) == 1
    assert rows[0].id == rows[0]["id"] == wanted
    assert rows[0].doc == {"city": "Springfield", "lines": [1, 2]}
    with pytest.raises(AttributeError):
        _ = rows[0].missing
    assert await db.fetch(VALUES, ids=[]) == []
    assert db.statements.count == 2 and len(seen) == 2 and "$1::UUID[]" in seen[0]


async def test_a_parameter_not_given_is_an_error_not_a_leftover(db: Database) -> None:
    with pytest.raises(TypeError, match="'n'"):
        await db.fetch(SLEEP, seconds=0)
    assert (await db.fetch(SLEEP, seconds=0, n=7))[0].n == 7


async def test_the_pool_is_bounded_and_survives_failed_and_cancelled_statements(db: Database) -> None:
    pids = Read(select(func.pg_backend_pid().label("pid"), bindparam("n", type_=Integer).label("n")))
    rows = await asyncio.gather(*(db.fetch(pids, n=n) for n in range(6)))
    assert [r[0].n for r in rows] == list(range(6))
    assert len({r[0].pid for r in rows}) <= 2  # read_pool_size

    with pytest.raises(asyncpg.DivisionByZeroError):
        await db.fetch(Read(select((literal_column("1") / bindparam("zero", type_=Integer)).label("x"))), zero=0)
    slow = asyncio.create_task(db.fetch(SLEEP, seconds=5, n=1))

    async def sleeping() -> bool:
        return bool((await db.fetch(SLEEPING))[0].n)

    await until(sleeping, what="the slow statement running in PostgreSQL")
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    # The connections of the failed and cancelled statements were closed, not reused; new ones serve.
    rows = await asyncio.gather(*(db.fetch(pids, n=n) for n in range(4)))
    assert [r[0].n for r in rows] == list(range(4))
