"""The document worker processes (router/docpool.py, router/docworker.py) of a running
``shopgraph router`` (black box: HTTP, WebSocket, its /metrics and log; the workers found as
its child processes):

- a worker that hangs (stopped with SIGSTOP) is killed after ``limits.prepare_timeout_seconds``
  and replaced: its request gets 503 ``ROUTER_WORKER_FAILED``, the next ones are served;
- a worker killed with a request in flight: that request gets the same 503 at once, requests
  waiting behind it (HTTP and WebSocket) are served by its replacement;
- a worker killed while idle: the next request is served (never sent to the dead one);
- every replacement is counted (``shopgraph_router_document_worker_restarts_total``) and
  logged at WARNING;
- a hot reload of the supergraph reaches the workers (documents are validated against the
  new one).

One worker (``document_workers: 1``) so which worker a document reaches is known.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.router.pipeline_attacks import document_workers, spread_bomb, standalone_router
from tests.router.router_harness import ThreadServer, compose

PROTOCOL = Subprotocol("graphql-transport-ws")
TIMEOUT = 3.0  # limits.prepare_timeout_seconds of the router under test
Json = dict[str, Any]


@pytest.fixture(scope="module")
def router(
    subgraphs: ThreadServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, psutil.Process, Path]]:
    tmp = tmp_path_factory.mktemp("docworkers")
    cfg = {
        "auth": {"disabled": True},
        "limits": {"document_workers": 1, "prepare_timeout_seconds": TIMEOUT},
        "rate_limits": {
            "anonymous": {"rate": 100_000, "burst": 100_000},
            "prepare_seconds": {"rate": 1_000, "burst": 1_000},
        },
        "supergraph": {"path": str(tmp / "supergraph.graphql"), "poll_seconds": 0.2},
    }
    with standalone_router(compose("shop", subgraphs.url), tmp, cfg) as (url, proc):
        yield url, proc, tmp


def _doc(salt: str) -> str:
    """A new document (nothing cached helps), a few milliseconds of worker time."""
    return spread_bomb(6, "topProducts { name } me { name }", salt=salt)


async def _post(url: str, query: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60, trust_env=False) as c:
        return await c.post(url, json={"query": query})


def _served(r: httpx.Response) -> bool:
    body = r.json()
    return r.status_code == 200 and "errors" not in body and body["data"]["me"] == {"name": "User 1"}


def _worker_failed(r: httpx.Response) -> bool:
    body = r.json()
    return r.status_code == 503 and body["errors"][0]["extensions"]["code"] == "ROUTER_WORKER_FAILED"


def _the_worker(proc: psutil.Process, not_pid: int | None = None) -> psutil.Process:
    """The router's one worker (a new one: not ``not_pid``), once it runs."""
    deadline = time.monotonic() + 60
    while True:
        workers = [w for w in document_workers(proc) if w.pid != not_pid and w.status() != psutil.STATUS_ZOMBIE]
        if len(workers) == 1:
            return workers[0]
        assert time.monotonic() < deadline, workers
        time.sleep(0.05)


def _restarts(url: str) -> dict[str, float]:
    text = httpx.get(url.rsplit("/", 1)[0] + "/metrics", trust_env=False).text
    found = re.findall(r'shopgraph_router_document_worker_restarts_total\{reason="(\w+)"\} ([0-9.e+]+)', text)
    return {reason: float(n) for reason, n in found}


async def _ws(url: str, query: str) -> Json:
    """One operation over graphql-transport-ws: its first message after the subscribe."""
    async with connect(url.replace("http", "ws", 1), subprotocols=[PROTOCOL]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        return dict(json.loads(await ws.recv()))


async def test_a_hung_worker_is_killed_and_replaced(router: tuple[str, psutil.Process, Path]) -> None:
    url, proc, tmp = router
    assert _served(await _post(url, _doc("warm")))
    worker = _the_worker(proc)
    before = _restarts(url).get("hung", 0)
    worker.suspend()  # SIGSTOP: alive, never answers
    try:
        r = await _post(url, _doc("hung"))
        assert _worker_failed(r), r.text
        assert "hung" in r.json()["errors"][0]["message"] and r.headers["retry-after"] == "1"
    finally:
        if worker.is_running():
            worker.resume()
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE  # killed
    replacement = _the_worker(proc, not_pid=worker.pid)
    r = await _post(url, _doc("afterhang"))
    assert _served(r), r.text
    assert _restarts(url)["hung"] == before + 1
    assert f"document worker 0 (pid {worker.pid}) hung" in (tmp / "router.log").read_text()
    assert replacement.is_running()


async def test_a_worker_killed_mid_request_fails_that_request_and_serves_the_next(
    router: tuple[str, psutil.Process, Path],
) -> None:
    url, proc, tmp = router
    assert _served(await _post(url, _doc("warm2")))
    worker = _the_worker(proc)
    before = _restarts(url).get("died", 0)
    worker.suspend()  # the first document is written to it and waits; the others wait behind it
    first = asyncio.ensure_future(_post(url, _doc("killed")))
    await asyncio.sleep(0.3)
    waiting = [asyncio.ensure_future(_post(url, _doc(f"queued{i}"))) for i in range(3)]
    over_ws = asyncio.ensure_future(_ws(url, _doc("queuedws")))
    await asyncio.sleep(0.3)
    worker.kill()  # within the timeout: a death, not a hang
    r = await first
    assert _worker_failed(r), r.text
    assert "stopped" in r.json()["errors"][0]["message"]
    for w in waiting:
        assert _served(await w), (await w).text
    message = await over_ws
    assert message["type"] == "next" and message["payload"]["data"]["me"] == {"name": "User 1"}, message
    _the_worker(proc, not_pid=worker.pid)
    assert _restarts(url)["died"] == before + 1
    assert f"document worker 0 (pid {worker.pid}) died" in (tmp / "router.log").read_text()


async def test_a_worker_killed_while_idle_is_replaced_before_the_next_request(
    router: tuple[str, psutil.Process, Path],
) -> None:
    url, proc, _ = router
    assert _served(await _post(url, _doc("warm3")))
    worker = _the_worker(proc)
    worker.kill()
    worker.wait(10)
    for i in range(3):
        r = await _post(url, _doc(f"afteridlekill{i}"))
        assert _served(r), r.text
    assert _the_worker(proc, not_pid=worker.pid).pid != worker.pid


async def test_a_reloaded_supergraph_reaches_the_workers(router: tuple[str, psutil.Process, Path]) -> None:
    """Validation happens only in the workers: a field removed by a reload is refused there."""
    url, _, tmp = router
    r = await _post(url, "{ inventorySize me { name } }")
    assert "errors" not in r.json() and r.json()["data"]["me"] == {"name": "User 1"}, r.text
    path = tmp / "supergraph.graphql"
    sdl = path.read_text()
    line = "  inventorySize: Int! @join__field(graph: INVENTORY)\n"
    assert line in sdl
    path.write_text(sdl.replace(line, ""))
    deadline = time.monotonic() + 60
    salt = 0
    while True:
        salt += 1
        r = await _post(url, f"query Q{salt} {{ inventorySize me {{ name }} }}")  # new text: no cache helps
        errors = r.json().get("errors")
        if errors:
            assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", r.text
            assert "inventorySize" in errors[0]["message"]
            break
        assert time.monotonic() < deadline, "the reload never reached the workers"
        await asyncio.sleep(0.2)
    assert _served(await _post(url, _doc("afterreload")))
