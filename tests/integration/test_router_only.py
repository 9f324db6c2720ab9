"""SHOPGRAPH_ROUTER_ONLY: subgraphs refuse every caller but internal tokens."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from deploy.embedded import free_port
from deploy.stack import PROJECT_ROOT, Stack, ThreadedStack
from subgraphs.kit.auth import ROUTER_ONLY_MESSAGE, mint_internal_token
from tests.support.graphql import gql_sync

LOGIN = "mutation($i: LoginInput!) { login(input: $i) { accessToken userErrors { code } } }"
PRODUCTS = "{ products(first: 1) { edges { node { name } } } }"


@pytest.fixture(scope="module")
def locked_stack() -> Iterator[ThreadedStack]:
    stack = Stack(
        subgraphs=("users", "catalog"), fresh_database=True, seed=True, settings_overrides={"router_only": True}
    )
    with stack.start_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def router(locked_stack: ThreadedStack) -> str:
    return locked_stack.start_router()


@pytest.fixture(scope="module")
def shopper_token(router: str) -> str:
    """A real access token, got through the router (the users subgraph refuses direct logins too)."""
    body = gql_sync(router, LOGIN, {"i": {"email": "shopper@shopgraph.dev", "password": "shopper-demo-pass"}})
    token: str = body["data"]["login"]["accessToken"]
    assert token
    return token


def test_direct_calls_are_refused_anonymous_or_signed_in(locked_stack: ThreadedStack, shopper_token: str) -> None:
    for token in (None, shopper_token):
        response = httpx.post(
            locked_stack.url("catalog"),
            json={"query": PRODUCTS},
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        assert response.status_code == 403
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_internal_tokens_get_in(locked_stack: ThreadedStack) -> None:
    token = mint_internal_token(locked_stack.settings.service_secret, "router")
    body = gql_sync(locked_stack.url("catalog"), PRODUCTS, token=token)
    assert body["data"]["products"]["edges"][0]["node"]["name"]


def test_clients_go_through_the_router(router: str, shopper_token: str) -> None:
    body = gql_sync(router, "{ me { email } products(first: 1) { totalCount } }", token=shopper_token)
    assert body["data"]["me"]["email"] == "shopper@shopgraph.dev"
    assert body["data"]["products"]["totalCount"] > 0


async def test_websockets_without_an_internal_token_are_closed(locked_stack: ThreadedStack, shopper_token: str) -> None:
    url = locked_stack.url("users").replace("http://", "ws://")
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {shopper_token}"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, ROUTER_ONLY_MESSAGE)


def test_shopgraph_serve_runs_one_subgraph_router_only_by_default(stack: ThreadedStack) -> None:
    port = free_port()
    settings = stack.settings
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SHOPGRAPH_REDIS_PREFIX": settings.redis_prefix,
        "SHOPGRAPH_SERVICE_SECRET": settings.service_secret,
        "SHOPGRAPH_SUBGRAPH_USERS_URL": stack.url("users"),
    }
    env.pop("SHOPGRAPH_ROUTER_ONLY", None)
    command = [sys.executable, "-m", "deploy.cli", "serve", "catalog", "--port", str(port)]
    with subprocess.Popen(command, env=env, cwd=PROJECT_ROOT) as server:
        try:
            url = f"http://127.0.0.1:{port}/graphql"
            _wait_for(f"http://127.0.0.1:{port}/health")
            assert httpx.post(url, json={"query": PRODUCTS}).status_code == 403
            token = mint_internal_token(settings.service_secret, "router")
            assert gql_sync(url, PRODUCTS, token=token)["data"]["products"]["edges"]
        finally:
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=20) == 0


def _wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up in {timeout:.0f}s")
