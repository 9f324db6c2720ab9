"""Shared set-up for the subscription tests: the "live" fixture subgraphs, a
JWKS issuing ES256 access tokens, and a router on 127.0.0.1 (all real servers).

Import the fixtures into a test module: ``from subs_support import live``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from router.config import Settings
from router.http import create_app
from router.subscriptions import SubscriptionService
from tests.router.fixtures.shop import SERVICE_SECRET
from tests.router.router_harness import ThreadServer, compose
from tests.support.npm import npm_ci_once

NODE_CLIENTS = Path(__file__).parent / "subs_oracle"

EVENTS = "subscription { orderEvents { id type order { number user { email } items { product { name } } } } }"


class Keys:
    """An ES256 signing key published as JWKS; mints access tokens like users does."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "k1", "alg": "ES256", "use": "sig"})
        return {"keys": [jwk]}

    def token(self, uid: str = "u1", role: str = "ADMIN", ttl: float = 300, **over: Any) -> str:
        now = time.time()
        claims = {
            "iss": "shopgraph-users",
            "aud": "shopgraph",
            "sub": uid,
            "uid": uid,
            "role": role,
            "typ": "access",
            "iat": int(now),
            "exp": int(now + ttl),
        }
        claims.update(over)
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})


@dataclass
class Live:
    url: str  # http://.../graphql
    feed_url: str
    keys: Keys
    service: SubscriptionService

    @property
    def ws_url(self) -> str:
        return "ws://" + self.url.removeprefix("http://")

    def admin(self, **kw: Any) -> str:
        return self.keys.token(**kw)

    def emit(self, count: int, type_: str = "order.created") -> int:
        r = httpx.post(
            self.feed_url,
            json={
                "query": "mutation($n:Int!,$t:String!){ emit(count:$n, type:$t) }",
                "variables": {"n": count, "t": type_},
            },
            timeout=30,
        )
        return int(r.json()["data"]["emit"])

    def subscribers(self) -> int:
        r = httpx.post(self.feed_url, json={"query": "{ subscribers }"}, timeout=30)
        return int(r.json()["data"]["subscribers"])

    def wait_subscribers(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.subscribers()) != n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{got} feed subscribers, expected {n}")
            time.sleep(0.05)


def start_live(subgraphs: ThreadServer, *, batching: bool = True, **settings: Any) -> Iterator[Live]:
    keys = Keys()
    # Every client here is 127.0.0.1, and fan-out tests open hundreds of WebSockets from it: the
    # per-address cap (256 by default) is tested on its own, in test_connection_limits.
    settings.setdefault("max_connections_per_address", 4096)

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse(keys.jwks())

    with ThreadServer(Starlette(routes=[Route("/jwks", jwks)])) as js:
        app = create_app(
            compose("live", subgraphs.url),
            Settings(jwks_urls=(js.url + "/jwks",), service_secret=SERVICE_SECRET, **settings),
        )
        with ThreadServer(app, batching=batching) as r:
            yield Live(r.url + "/graphql", subgraphs.url + "/live/feed/", keys, app.state.subscriptions)


@pytest.fixture(scope="session")
def live(subgraphs: ThreadServer) -> Iterator[Live]:
    yield from start_live(subgraphs)


def node_clients() -> Path:
    """The npm clients (graphql-ws, graphql-sse, Apollo Client), installed on first use."""
    if shutil.which("npm") is None:
        pytest.fail("npm is required by the tests (reference tools from npm): install Node.js and npm")
    npm_ci_once(NODE_CLIENTS, NODE_CLIENTS / "node_modules" / "graphql-sse")
    return NODE_CLIENTS


def run_node(script: str, *args: str, timeout: float = 60) -> Any:
    """Run a client script; it prints one JSON document."""
    d = node_clients()
    r = subprocess.run(["node", script, *args], cwd=d, capture_output=True, text=True, timeout=timeout, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
