"""The whole stack in one process: databases, migrations, seeds, the subgraph servers.

``Stack`` is an async context manager used by ``shopgraph dev`` and by the test
suite. Real servers come from ``DATABASE_URL`` / ``REDIS_URL`` when set, else
embedded ones are started. Each subgraph's ASGI app is served by its own
uvicorn server on 127.0.0.1, all in the caller's event loop (``ThreadedStack``
runs the same thing in a background thread with a loop of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import importlib
import importlib.util
import inspect
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import asyncpg
import httpx
import redis.asyncio as aioredis
import uvicorn
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.types import ASGIApp

from subgraphs.kit.config import SUBGRAPHS, Settings, env_flag
from subgraphs.kit.migrate import libpq_url, migrate

from .embedded import backing_detail, backing_services
from .layout import DEV_PORT_BASE as DEV_PORT_BASE
from .layout import PROJECT_ROOT as PROJECT_ROOT
from .metrics_scope import scoped_metrics
from .progress import Progress, Step
from .tracing import as_service

T = TypeVar("T")
# The router builds its app from the running stack (its URLs and settings).
RouterFactory = Callable[["Stack"], ASGIApp | Awaitable[ASGIApp]]


def available_subgraphs() -> tuple[str, ...]:
    """The subgraphs whose package has an ``app`` module (all four once they have landed)."""
    return tuple(name for name in SUBGRAPHS if importlib.util.find_spec(f"subgraphs.{name}.app") is not None)


def router_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("router.compose", "router.http"))


def subgraph_sdl(subgraph: str) -> str:
    """The subgraph's Federation 2 SDL, as ``_service { sdl }`` serves it."""
    sdl: str = importlib.import_module(f"subgraphs.{subgraph}.schema").schema.as_str()
    return sdl.rstrip() + "\n"


def compose_router(stack: Stack) -> ASGIApp:
    """The router over the running subgraphs: their SDL composed by ``router.compose``,
    served by ``router.http``, verifying tokens with the users JWKS."""
    compose = importlib.import_module("router.compose")
    http = importlib.import_module("router.http")
    assert stack.settings is not None
    sources = [
        compose.SubgraphSource(name=name, url=stack.urls[name], sdl=subgraph_sdl(name)) for name in stack.subgraphs
    ]
    base = http.Settings.from_env()
    settings = dataclasses.replace(
        base,
        jwks_urls=(stack.settings.jwks_url,),
        service_secret=stack.settings.service_secret,
        cors_origin_regex=http.LOCALHOST_ORIGINS,  # dev: a storefront served from another local port
        redis_url=stack.settings.redis_url or None,
        redis_prefix=stack.settings.redis_prefix,
        # Every local client is 127.0.0.1 (a browser's tabs, the suite's fan-out tests with 500
        # WebSockets): the per-address cap is for a public edge, tested on its own.
        max_connections_per_address=max(base.max_connections_per_address, 4096),
        # GraphiQL's plan panel: the plan and fetch timings of a query, for clients that ask (never in
        # production: deploy/router.yaml leaves query_plan.expose off).
        expose_query_plan=True,
        # The catalog serves its media from its own origin here (plain http): the page may show them.
        storefront_img_src=(stack.urls["catalog"].rsplit("/graphql", 1)[0],),
        # The storefront's refresh token as an HttpOnly cookie, as deploy/router.yaml has it.
        session_cookie="shopgraph_refresh",
        session_cookie_subgraph="users",
    )
    app: ASGIApp = http.create_app(compose.compose(sources), settings)
    return app


def migrations_dir(subgraph: str) -> Path:
    spec = importlib.util.find_spec(f"subgraphs.{subgraph}")
    assert spec is not None and spec.submodule_search_locations, subgraph
    return Path(next(iter(spec.submodule_search_locations))) / "migrations"


async def migrate_all(settings: Settings, subgraphs: Sequence[str]) -> dict[str, list[str]]:
    """Apply every subgraph's pending migrations (schemas are independent: side by side); return
    the versions applied per subgraph."""
    applied = await asyncio.gather(
        *(migrate(settings.database_url_for(name), name, migrations_dir(name)) for name in subgraphs)
    )
    return dict(zip(subgraphs, applied, strict=True))


@dataclass
class SeedResult:
    accounts: list[tuple[str, str, str]] = field(default_factory=list)  # (role, email, password)
    products: int = 0


async def seed_all(settings: Settings, subgraphs: Sequence[str], step: Step | None = None) -> SeedResult:
    """Run the demo seeds that exist (``subgraphs.<name>.seed:seed``), side by side; they are
    idempotent. A seed that takes ``progress`` reports its counted work to ``step``'s bar."""
    names = [name for name in subgraphs if importlib.util.find_spec(f"subgraphs.{name}.seed") is not None]

    async def run(name: str) -> Any:
        seed = importlib.import_module(f"subgraphs.{name}.seed").seed
        if step is not None and "progress" in inspect.signature(seed).parameters:
            return await seed(settings, progress=lambda done, total: step.count(done, total, "products"))
        return await seed(settings)

    result = SeedResult()
    for name, seeded in zip(names, await asyncio.gather(*(run(name) for name in names)), strict=True):
        if name == "users":
            result.accounts = list(seeded)
        elif name == "catalog":
            result.products = int(seeded)
    return result


async def create_database(server_url: str, prefix: str = "shopgraph_test_") -> str:
    """CREATE DATABASE <prefix><hex> on the server; return its URL."""
    name = f"{prefix}{secrets.token_hex(6)}"
    conn = await asyncpg.connect(libpq_url(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    """DROP the database ``url`` names, connecting to the server's ``postgres`` database."""
    target = make_url(url)
    conn = await asyncpg.connect(libpq_url(target.set(database="postgres").render_as_string(False)))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_redis_keys(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (SCAN + DEL); return how many."""
    client = aioredis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


def serve_environment(settings: Settings) -> dict[str, str]:
    """What ``shopgraph serve NAME`` needs to serve a subgraph configured like this stack's."""
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SHOPGRAPH_REDIS_PREFIX": settings.redis_prefix,
        "SHOPGRAPH_SERVICE_SECRET": settings.service_secret,
        "SHOPGRAPH_ROUTER_ONLY": "1" if settings.router_only else "0",
        "SHOPGRAPH_OUTBOX_RELAY": "1" if settings.outbox_relay else "0",
        "SHOPGRAPH_CURRENCY": settings.currency,
        "SHOPGRAPH_LOG_FORMAT": os.environ.get("SHOPGRAPH_LOG_FORMAT") or "text",
    }
    env |= {f"SHOPGRAPH_SUBGRAPH_{n.upper()}_URL": url for n, url in settings.subgraph_urls.items()}
    env |= {f"{n.upper()}_DATABASE_URL": url for n, url in settings.database_urls.items()}
    return env


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()


def freeze_startup_objects() -> None:
    """Move everything allocated so far (schemas, metadata, engines: ~1M objects) out of the GC's scans.

    Without it every full collection walks them all: with subscriptions fanning
    events out (allocating per subscriber per event) that was a pause of 0.1-1 s
    every few seconds in the orders process, the worst outlier in event latency.
    """
    gc.collect()
    gc.freeze()


def _import_apps(subgraphs: Sequence[str], router: bool) -> None:
    """Import what the stack will serve (errors surface again, in order, when it is used)."""
    modules = [f"subgraphs.{name}.app" for name in subgraphs]
    if router and router_available():
        modules += ["router.compose", "router.http"]
    for module in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(module)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class _Served:
    server: _Server
    task: asyncio.Task[None]


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


class Stack:
    """Databases + migrations + (seeds) + the subgraph servers, started and stopped together.

    - ``fresh_database``: run in a new ``shopgraph_test_<hex>`` database (dropped at
      exit) with a unique Redis key prefix (its keys deleted at exit).
    - ``ports``: name -> port (``dev_ports()`` for the fixed dev ports); unlisted
      services get free ports.
    - ``router``: a factory for the router's ASGI app (``compose_router`` for ours),
      served as ``"router"`` once the subgraphs are healthy; or call
      ``start_router()`` on a running stack.
    - ``settings_overrides``: Settings fields to set, e.g. ``{"outbox_relay": False}``.
    - ``progress``: where to report each start-up step and its time (``shopgraph dev``).
    - ``backing``: (database URL, Redis URL) of servers the caller started (else
      ``backing_services``: the environment's, or embedded ones for the stack's lifetime).
    - ``processes``: each subgraph runs as ``shopgraph serve NAME`` in a process of its own
      (``shopgraph dev --processes``; ``apps`` stays empty, ``pids`` names the processes).
    """

    def __init__(
        self,
        *,
        subgraphs: Sequence[str] | None = None,
        fresh_database: bool = False,
        seed: bool = False,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        data_dir: Path | None = None,
        router: RouterFactory | None = None,
        log_level: str = "warning",
        settings_overrides: Mapping[str, object] | None = None,
        progress: Progress | None = None,
        backing: tuple[str, str] | None = None,
        processes: bool = False,
    ) -> None:
        self.subgraphs = tuple(subgraphs) if subgraphs is not None else available_subgraphs()
        self.fresh_database = fresh_database
        self.seed = seed
        self.host = host
        self.ports = dict(ports or {})
        self.data_dir = data_dir
        self.router = router
        self.log_level = log_level
        self.settings_overrides = dict(settings_overrides or {})
        self.progress = progress or Progress(enabled=False)
        self.backing = backing
        self.processes = processes
        self.pids: dict[str, int] = {}  # subgraph -> process id (``processes``)
        self.settings: Settings | None = None
        self.urls: dict[str, str] = {}  # name -> http://host:port/graphql
        self.apps: dict[str, Starlette] = {}  # subgraph name -> its app (``app.state.runtime``)
        self.router_app: ASGIApp | None = None
        self.seeded = SeedResult()
        self._served: dict[str, _Served] = {}
        self._exit = contextlib.AsyncExitStack()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._exit.aclose()

    async def _start(self) -> None:
        progress = self.progress
        # The apps' modules (strawberry schemas: ~1 s of imports) load in a thread while the
        # servers start: those are mostly waits on other processes.
        preload = threading.Thread(target=_import_apps, args=(self.subgraphs, self.router is not None), daemon=True)
        preload.start()
        if self.backing is not None:
            database_url, redis_url = self.backing
        else:
            with progress.step("PostgreSQL + Redis") as step:
                step.detail = backing_detail(self.data_dir)
                database_url, redis_url = self._exit.enter_context(backing_services(self.data_dir))
        # Imports are not safe to run from two threads at once (strawberry's partly initialised
        # modules): nothing below imports until the preload is done.
        preload.join()
        extra = dict(self.settings_overrides)
        redis_url = str(extra.pop("redis_url", redis_url))  # a Redis of the caller's (tests restart one)
        overrides: dict[str, object] = {}
        if self.fresh_database:
            database_url = await create_database(database_url)
            self._exit.push_async_callback(drop_database, database_url)
            overrides["database_urls"] = {}  # one fresh database for every subgraph
            overrides["redis_prefix"] = prefix = f"shopgraph_test_{secrets.token_hex(6)}:"
            self._exit.push_async_callback(delete_redis_keys, redis_url, prefix)

        # Listen first: every subgraph must know every other's URL before it starts.
        sockets = {name: _bind(self.host, self.ports.get(name, 0)) for name in self.subgraphs}
        for sock in sockets.values():
            self._exit.callback(sock.close)
        self.urls = {name: self._url_of(sock) + "/graphql" for name, sock in sockets.items()}
        self.settings = settings = Settings.from_env(
            database_url=database_url,
            redis_url=redis_url,
            service_secret=os.environ.get("SHOPGRAPH_SERVICE_SECRET") or secrets.token_urlsafe(32),
            # The all-in-one stack lets clients try the subgraphs directly unless told otherwise.
            **(
                {"router_only": env_flag("SHOPGRAPH_ROUTER_ONLY", default=False)}
                | overrides
                | extra
                # Overridden URLs win (e.g. a subgraph of another stack, or a dead one in a test).
                | {"subgraph_urls": self.urls | cast("dict[str, str]", extra.get("subgraph_urls", {}))}
            ),
        )

        with progress.step("migrations") as step:
            applied = await migrate_all(settings, self.subgraphs)
            step.detail = ", ".join(f"{n} +{len(v)}" for n, v in applied.items() if v) or "up to date"
        if self.seed:
            with progress.step("demo data") as step:
                self.seeded = await seed_all(settings, self.subgraphs, step)
                step.detail = f"{self.seeded.products:,} products, {len(self.seeded.accounts)} accounts"

        with progress.step("subgraphs") as step:
            if not self.processes:
                for name in self.subgraphs:
                    self.apps[name] = importlib.import_module(f"subgraphs.{name}.app").create_app(settings)
            # users first: the others fetch its JWKS to verify tokens; then the rest side by side.
            first, rest = self.subgraphs[:1], self.subgraphs[1:]
            for group in (first, rest):
                if self.processes:
                    await asyncio.gather(*(self._spawn_subgraph(n, sockets[n]) for n in group))
                else:
                    await asyncio.gather(*(self.serve_app(n, self.apps[n], sock=sockets[n]) for n in group))
            step.detail = ", ".join(self.subgraphs) + (" — a process each" if self.processes else "")

        if self.router is not None:
            with progress.step("router"):
                await self.start_router(self.router)
        # A full collection (~0.1 s) the caller need not wait for: it runs at the loop's next turn.
        asyncio.get_running_loop().call_soon(freeze_startup_objects)

    async def start_router(self, factory: RouterFactory | None = None) -> str:
        """Serve the router (default: ``compose_router``) on the running stack; return its URL."""
        app = (factory or compose_router)(self)
        self.router_app = router_app = await app if inspect.isawaitable(app) else app
        sock = _bind(self.host, self.ports.get("router", 0))
        self._exit.callback(sock.close)
        self.urls["router"] = self._url_of(sock) + "/graphql"
        options = importlib.import_module("router.ws_frames").SERVER_OPTIONS
        await self.serve_app("router", router_app, sock=sock, options=options)
        return self.urls["router"]

    # -- subgraphs in processes of their own ------------------------------------------------------

    async def _spawn_subgraph(self, name: str, sock: socket.socket, startup_seconds: float = 60.0) -> None:
        """``shopgraph serve NAME`` on ``sock``'s port, configured like the in-process apps."""
        settings = self.settings
        assert settings is not None
        host, port = sock.getsockname()[:2]
        sock.close()  # the child binds the port itself
        env = os.environ | serve_environment(settings)
        command = [sys.executable, "-m", "deploy.cli", "serve", name, "--host", host, "--port", str(port)]
        process = await asyncio.create_subprocess_exec(*command, env=env, stdin=asyncio.subprocess.DEVNULL)
        self.pids[name] = process.pid
        self._exit.push_async_callback(_terminate, process)
        deadline = time.monotonic() + startup_seconds
        wait = asyncio.create_task(process.wait())
        healthy = asyncio.create_task(self._wait_healthy(name, f"http://{host}:{port}/health", deadline))
        done, _ = await asyncio.wait({wait, healthy}, return_when=asyncio.FIRST_COMPLETED)
        if healthy not in done:
            healthy.cancel()
            raise RuntimeError(f"{name}: its process exited with {process.returncode} during start-up (see above)")
        wait.cancel()
        healthy.result()

    # -- serving ASGI apps ---------------------------------------------------------------------

    async def serve_app(
        self,
        name: str,
        app: ASGIApp,
        *,
        sock: socket.socket | None = None,
        health_path: str = "/health",
        startup_seconds: float = 60.0,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """Serve ``app`` with uvicorn in this loop until the stack exits; return its base URL.

        Waits for ASGI lifespan start-up and for ``health_path`` to answer 200. ``options``:
        more ``uvicorn.Config`` arguments.
        """
        if sock is None:
            sock = _bind(self.host, self.ports.get(name, 0))
            self._exit.callback(sock.close)
        if name in SUBGRAPHS or name == "router":
            # One registry in this process: each port's /metrics serves its own component's series.
            app = scoped_metrics(app, name)
        config = uvicorn.Config(
            # Its spans under its own service name when one process serves several (dev).
            as_service(app, f"shopgraph-{name}"),
            lifespan="on",
            log_config=None,
            log_level=self.log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
            proxy_headers=False,  # no X-Forwarded-For believed: clients are counted by their own address
            **(options or {}),
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn-{name}")
        self._served[name] = _Served(server, task)
        self._exit.push_async_callback(self._stop_app, name)

        base = self._url_of(sock)
        deadline = time.monotonic() + startup_seconds
        while not server.started:
            if task.done():
                task.result()  # re-raise its error, if it has one
                raise RuntimeError(f"{name}: the server stopped during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: not started within {startup_seconds:.0f}s")
            await asyncio.sleep(0.005)
        await self._wait_healthy(name, base + health_path, deadline)
        return base

    async def _wait_healthy(self, name: str, url: str, deadline: float) -> None:
        last = "no answer"
        # Health URLs are plain HTTP on this host: verify=False spares loading the CA bundle
        # (0.1 s of CPU per client, five of them on every start).
        async with httpx.AsyncClient(timeout=5, verify=False) as client:
            while time.monotonic() < deadline:
                try:
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.01)
        raise RuntimeError(f"{name}: {url} not healthy ({last})")

    async def _stop_app(self, name: str) -> None:
        served = self._served.pop(name)
        served.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(served.task), timeout=15)
        except TimeoutError:
            served.server.force_exit = True
            await served.task

    def _url_of(self, sock: socket.socket) -> str:
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    # -- conveniences ------------------------------------------------------------------------

    def url(self, name: str) -> str:
        """The GraphQL endpoint of a subgraph (or of the router)."""
        return self.urls[name]

    def base_url(self, name: str) -> str:
        return self.urls[name].removesuffix("/graphql")

    def start_in_thread(self, timeout: float = 300.0) -> ThreadedStack:
        """Run this stack in a background thread with its own event loop (see ThreadedStack)."""
        return ThreadedStack(self).start(timeout)


class ThreadedStack:
    """A ``Stack`` running in a thread of its own, usable from sync code and from any event loop.

    The servers keep answering while the caller blocks (sync tests) or runs its
    own loop (pytest-asyncio). ``run(coro)`` runs a coroutine in the stack's loop,
    for anything bound to it (the apps' database engines, for instance).
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def subgraphs(self) -> tuple[str, ...]:
        return self.stack.subgraphs

    @property
    def settings(self) -> Settings:
        assert self.stack.settings is not None, "the stack is not running"
        return self.stack.settings

    @property
    def urls(self) -> dict[str, str]:
        return self.stack.urls

    @property
    def apps(self) -> dict[str, Starlette]:
        return self.stack.apps

    @property
    def seeded(self) -> SeedResult:
        return self.stack.seeded

    def url(self, name: str) -> str:
        return self.stack.url(name)

    def base_url(self, name: str) -> str:
        return self.stack.base_url(name)

    def start_router(self, factory: RouterFactory | None = None) -> str:
        """Add the router to the running stack (see ``Stack.start_router``); return its URL."""
        return self.run(self.stack.start_router(factory))

    def start(self, timeout: float = 300.0) -> Self:
        self._thread = threading.Thread(target=self._main, name="shopgraph-stack", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the stack did not start within {timeout:.0f}s")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("the stack failed to start") from self._error
        return self

    def stop(self) -> None:
        """Stop the stack and wait for it; re-raise an error from its shutdown."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have ended already
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise RuntimeError("the stack failed while stopping") from self._error

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run ``coro`` in the stack's event loop and return its result."""
        assert self._loop is not None, "the stack is not running"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> Self:
        return self if self._thread else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with self.stack:
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported by start() or stop()
            self._error = exc
