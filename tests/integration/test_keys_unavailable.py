"""When the users subgraph's JWKS cannot be fetched, a token is neither accepted nor blamed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import ec

from deploy.embedded import free_port
from deploy.stack import Stack, ThreadedStack


@pytest.fixture(scope="module")
def orphan_catalog() -> Iterator[ThreadedStack]:
    """A catalog whose users subgraph (and so its JWKS) is unreachable."""
    dead = f"http://127.0.0.1:{free_port()}/graphql"
    stack = Stack(subgraphs=("catalog",), fresh_database=True, settings_overrides={"subgraph_urls": {"users": dead}})
    with stack.start_in_thread() as running:
        yield running


def _access_token() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": "shopgraph-users", "aud": "shopgraph", "sub": "x", "iat": 0, "exp": 2**31}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "some-key"})


def test_http_gets_a_503_not_a_500_or_a_401(orphan_catalog: ThreadedStack) -> None:
    response = httpx.post(
        orphan_catalog.url("catalog"),
        json={"query": "{ products(first: 1) { totalCount } }"},
        headers={"Authorization": f"Bearer {_access_token()}"},
    )
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def test_websocket_is_closed_with_try_again_later(orphan_catalog: ThreadedStack) -> None:
    url = orphan_catalog.url("catalog").replace("http://", "ws://")
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {_access_token()}"}})
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
