"""A `shopgraph router` process over the session's stack, as production runs it (uvloop,
httptools, the CLI's logging), for the edge attacks of issue 18.

Each test talks to it from a loopback address of its own (127.0.0.x): the
anonymous rate limit and the per-address connection cap count per address.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deploy.stack import ThreadedStack
from tests.e2e.conftest import supergraph_for
from tests.router.router_harness import free_port

ROOT = Path(__file__).resolve().parents[2]
_addresses = itertools.count(10)


def own_address() -> str:
    """A loopback address no other test uses (Linux routes all of 127/8 to lo)."""
    return f"127.0.0.{next(_addresses)}"


def client_from(address: str, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address), trust_env=False, **kw)


@dataclass
class RouterProcess:
    url: str  # http://127.0.0.1:port
    admin_url: str | None  # the admin listener (metrics), when configured
    log: Path  # stderr: the router's log lines

    @property
    def graphql(self) -> str:
        return self.url + "/graphql"

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def start(
    stack: ThreadedStack,
    tmp: Path,
    config: dict[str, Any],
    env: dict[str, str] | None = None,
    urls: dict[str, str] | None = None,
) -> Iterator[RouterProcess]:
    """Serve a router process with ``config`` (merged over the stack's essentials) until the generator ends;
    ``urls``: subgraphs served elsewhere than the stack's (by name)."""
    supergraph = tmp / "supergraph.graphql"
    supergraph.write_text(supergraph_for({n: stack.urls[n] for n in stack.subgraphs} | (urls or {})))
    base: dict[str, Any] = {
        "supergraph": {"path": str(supergraph), "poll_seconds": 0},
        "auth": {"jwks_urls": [stack.settings.jwks_url]},
        "subgraphs": {"service_secret": stack.settings.service_secret},
        "redis": {"url": stack.settings.redis_url, "prefix": f"shopgraph_test_{uuid.uuid4().hex}:"},
    }
    for section, values in config.items():
        base[section] = {**base.get(section, {}), **values} if isinstance(values, dict) else values
    (tmp / "router.yaml").write_text(json.dumps(base))  # JSON is YAML
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGRAPH_") and k != "REDIS_URL"}
    log = tmp / "router.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "router", "--config", str(tmp / "router.yaml"), "--port", str(port)],
            cwd=ROOT,
            env={**clean, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    admin = base.get("admin", {}).get("listen")
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "router did not start"
            time.sleep(0.1)
        yield RouterProcess(url, f"http://{admin}" if admin else None, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
