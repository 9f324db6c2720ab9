"""Through the router, sign-in throttling sees each client's own address, not the router's.

A guesser is slowed and stopped, but never locks the owner out from elsewhere:
each client below connects from its own loopback address (127.0.0.x), which the
router names to the users subgraph.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis
import websockets

from deploy.stack import ThreadedStack
from subgraphs.users.throttle import digest

LOGIN = "mutation($i: LoginInput!) { login(input: $i) { accessToken userErrors { code } } }"
RESET = "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) { ok userErrors { code } } }"
PASSWORD = "a long enough secret"
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


async def _register(router_url: str) -> str:
    email = f"guessed-{uuid.uuid4().hex[:10]}@example.com"
    registered = await _call(
        router_url, "127.0.0.1", REGISTER, {"i": {"email": email, "password": PASSWORD, "name": "T"}}
    )
    assert registered["data"]["register"]["userErrors"] == []
    return email


async def _login(router_url: str, source: str, email: str, password: str) -> list[str]:
    body = await _call(router_url, source, LOGIN, {"i": {"email": email, "password": password}})
    payload = body["data"]["login"]
    assert (payload["accessToken"] is not None) == (payload["userErrors"] == [])
    return [e["code"] for e in payload["userErrors"]]


async def test_refused_attempts_do_not_feed_the_account_ceiling(router_url: str) -> None:
    """The reported lockout: 60 guesses from one address locked the owner out everywhere."""
    email = await _register(router_url)
    codes = [await _login(router_url, "127.0.1.2", email, f"guess-{n}") for n in range(60)]
    assert codes[:5] == [["INVALID_CREDENTIALS"]] * 5
    assert codes[5:] == [["ACCOUNT_LOCKED"]] * 55  # refused before any password check
    # The owner, from an address that never signed in before, is not locked out.
    assert await _login(router_url, "127.0.1.3", email, PASSWORD) == []


async def test_a_guesser_on_many_addresses_is_stopped_but_the_owner_signs_in(router_url: str) -> None:
    email = await _register(router_url)
    assert await _login(router_url, "127.0.2.1", email, PASSWORD) == []  # the owner's usual address
    # Eleven addresses, five guesses each: past the account's ceiling of fifty.
    sources = [f"127.0.2.{n}" for n in range(10, 21)]
    rounds = await asyncio.gather(
        *(_login(router_url, source, email, f"guess-{source}-{n}") for source in sources for n in range(5))
    )
    assert rounds.count(["INVALID_CREDENTIALS"]) == 50  # the 51st new-address attempt hit the ceiling
    assert rounds.count(["ACCOUNT_LOCKED"]) == 5
    # Stopped: each guessing address is locked out, and so is any new address, right password or not.
    assert await _login(router_url, "127.0.2.10", email, PASSWORD) == ["ACCOUNT_LOCKED"]
    assert await _login(router_url, "127.0.2.99", email, PASSWORD) == ["ACCOUNT_LOCKED"]
    # The owner's address that signed in before is kept apart: never locked out by the guesser.
    assert await _login(router_url, "127.0.2.1", email, PASSWORD) == []
    # A password reset stays open to the owner from anywhere.
    reset = await _call(router_url, "127.0.2.99", RESET, {"i": {"email": email}})
    assert reset["data"]["requestPasswordReset"] == {"ok": True, "userErrors": []}


async def test_each_lock_of_a_guessing_address_lasts_twice_as_long(router_url: str, stack: ThreadedStack) -> None:
    email = await _register(router_url)
    pair = f"{stack.settings.redis_prefix}users:sign-in:{digest(email.lower())}:from:{digest('127.0.5.1')}"
    redis = aioredis.from_url(stack.settings.redis_url)
    window = stack.settings.login_lockout_seconds
    try:
        for lock in (window, 2 * window, 4 * window):
            codes = [await _login(router_url, "127.0.5.1", email, f"guess-{n}") for n in range(6)]
            assert codes == [["INVALID_CREDENTIALS"]] * 5 + [["ACCOUNT_LOCKED"]]
            assert lock - 5 <= await redis.ttl(pair) <= lock
            await redis.delete(pair)  # the lock runs out
        # The owner elsewhere was never held up; signing in from the address clears its record.
        assert await _login(router_url, "127.0.5.2", email, PASSWORD) == []
        await redis.delete(pair)
        assert await _login(router_url, "127.0.5.1", email, PASSWORD) == []
        codes = [await _login(router_url, "127.0.5.1", email, f"again-{n}") for n in range(6)]
        assert codes[-1] == ["ACCOUNT_LOCKED"] and window - 5 <= await redis.ttl(pair) <= window
    finally:
        await redis.aclose()


async def _keys(redis: aioredis.Redis, prefix: str) -> dict[bytes, int]:
    """Every key of this stack with the bytes it takes (key and value)."""
    sizes: dict[bytes, int] = {}
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        sizes[key] = len(key) + int(await redis.memory_usage(key) or 0)
    return sizes


async def test_huge_emails_are_refused_before_anything_is_stored(router_url: str, stack: ThreadedStack) -> None:
    """20 sign-ins with 480 KB emails added 21 MB to Redis; now they are refused before Redis sees them."""
    redis = aioredis.from_url(stack.settings.redis_url)
    prefix = stack.settings.redis_prefix
    try:
        huge = "x" * 500_000 + "@example.com"
        before = await _keys(redis, prefix)
        for n in range(20):
            source = f"127.0.3.{n + 1}"
            assert await _login(router_url, source, huge, "whatever password") == ["INVALID"]
            reset = await _call(router_url, source, RESET, {"i": {"email": huge}})
            assert [e["code"] for e in reset["data"]["requestPasswordReset"]["userErrors"]] == ["INVALID"]
            variables = {"i": {"email": huge, "password": PASSWORD, "name": "T"}}
            registered = await _call(router_url, source, REGISTER, variables)
            assert [e["code"] for e in registered["data"]["register"]["userErrors"]] == ["INVALID"]
        after = await _keys(redis, prefix)
        # Only the router's rate-limit and cost buckets appear (per client address, of a fixed small size):
        # nothing the subgraphs store, and nothing that grows with the email.
        added = {key: size for key, size in after.items() if key not in before}
        assert all((b":router:rate:" in k or b":router:cost:" in k) and size < 512 for k, size in added.items()), added
        # A valid email of the longest length leaves keys of a fixed size (hashed), never the email itself.
        longest = "y" * 240 + "@example.com"
        assert await _login(router_url, "127.0.3.100", longest, "whatever password") == ["INVALID_CREDENTIALS"]
        added = {key: size for key, size in (await _keys(redis, prefix)).items() if key not in after}
        assert added, "a failed sign-in is counted"
        assert all(b"yyyy" not in key and len(key) < 200 and size < 1_000 for key, size in added.items())
        # A huge password is just a wrong one (no stored password is longer than 128 characters).
        assert await _login(router_url, "127.0.3.101", longest, "p" * 500_000) == ["INVALID_CREDENTIALS"]
    finally:
        await redis.aclose()
