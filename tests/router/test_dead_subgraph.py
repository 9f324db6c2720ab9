"""Issue 18, finding 14: a subgraph killed under load fails its in-flight fetches at once.

Attack (black box): the inventory subgraph runs in a process of its own on a
listening socket its parent hands over once it serves (the parent keeps no copy:
``shopgraph dev --processes``'s children bind their own), each answer held 0.2 s
so fetches are in flight; 20 clients query products and their shipping estimates
back to back; the process is killed with SIGKILL. Before the fix, with
the asyncio loop, requests whose connection was lost between connect and send
waited for the whole 30 s deadline (504); with uvloop one answered HTTP 500
(``RuntimeError: unable to perform operation on <TCPTransport closed=True>``).
Now every request is answered 200 with the products (partial data) and a
subgraph error, on either loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from router.config import Settings
from router.http import create_app
from tests.router.router_harness import ThreadServer, compose, subgraph_app

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ topProducts(first: 2) { name shippingEstimate } }"

_SUBGRAPH = """
import asyncio, sys, uvicorn
from tests.router.router_harness import Counter, subgraph_app
app = subgraph_app(Counter({}))
async def slow(scope, receive, send):
    if scope["type"] == "http":
        await asyncio.sleep(0.2)
    await app(scope, receive, send)
uvicorn.run(slow, fd=int(sys.argv[1]), log_level="error", lifespan="off")
"""


@pytest.fixture
def reviews_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SUBGRAPH, str(sock.fileno())], cwd=ROOT, env=os.environ.copy(), pass_fds=[sock.fileno()]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the reviews subgraph exited"
            try:
                httpx.post(url + "/shop/inventory/", json={"query": "{__typename}"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the reviews subgraph did not start"
                time.sleep(0.1)
        # Handed over. A parent that kept it would leave the connections the child had not yet
        # accepted when it died queued forever: silent, like a busy subgraph's (see
        # router/subgraph_client.py), and the router waits for its deadline there. Under load,
        # CI met that: every in-flight fetch was still queued when the child died.
        sock.close()
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        sock.close()


class LoopServer(ThreadServer):
    """A ThreadServer on a chosen event loop implementation."""

    def __init__(self, app: Any, loop: str) -> None:
        super().__init__(app)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", access_log=False, loop=loop
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_a_subgraph_killed_under_load_fails_in_flight_fetches_at_once(
    subgraphs: ThreadServer, reviews_process: tuple[subprocess.Popen[bytes], str], loop: str
) -> None:
    proc, reviews = reviews_process
    sdl = compose("shop", subgraphs.url, {"inventory": reviews + "/shop/inventory/"})
    settings = Settings(anonymous_only=True, rate_limits=False, request_timeout=30, subgraph_timeout=30)
    with LoopServer(create_app(sdl, settings), loop) as router:
        url = router.url + "/graphql"
        answers: list[httpx.Response] = []
        killed = asyncio.Event()
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=40)) as client:
            ok = await client.post(url, json={"query": QUERY})
            assert ok.status_code == 200 and "errors" not in ok.json(), ok.text

            async def load() -> None:
                stop_at: float | None = None
                while stop_at is None or time.monotonic() < stop_at:
                    if stop_at is None and killed.is_set():
                        stop_at = time.monotonic() + 1.0  # keep asking for a second after the kill
                    answers.append(await client.post(url, json={"query": QUERY}))

            async def kill() -> None:
                await asyncio.sleep(0.6)  # 20 clients, 0.2 s per answer: fetches in flight
                os.kill(proc.pid, signal.SIGKILL)
                killed.set()

            await asyncio.gather(kill(), *(load() for _ in range(20)))
    failed = [a for a in answers if a.status_code != 200]
    assert not failed, [(a.status_code, a.text[:200]) for a in failed[:5]]
    partial = [a.json() for a in answers if a.json().get("errors")]
    assert partial, "no request saw the dead subgraph"
    for body in partial:
        assert [p["name"] for p in body["data"]["topProducts"]], body  # the products, from their own subgraph
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes <= {"SUBREQUEST_HTTP_ERROR", "DOWNSTREAM_SERVICE_ERROR"}, body


async def test_a_slow_subgraph_that_still_answers_is_not_taken_for_dead(subgraphs: ThreadServer, counter: Any) -> None:
    """Every answer takes 1.5 s, longer than a probe's 1 s: fetches are silent for a while, and
    none is failed for it (silence is not death: a busy subgraph's checkouts are in flight)."""
    app = subgraph_app(counter)

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(1.5)
        await app(scope, receive, send)

    with ThreadServer(slow) as inventory:
        sdl = compose("shop", subgraphs.url, {"inventory": inventory.url + "/shop/inventory/"})
        settings = Settings(anonymous_only=True, rate_limits=False, request_timeout=30, subgraph_timeout=30)
        with ThreadServer(create_app(sdl, settings)) as router:
            async with httpx.AsyncClient(timeout=60) as client:

                async def later(i: int) -> httpx.Response:
                    await asyncio.sleep(0.25 * i)  # staggered: some answers land inside each probe's window
                    return await client.post(router.url + "/graphql", json={"query": QUERY})

                answers = await asyncio.gather(*(later(i) for i in range(12)))
    for a in answers:
        assert a.status_code == 200 and "errors" not in a.json(), a.text
