"""Tools for attacking the request pipeline of a standalone router (tests/router/test_edge_pipeline.py,
tests/perf/test_edge_attack_bench.py):

- :func:`standalone_router`: ``shopgraph router`` in a process of its own (YAML config), so
  its event loop and memory are its own;
- :class:`LoopLag`: a loop-lag probe from outside: ``GET /health`` on one keep-alive
  connection every 5 ms; the longest answer is the longest time the router's event loop
  was held (a blocked loop answers nothing);
- the attack documents of issue 18.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.router.router_harness import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def standalone_router(sdl: str, tmp: Path, config: dict[str, Any]) -> Iterator[tuple[str, psutil.Process]]:
    """``python -m deploy.cli router`` over ``sdl`` with ``config`` (YAML sections); its URL and process."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "supergraph.graphql").write_text(sdl)
    full = {"supergraph": {"path": str(tmp / "supergraph.graphql"), "poll_seconds": 0}, **config}
    (tmp / "router.yaml").write_text(json.dumps(full))  # JSON is YAML
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGRAPH_") and k != "REDIS_URL"}
    port = free_port()
    log = (tmp / "router.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "router", "--config", str(tmp / "router.yaml"), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / "router.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "router did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/graphql", psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class LoopLag:
    """``async with LoopLag(url) as lag``: ``lag.max`` (seconds) is the longest ``/health`` answer
    while the block ran, ``lag.median`` the typical one."""

    def __init__(self, graphql_url: str, every: float = 0.005) -> None:
        self.url = graphql_url.rsplit("/", 1)[0] + "/health"
        self.every = every
        self.samples: list[float] = []
        self.answered_at: list[float] = []  # perf_counter() of each answer
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            while True:
                start = time.perf_counter()
                await client.get(self.url)
                self.answered_at.append(time.perf_counter())
                self.samples.append(self.answered_at[-1] - start)
                await asyncio.sleep(self.every)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.ensure_future(self._run())
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def max(self) -> float:
        return max(self.samples, default=0.0)

    def answered_between(self, start: float, end: float) -> int:
        """Probes answered between two perf_counter() instants (the loop served them meanwhile)."""
        return sum(1 for t in self.answered_at if start <= t <= end)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else 0.0


def spread_bomb(n: int, selection: str, on: str = "Query", salt: str = "") -> str:
    """``{ ...F0 … ...F<n-1> }``, each fragment selecting ``selection``: valid, and quadratic to validate."""
    spreads = " ".join(f"...F{i}" for i in range(n))
    frags = " ".join(f"fragment F{i} on {on} {{ {selection} }}" for i in range(n))
    return f"query Bomb{salt} {{ {spreads} }} {frags}"


def document_workers(router: psutil.Process) -> list[psutil.Process]:
    """The router's document worker processes (router/docworker.py)."""
    out = []
    for child in router.children():
        try:
            if "router.docworker" in child.cmdline():
                out.append(child)
        except psutil.Error:
            pass  # (exited meanwhile)
    return out


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU time of ``procs`` (those still alive)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def nested_repeats(outer: str, inner: str, n: int = 20) -> str:
    """``n`` copies of ``outer { n copies of inner }``: each key under the per-set repeat limit."""
    return "{" + " ".join(f"{outer} {{ " + " ".join([inner] * n) + " }" for _ in range(n)) + "}"


def padded(query: str, size: int, salt: str = "", line: int = 8_000) -> str:
    """``query`` followed by comment lines (each under the token byte limit) up to ``size`` characters."""
    out = [query, f"\n# {salt}"]
    total = sum(map(len, out))
    while total < size:
        chunk = "\n#" + "x" * min(line, size - total)
        out.append(chunk)
        total += len(chunk)
    return "".join(out)


def dense(size: int, salt: str, valid: bool = True) -> str:
    """A valid document of about ``size`` characters made of many small tokens (90 aliases of a
    nested selection): its syntax tree weighs megabytes (the issue's 30 KB documents: ~5 MB each)."""
    leaf = "name upc price weight reviews { body id author { name username } }"
    inner = f"body id author {{ name username reviews {{ body id product {{ {leaf} }} }} }} product {{ {leaf} }}"
    body = f"name upc price weight reviews {{ {inner} }}" + (" nope" if not valid else "")
    n = 90
    pad = "x" * max(0, (size - n * (len(body) + 40)) // n)
    parts = [f"a{salt}_{i}_{pad}: topProducts(first: {i % 5 + 1}) {{ {body} }}" for i in range(n)]
    return "{ " + " ".join(parts) + " }"
