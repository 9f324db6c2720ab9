"""Embedded PostgreSQL and Redis: they start, answer, and stop leaving no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import asyncpg
import redis

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.support.processes import alive, descendants, wait_gone


async def test_postgres_starts_answers_and_stops() -> None:
    with EmbeddedPostgres() as pg:
        assert pg.pid is not None and alive(pg.pid)
        processes = [pg.pid, *descendants(pg.pid)]
        conn = await asyncpg.connect(pg.url)
        try:
            assert await conn.fetchval("SHOW server_version_num") >= "180000"
            assert await conn.fetchval("SELECT 1 + 1") == 2
        finally:
            await conn.close()
        scratch = pg.scratch_dir
        assert scratch is not None and (scratch / "data" / "PG_VERSION").exists()
    assert wait_gone(processes) == []
    assert not scratch.exists(), "a throw-away cluster is deleted on stop"


async def test_postgres_keeps_a_given_data_dir() -> None:
    # Not under pytest's tmp_path: other pytest runs reset its root to 0700, and the
    # server runs as an unprivileged user when we are root.
    with tempfile.TemporaryDirectory() as tmp, EmbeddedPostgres(Path(tmp) / "pg") as pg:
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
        await conn.close()
        pg.stop()
        pg.start()
        conn = await asyncpg.connect(pg.url)
        assert await conn.fetchval("SELECT n FROM kept") == 7
        await conn.close()


def test_redis_starts_answers_and_stops() -> None:
    with EmbeddedRedis() as server:
        assert server.pid is not None
        pid = server.pid
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
        url = server.url
    assert wait_gone([pid]) == []
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        raise AssertionError("redis still answers after stop")
    except redis.ConnectionError:
        pass


def test_servers_die_with_their_parent() -> None:
    """If the process that started them is killed outright, the servers go too."""
    script = textwrap.dedent(
        """
        import sys, time
        from deploy.embedded import EmbeddedPostgres, EmbeddedRedis
        with EmbeddedPostgres() as pg, EmbeddedRedis() as r:
            print(pg.pid, r.pid, flush=True)
            time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        processes = [*pids, *descendants(pids[0])]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert wait_gone(processes) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
