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
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis
from deploy.stack import Stack, ThreadedStack
from subgraphs.kit.migrate import libpq_url
from tests.support.graphql import gql, gql_sync
from tests.support.processes import descendants, dev_banner, wait_gone


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


def _free_port_base(count: int = 26) -> int:
    """A port P with P..P+count-1 free on 127.0.0.1 (dev: router, subgraphs, and its SMTP sink on P+25)."""
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
    # No npm on its PATH: dev would otherwise start `npm ci` and `vite build` in the repository's
    # frontend_contract/app and router/graphiql_assets in the background, beside other workers'
    # installs there, and be interrupted in the middle of them (a half-written node_modules).
    env["PATH"] = str(shopgraph.parent)
    proc = subprocess.Popen(
        [str(shopgraph), "dev", "--port-base", str(base)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        text = dev_banner(proc, within=240)
        served = dict(re.findall(r"^\s+(\w+)\s+(http://\S+)/graphql$", text, re.MULTILINE))
        assert served, text
        assert served["users"] == f"http://127.0.0.1:{base + 1}"  # the dev port layout
        for name, url in served.items():
            response = httpx.get(url + "/health", timeout=10)
            assert response.status_code == 200 and response.json()["status"] == "ok", name

        # Mail: a reset requested through the router reaches dev's SMTP sink, its page and the console.
        reset = 'mutation { requestPasswordReset(input: {email: "shopper@shopgraph.dev"}) { ok } }'
        assert gql_sync(f"http://127.0.0.1:{base}/graphql", reset)["data"] == {"requestPasswordReset": {"ok": True}}
        mails: list[dict[str, Any]] = []
        while not mails:
            assert time.monotonic() < deadline, "no mail at /dev/mail.json"
            listed = httpx.get(f"http://127.0.0.1:{base}/dev/mail.json", timeout=10).json()
            mails = [m for m in listed if m["to"] == ["shopper@shopgraph.dev"]]
            time.sleep(0.2)
        (mail,) = mails
        assert mail["subject"] == "Reset your Shopgraph password"
        (link,) = mail["links"]
        assert isinstance(link, str)
        assert link.startswith(f"http://127.0.0.1:{base}/reset-password?token=")
        page = httpx.get(f"http://127.0.0.1:{base}/dev/mail", timeout=10).text
        assert "Reset your Shopgraph password" in page and f'href="/dev/mail/{mail["id"]}"' in page
        assert link in httpx.get(f"http://127.0.0.1:{base}/dev/mail/{mail['id']}", timeout=10).text

        children = descendants(proc.pid)
        assert children, "the embedded servers run as children of shopgraph dev"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, text + rest
        assert "Stopped." in rest
        assert f"Mail: http://127.0.0.1:{base}/dev/mail" in text
        printed = text + rest  # each mail's subject and links, printed as it arrives
        assert f"--- mail to shopper@shopgraph.dev: Reset your Shopgraph password\n    {link}\n" in printed
        assert wait_gone(children) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
