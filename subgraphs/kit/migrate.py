"""Plain-SQL migrations, one ordered set per subgraph, tracked in its own schema.

Files are ``migrations/NNNN_name.sql`` beside the subgraph's models; each one
runs in its own transaction and is recorded in ``<schema>.schema_migrations``.
An advisory lock makes concurrent start-ups (several replicas) safe.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url


def libpq_url(url: str) -> str:
    """A SQLAlchemy-style URL → the plain form asyncpg.connect() accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def migration_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.sql") if p.name[:4].isdigit())


async def migrate(url: str, schema: str, directory: Path) -> list[str]:
    """Apply the pending migrations of one subgraph; return the versions applied."""
    conn = await asyncpg.connect(libpq_url(url))
    applied: list[str] = []
    try:
        async with conn.transaction():
            # Serialise migrators of the same schema across processes.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')}
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            for path in migration_files(directory):
                version = path.stem
                if version in done:
                    continue
                await conn.execute(path.read_text())
                await conn.execute(f'INSERT INTO "{schema}".schema_migrations (version) VALUES ($1)', version)
                applied.append(version)
    finally:
        await conn.close()
    return applied
