"""The launcher: the stack comes up, cleans up after itself, and ``shopgraph dev`` runs and stops."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis
from deploy.stack import Stack, ThreadedStack
from subgraphs.kit.migrate import libpq_url
from tests.support.graphql import gql, gql_sync
from tests.support.processes import descendants, wait_gone


def test_every_subgraph_is_healthy(stack: ThreadedStack, sync_client: httpx.Client) -> None:
    assert set(stack.urls) >= set(stack.subgraphs)
    for name in stack.subgraphs:
        response = sync_client.get(stack.base_url(name) + "/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "subgraph": name}


async def test_subgraphs_answer_graphql_from_an_async_test(stack: ThreadedStack) -> None:
    for name in stack.subgraphs:
        result = await gql(stack.url(name), "{ _service { sdl } }")
        assert "@key" in result["data"]["_service"]["sdl"], name


def test_subgraphs_answer_graphql_from_a_sync_test(stack: ThreadedStack) -> None:
    result = gql_sync(stack.url("users"), "{ __typename }")
    assert result == {"data": {"__typename": "Query"}}


def test_stack_runs_in_a_fresh_database(stack: ThreadedStack) -> None:
    assert make_url(stack.settings.database_url).database.startswith("shopgraph_test_")  # type: ignore[union-attr]
    assert stack.settings.redis_prefix.startswith("shopgraph_test_")
    assert stack.apps["users"].state.runtime.db.statements.count > 0


@contextlib.contextmanager
def _servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The machine's servers when configured, else embedded ones that outlive the stack under test."""
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL") or stack.enter_context(EmbeddedPostgres()).url
        redis_url = os.environ.get("REDIS_URL") or stack.enter_context(EmbeddedRedis()).url
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("REDIS_URL", redis_url)
        yield database_url, redis_url


async def test_fresh_database_and_redis_keys_are_removed_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    with _servers(monkeypatch) as (server_url, redis_url):
        async with Stack(subgraphs=("users",), fresh_database=True) as running:
            assert running.settings is not None
            database = make_url(running.settings.database_url).database
            prefix = running.settings.redis_prefix
            r = aioredis.from_url(redis_url)
            await r.set(prefix + "users:probe", "1")
            assert await r.exists(prefix + "users:probe")

        conn = await asyncpg.connect(libpq_url(server_url))
        try:
            assert not await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", database)
        finally:
            await conn.close()
        assert [key async for key in r.scan_iter(match=prefix + "*")] == []
        await r.aclose()


def test_threaded_stack_reports_a_failed_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(RuntimeError, match="failed to start"):
        Stack(subgraphs=("users",)).start_in_thread()


def _free_port_base(count: int = 5) -> int:
    """A port P with P..P+count-1 free on 127.0.0.1."""
    for base in range(20000, 60000, 97):
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError("no free port range")


def test_shopgraph_dev_serves_and_stops_cleanly_on_sigint() -> None:
    with tempfile.TemporaryDirectory(prefix="shopgraph-dev-") as data_dir:
        _run_dev_and_interrupt(Path(data_dir))


def _run_dev_and_interrupt(data_dir: Path) -> None:
    base = _free_port_base()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SHOPGRAPH_DATA_DIR"] = str(data_dir)  # embedded servers, throw-away data
    shopgraph = Path(sys.executable).parent / "shopgraph"
    proc = subprocess.Popen(
        [str(shopgraph), "dev", "--port-base", str(base)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        output: list[str] = []
        deadline = time.monotonic() + 240
        while not any("Press Ctrl-C" in line for line in output):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            output.append(line)
        text = "".join(output)
        served = dict(re.findall(r"^\s+(\w+)\s+(http://\S+)/graphql$", text, re.MULTILINE))
        assert served, text
        assert served["users"] == f"http://127.0.0.1:{base + 1}"  # the dev port layout
        for name, url in served.items():
            response = httpx.get(url + "/health", timeout=10)
            assert response.status_code == 200 and response.json()["status"] == "ok", name

        children = descendants(proc.pid)
        assert children, "the embedded servers run as children of shopgraph dev"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, text + rest
        assert "Stopped." in rest
        assert wait_gone(children) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
