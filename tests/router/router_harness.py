"""Router test harness: fixture subgraphs on a real uvicorn server, supergraphs
composed by @apollo/composition (npm), Apollo Gateway as a node process, and
our router on uvicorn, all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from strawberry.asgi import GraphQL
from strawberry.federation import Schema

from router.config import Bucket, Settings
from router.http import create_app
from router.ws_frames import SERVER_OPTIONS
from tests.router.fixtures import edge, live, shop
from tests.support.apollo_gateway import for_apollo_gateway, start_gateway
from tests.support.npm import npm_ci_once

ORACLE = Path(__file__).parent / "oracle"
# Every anonymous operation draws its cost from its caller's budget (issue 18), and every test's client
# is one address: the differential and plan tests' routers (not about demand control) get room for
# hundreds of operations a second; the budget is tested on routers given their own settings.
DIFFERENTIAL_COST_BUDGET = Bucket(1e9, 1e10)
SETS: dict[str, dict[str, Schema]] = {"shop": shop.SUBGRAPHS, "edge": edge.SUBGRAPHS, "live": live.SUBGRAPHS}


def _npm_ready() -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is required by the tests (reference tools from npm): install Node.js and npm")
    npm_ci_once(ORACLE, lambda: all((ORACLE / "node_modules" / "@apollo" / p).is_dir() for p in ("gateway", "client")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadServer:
    """uvicorn in a background thread with its own event loop."""

    def __init__(self, app: Any, port: int | None = None, *, batching: bool = True) -> None:
        """``batching``: serve as ``shopgraph router`` does (router/ws_frames.py); False: uvicorn's own protocol."""
        self.port = port or free_port()
        options = SERVER_OPTIONS if batching else {}
        cfg = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", access_log=False, **options
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Counter:
    """Counts subgraph requests (per subgraph) to check plan shapes."""

    counts: dict[str, int]

    def reset(self) -> None:
        self.counts.clear()

    def total(self) -> int:
        return sum(self.counts.values())


def subgraph_app(counter: Counter) -> Starlette:
    routes: list[Any] = []
    for set_name, graphs in SETS.items():
        for name, schema in graphs.items():
            routes.append(Mount(f"/{set_name}/{name}", GraphQL(schema)))

    async def broken(_: Request) -> Response:
        return Response("upstream exploded", status_code=500)

    async def slow(_: Request) -> Response:
        await asyncio.sleep(3)
        return Response(b'{"data": null}', media_type="application/json")

    async def slowish(_: Request) -> Response:
        await asyncio.sleep(0.3)
        return Response(b'{"data": {"me": {"name": "Slow"}}}', media_type="application/json")

    routes.insert(0, Route("/slowish", slowish, methods=["POST"]))
    routes.insert(0, Route("/broken", broken, methods=["POST"]))
    routes.insert(0, Route("/slow", slow, methods=["POST"]))
    app = Starlette(routes=routes)

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            key = scope["path"].strip("/")
            counter.counts[key] = counter.counts.get(key, 0) + 1
        await app(scope, receive, send)

    return counting  # type: ignore[return-value]


def sdl_of(schema: Schema) -> str:
    r = schema.execute_sync("{ _service { sdl } }")
    assert r.data is not None
    return str(r.data["_service"]["sdl"])


def compose(set_name: str, base_url: str, overrides: dict[str, str] | None = None) -> str:
    _npm_ready()
    services = [
        {"name": n, "url": (overrides or {}).get(n, f"{base_url}/{set_name}/{n}/"), "sdl": sdl_of(s)}
        for n, s in SETS[set_name].items()
    ]
    r = subprocess.run(
        ["node", "compose.mjs"], cwd=ORACLE, input=json.dumps(services), capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise RuntimeError(f"composition of {set_name} failed:\n{r.stderr}")
    return r.stdout


class Gateway:
    def __init__(self, supergraph: str, tmp: Path) -> None:
        self.file = tmp / "supergraph.graphql"
        self.file.write_text(for_apollo_gateway(supergraph))
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Gateway:
        self.proc = start_gateway("gateway.mjs", ORACLE, str(self.file), str(self.port))
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"


@dataclass
class Stack:
    supergraph: str
    router_url: str
    gateway_url: str | None
    counter: Counter


def make_stack(
    set_name: str, subgraphs: ThreadServer, counter: Counter, tmp: Path, gateway: bool = True, **settings: Any
) -> Iterator[Stack]:
    sdl = compose(set_name, subgraphs.url)
    with ThreadServer(
        create_app(sdl, Settings(**{"anonymous_only": True, "rate_expensive": DIFFERENTIAL_COST_BUDGET, **settings}))
    ) as router:
        if gateway:
            with Gateway(sdl, tmp) as gw:
                yield Stack(sdl, router.url + "/graphql", gw.url, counter)
        else:
            yield Stack(sdl, router.url + "/graphql", None, counter)


async def gql(
    client: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    r = await client.post(url, json={"query": query, "variables": variables or {}}, **kw)
    assert r.status_code < 500, r.text
    return r.json()  # type: ignore[no-any-return]
