"""Through the router, sign-in throttling sees each client's own address, not the router's."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import websockets

LOGIN = "mutation($i: LoginInput!) { login(input: $i) { accessToken userErrors { code } } }"
REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { userErrors { code } } }"


async def _call(router_url: str, source: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    # Loopback has many addresses: each client connects from its own.
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        response = await client.post(router_url, json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    return body


async def test_a_guesser_behind_the_router_locks_out_only_itself(router_url: str) -> None:
    email, password = f"throttle-{uuid.uuid4().hex[:10]}@example.com", "a long enough secret"
    registered = await _call(
        router_url, "127.0.0.1", REGISTER, {"i": {"email": email, "password": password, "name": "T"}}
    )
    assert registered["data"]["register"]["userErrors"] == []
    for attempt in range(5):
        body = await _call(router_url, "127.0.0.2", LOGIN, {"i": {"email": email, "password": f"guess-{attempt}"}})
        assert body["data"]["login"]["userErrors"] == [{"code": "INVALID_CREDENTIALS"}]
    locked = await _call(router_url, "127.0.0.2", LOGIN, {"i": {"email": email, "password": password}})
    assert locked["data"]["login"]["userErrors"] == [{"code": "ACCOUNT_LOCKED"}]
    owner = await _call(router_url, "127.0.0.3", LOGIN, {"i": {"email": email, "password": password}})
    assert owner["data"]["login"]["userErrors"] == [] and owner["data"]["login"]["accessToken"]


async def _login_over_websocket(router_url: str, source: str, email: str, password: str) -> dict[str, Any]:
    url = router_url.replace("http://", "ws://")
    protocol = [websockets.Subprotocol("graphql-transport-ws")]
    async with websockets.connect(url, subprotocols=protocol, local_addr=(source, 0)) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        variables = {"i": {"email": email, "password": password}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LOGIN, "variables": variables}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert message["type"] == "next", message
    payload: dict[str, Any] = message["payload"]
    return payload


async def test_websocket_sign_ins_are_throttled_per_client_address(router_url: str) -> None:
    email, password = f"throttle-ws-{uuid.uuid4().hex[:10]}@example.com", "a long enough secret"
    registered = await _call(
        router_url, "127.0.0.1", REGISTER, {"i": {"email": email, "password": password, "name": "T"}}
    )
    assert registered["data"]["register"]["userErrors"] == []
    for attempt in range(5):
        body = await _login_over_websocket(router_url, "127.0.0.4", email, f"guess-{attempt}")
        assert body["data"]["login"]["userErrors"] == [{"code": "INVALID_CREDENTIALS"}]
    locked = await _login_over_websocket(router_url, "127.0.0.4", email, password)
    assert locked["data"]["login"]["userErrors"] == [{"code": "ACCOUNT_LOCKED"}]
    owner = await _call(router_url, "127.0.0.5", LOGIN, {"i": {"email": email, "password": password}})
    assert owner["data"]["login"]["userErrors"] == [] and owner["data"]["login"]["accessToken"]
