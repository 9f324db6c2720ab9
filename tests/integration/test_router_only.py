"""SHOPGRAPH_ROUTER_ONLY: subgraphs refuse every caller but internal tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from deploy.stack import Stack, ThreadedStack
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
