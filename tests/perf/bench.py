"""Router benchmark harness: processes, load, CPU accounting, results.

Everything runs as its own process on 127.0.0.1: the subgraph stack
(``stack_main.py``: the four subgraphs + PostgreSQL), our router (``shopgraph
router``), Apollo Gateway (``gateway.mjs``) and the load generator (autocannon,
``load.mjs``). A router's CPU time is read with psutil around each measured load
run and divided by the requests it served.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from tests.support.apollo_gateway import for_apollo_gateway
from tests.support.npm import npm_ci_once

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ORACLE = ROOT / "tests" / "router" / "oracle"
RESULTS = HERE / "results"
SUPERGRAPH = ROOT / "schema" / "supergraph.graphql"


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def npm_ci(where: Path, marker: str) -> None:
    """``npm ci`` in ``where`` unless ``node_modules/<marker>`` is there already."""
    npm_ci_once(where, where / "node_modules" / marker)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def supergraph_for(urls: Mapping[str, str], out: Path) -> Path:
    """The checked-in supergraph with each ``@join__graph(url:)`` pointing at ``urls[name]``."""

    def repl(m: re.Match[str]) -> str:
        return f'@join__graph(name: "{m[1]}", url: "{urls[m[1]]}")'

    sdl, n = re.subn(r'@join__graph\(name: "(\w+)", url: "[^"]*"\)', repl, SUPERGRAPH.read_text())
    assert n == len(urls), f"expected {len(urls)} subgraphs in {SUPERGRAPH}, found {n}"
    out.write_text(sdl)
    return out


# -- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    """A child process whose whole tree's CPU time can be sampled."""

    name: str
    popen: subprocess.Popen[str]
    url: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.popen.pid)

    def cpu(self) -> dict[int, float]:
        """pid -> user+system CPU seconds, for the process and its live descendants."""
        out: dict[int, float] = {}
        root = self.ps
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[p.pid] = t.user + t.system
        return out


def cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def _stop(proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    if proc.stdin is not None:
        proc.stdin.close()  # the stack process exits on EOF (dropping its database)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _ready_line(proc: subprocess.Popen[str], name: str, prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
        seen.append(line)
    proc.kill()
    rest = proc.stdout.read() if proc.stdout else ""
    raise RuntimeError(f"{name} did not start:\n{''.join(seen)}{rest}")


@contextmanager
def stack_process(*, processes: bool = False, script: str = "stack_main.py") -> Iterator[Proc]:
    """The subgraphs (and PostgreSQL, unless DATABASE_URL is set) in their own process; with
    ``processes`` each subgraph in a child process of its own (``info["pids"]``: name -> pid).
    ``script``: another subgraph set with the same protocol (``gateways_main.py``)."""
    popen = subprocess.Popen(
        [sys.executable, str(HERE / script), *(["--processes"] if processes else [])],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    try:
        info = json.loads(_ready_line(popen, "the subgraph stack", "ready ", 300))
        yield Proc("subgraphs", popen, info=info)
    finally:
        _stop(popen, 60)


@contextmanager
def replay_process(upstreams: Mapping[str, str]) -> Iterator[Proc]:
    """Record-and-replay stand-ins for the subgraphs (``replay.mjs``), one node process."""
    popen = subprocess.Popen(
        ["node", str(HERE / "replay.mjs"), json.dumps(dict(upstreams))],
        cwd=HERE,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        urls = json.loads(_ready_line(popen, "the replay subgraphs", "ready ", 30))
        _drain(popen.stdout)
        yield Proc("replay", popen, info={"urls": urls})
    finally:
        _stop(popen)


def _drain(stream: IO[str] | None) -> None:
    """Keep reading a child's output so it never blocks on a full pipe."""

    def read() -> None:
        for _ in stream or ():
            pass

    threading.Thread(target=read, daemon=True).start()


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.post(url, json={"query": "{__typename}"}, timeout=2, trust_env=False)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def our_router(
    supergraph: Path,
    jwks_url: str,
    secret: str,
    *,
    redis: Mapping[str, str] | None = None,
    name: str = "shopgraph",
    env: Mapping[str, str] | None = None,
) -> Iterator[Proc]:
    """``shopgraph router`` (uvicorn + uvloop + httptools), one process. With ``redis``
    (``url``, ``prefix``: the stack's, where catalog's change events go) its entity
    cache is on, else off; ``env``: more settings."""
    port = free_port()
    exe = Path(sys.executable).parent / "shopgraph"
    env = {
        **os.environ,
        "SHOPGRAPH_JWKS_URL": jwks_url,
        "SHOPGRAPH_SERVICE_SECRET": secret,
        # Every protection stays on (limits, cost, CSRF, APQ, buckets taken in Redis on each request),
        # but the load is one caller at hundreds of requests a second: its budgets are raised.
        "SHOPGRAPH_RATE_USERS": "1000000/1000000",
        "SHOPGRAPH_RATE_EXPENSIVE": "1000000/1000000",
        "SHOPGRAPH_ENTITY_CACHE": "0",
        **(env or {}),
    }
    if redis is not None:
        env |= {"REDIS_URL": redis["url"], "SHOPGRAPH_REDIS_PREFIX": redis["prefix"], "SHOPGRAPH_ENTITY_CACHE": "1"}
    popen = subprocess.Popen(
        [str(exe), "router", "--supergraph", str(supergraph), "--port", str(port)],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _drain(popen.stdout)
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        _wait_http(url)
        yield Proc(name, popen, url)
    finally:
        _stop(popen)


@contextmanager
def apollo_gateway(supergraph: Path, jwks_url: str, secret: str) -> Iterator[Proc]:
    """Apollo Gateway (@apollo/gateway + @apollo/server standalone), one node process."""
    port = free_port()
    env = {**os.environ, "NODE_ENV": "production", "SHOPGRAPH_SERVICE_SECRET": secret}
    loadable = supergraph.with_name(supergraph.stem + "-apollo-gateway.graphql")
    loadable.write_text(for_apollo_gateway(supergraph.read_text()))
    popen = subprocess.Popen(
        ["node", str(HERE / "gateway.mjs"), str(loadable), str(port), jwks_url],
        cwd=HERE,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _ready_line(popen, "Apollo Gateway", "ready ", 60)
        _drain(popen.stdout)
        yield Proc("apollo-gateway", popen, f"http://127.0.0.1:{port}/graphql")
    finally:
        _stop(popen)


# -- load -----------------------------------------------------------------------------------


@dataclass
class Measurement:
    router: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    bad: int
    errors: int
    first_bad: str | None
    cpu_seconds: float
    cpu_ms_per_request: float
    subgraphs_cpu_ms_per_request: float


def load(
    url: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    seconds: float,
    connections: int,
    tmp: Path,
    amount: int = 0,
) -> dict[str, Any]:
    """Run autocannon for ``seconds`` (or for ``amount`` requests); its figures."""
    cfg = tmp / "load.json"
    cfg.write_text(
        json.dumps(
            {
                "url": url,
                "headers": {"content-type": "application/json", **headers},
                "bodies": [b.decode() for b in bodies],
                "connections": connections,
                "duration": seconds,
                "amount": amount,
            }
        )
    )
    r = subprocess.run(
        ["node", str(HERE / "load.mjs"), str(cfg)],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 300,
    )
    if r.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{r.stderr}")
    result: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return result


def measure(
    router: Proc,
    subgraphs: Proc,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    seconds: float,
    warmup: float,
    connections: int,
    tmp: Path,
    prime: bool = False,
) -> Measurement:
    if prime:  # every distinct request once (replay mode: records the subgraph answers)
        load(router.url, headers, bodies, 0, connections, tmp, amount=max(len(bodies), connections))
    if warmup > 0:
        load(router.url, headers, bodies, warmup, connections, tmp)
    time.sleep(0.5)  # let the warm-up's last responses settle
    before, sub_before = router.cpu(), subgraphs.cpu()
    r = load(router.url, headers, bodies, seconds, connections, tmp)
    cpu = cpu_delta(before, router.cpu())
    sub_cpu = cpu_delta(sub_before, subgraphs.cpu())
    n = max(int(r["requests"]), 1)
    return Measurement(
        router=router.name,
        requests=int(r["requests"]),
        seconds=float(r["seconds"]),
        rps=float(r["rps"]),
        p50_ms=float(r["p50"]),
        p90_ms=float(r["p90"]),
        p99_ms=float(r["p99"]),
        mean_ms=float(r["mean"]),
        bad=int(r["bad"]) + int(r["non2xx"]),
        errors=int(r["errors"]) + int(r["timeouts"]),
        first_bad=r.get("firstBad"),
        cpu_seconds=cpu,
        cpu_ms_per_request=cpu * 1000 / n,
        subgraphs_cpu_ms_per_request=sub_cpu * 1000 / n,
    )


# -- report ---------------------------------------------------------------------------------


def ratios(ours: Measurement, peer: Measurement) -> dict[str, float]:
    """ours vs the peer: >1 is better for every figure."""

    def div(a: float, b: float) -> float:
        return round(a / b, 2) if b else float("nan")

    return {
        "rps": div(ours.rps, peer.rps),
        "p50": div(peer.p50_ms, ours.p50_ms),
        "p99": div(peer.p99_ms, ours.p99_ms),
        "cpu_per_request": div(peer.cpu_ms_per_request, ours.cpu_ms_per_request),
    }


def table(results: Sequence[Mapping[str, Any]]) -> str:
    head = (
        f"{'mode:scenario':<26} {'router':<15} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'subgraphs CPU ms/req':>20}"
    )
    lines = [head, "-" * len(head)]
    for sc in results:
        for m in sc["measurements"]:
            lines.append(
                f"{sc['mode'] + ':' + sc['name']:<26} {m['router']:<15} {m['rps']:>8.1f} {m['p50_ms']:>8.1f} "
                f"{m['p99_ms']:>8.1f} {m['cpu_ms_per_request']:>10.2f} "
                f"{m['subgraphs_cpu_ms_per_request']:>20.2f}"
            )
        for label, key in (("ours/peer", "ratios"), ("cache/no cache", "cache_ratios")):
            r = sc.get(key)
            if r is not None:
                lines.append(
                    f"{'':<26} {label:<15} {r['rps']:>7.2f}x {r['p50']:>7.2f}x {r['p99']:>7.2f}x "
                    f"{r['cpu_per_request']:>9.2f}x   (>1: first better)"
                )
    return "\n".join(lines)


def write_results(payload: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "latest.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    return out


def as_dict(m: Measurement) -> dict[str, Any]:
    return asdict(m)
