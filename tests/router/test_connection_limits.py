"""Issue 18, finding 17: connection caps and a request-head timeout, on HTTP and WebSocket.

Attack (black box, the router served as ``shopgraph router`` serves it): 500
slowloris connections (a request head never finished) and 1,000 idle
acknowledged WebSockets from one address all stayed open. Now one address holds
at most ``limits.max_connections_per_address`` connections (upgraded ones
included) and a connection without a whole request head in
``limits.header_timeout_seconds`` is closed. (Scaled down here: a cap of 40.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import httpx
import pytest

from router.config import Settings
from router.http import create_app
from tests.router.attack_support import Closed, RawWs
from tests.router.router_harness import ThreadServer, compose
from tests.router.subs_support import Live, start_live

CAP = 40


@pytest.fixture(scope="module")
def router(subgraphs: ThreadServer) -> Iterator[ThreadServer]:
    settings = Settings(anonymous_only=True, max_connections_per_address=CAP, header_timeout=1.0)
    with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as r:
        yield r


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_slowloris_connections_are_capped_and_timed_out(router: ThreadServer) -> None:
    conns = []
    for _ in range(3 * CAP):
        reader, writer = await asyncio.open_connection("127.0.0.1", router.port, local_addr=("127.0.0.51", 0))
        writer.write(b"GET /health HTTP/1.1\r\nHost: router\r\nX-Slow: ")  # never finished
        conns.append((reader, writer))
    closed = await asyncio.gather(*(_closed(r, 8) for r, _ in conns))
    assert all(closed), f"{closed.count(False)} slowloris connections still open"
    for _, w in conns:
        w.close()
    async with httpx.AsyncClient(trust_env=False) as client:  # others are served meanwhile
        assert (await client.get(router.url + "/health")).status_code == 200
        scraped = (await client.get(router.url + "/metrics")).text
    assert 'shopgraph_router_connections_refused_total{reason="per_address"}' in scraped
    assert 'shopgraph_router_connections_refused_total{reason="header_timeout"}' in scraped


async def _websocket(port: int, address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """An acknowledged graphql-transport-ws connection, or None if the router refused it."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        writer.write(
            b"GET /graphql HTTP/1.1\r\nHost: router\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if not head.startswith(b"HTTP/1.1 101"):
            return None
        payload = json.dumps({"type": "connection_init"}).encode()
        writer.write(bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
        frame = await asyncio.wait_for(reader.read(2 + 64), 5)
        return (reader, writer) if b"connection_ack" in frame else None
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        return None


async def test_idle_websockets_from_one_address_are_capped(router: ThreadServer) -> None:
    opened = [await _websocket(router.port, "127.0.0.52") for _ in range(2 * CAP)]
    held = [c for c in opened if c is not None]
    try:
        assert 0 < len(held) <= CAP, len(held)
        other = await _websocket(router.port, "127.0.0.53")  # another address is not affected
        assert other is not None
        other[1].close()
    finally:
        for _, w in held:
            w.close()


async def test_500_slow_header_connections_from_many_addresses_are_all_timed_out(router: ThreadServer) -> None:
    """Slowloris at the attack's size, spread over addresses so the per-address cap never
    applies: only the request-head timeout closes them, and the router keeps serving."""
    async with httpx.AsyncClient(trust_env=False) as client:
        before = _refused(await client.get(router.url + "/metrics"), "header_timeout")
    conns = []
    for i in range(500):
        address = f"127.0.{60 + i // 20}.{1 + i % 20}"  # 25 addresses x 20: under the cap of 40
        reader, writer = await asyncio.open_connection("127.0.0.1", router.port, local_addr=(address, 0))
        writer.write(b"GET /health HTTP/1.1\r\nHost: router\r\nX-Slow: ")  # never finished
        conns.append((reader, writer))
    async with httpx.AsyncClient(trust_env=False) as client:  # served while they hang
        assert (await client.get(router.url + "/health")).status_code == 200
    closed = await asyncio.gather(*(_closed(r, 10) for r, _ in conns))
    assert all(closed), f"{closed.count(False)} of 500 slowloris connections still open"
    for _, w in conns:
        w.close()
    async with httpx.AsyncClient(trust_env=False) as client:
        after = _refused(await client.get(router.url + "/metrics"), "header_timeout")
    assert after - before == 500  # each one closed by the head timeout, none by the cap


def _refused(response: httpx.Response, reason: str) -> float:
    for line in response.text.splitlines():
        if line.startswith(f'shopgraph_router_connections_refused_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


IDLE = 1.5  # subscriptions.idle_timeout_seconds, scaled down from 60


@pytest.fixture(scope="module")
def idle_live(subgraphs: ThreadServer) -> Iterator[Live]:
    yield from start_live(subgraphs, ws_idle_timeout=IDLE, max_connections_per_address=2000)


async def _close_of(ws: RawWs, within: float) -> Closed | None:
    """The close the router sent within ``within`` seconds (None: still open); pongs are skipped."""
    try:
        async with asyncio.timeout(within):
            while True:
                msg = await ws.recv(within)
                assert msg.get("type") in ("pong", "next"), msg
    except Closed as closed:
        return closed
    except TimeoutError:
        return None


async def test_idle_acknowledged_websockets_are_closed_and_a_live_subscription_is_not(idle_live: Live) -> None:
    before = await _idle_closed(idle_live)
    token = idle_live.admin()
    subscribed = await RawWs.open(idle_live.ws_url, token)
    await subscribed.subscribe("1", "subscription { orderEvents { id } }")
    # The attack: many acknowledged WebSockets that never subscribe; some ping to look alive.
    idle = [await RawWs.open(idle_live.ws_url, token) for _ in range(300)]
    pinging = idle[:20]

    async def keep_pinging() -> None:
        while True:
            for ws in pinging:
                with contextlib.suppress(OSError):
                    await ws.send({"type": "ping"})
            await asyncio.sleep(IDLE / 3)

    pinger = asyncio.create_task(keep_pinging())
    try:
        closes = await asyncio.gather(*(_close_of(ws, IDLE * 6) for ws in idle))
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
    still_open = [i for i, c in enumerate(closes) if c is None]
    assert not still_open, f"{len(still_open)} of 300 idle WebSockets still open (e.g. #{still_open[:5]})"
    assert {(c.code, c.reason) for c in closes if c is not None} == {(1000, f"Idle: no subscription for {IDLE:g} s")}

    # The subscribed connection outlived them all (3x the timeout by now) and still gets its events.
    assert await _close_of(subscribed, 0.2) is None
    idle_live.emit(1)
    got = await subscribed.recv(10)
    assert got["type"] == "next" and got["id"] == "1", got
    after = await _idle_closed(idle_live)
    assert after - before == 300

    # Once its subscription completes, it is idle too and closed in its turn.
    await subscribed.send({"id": "1", "type": "complete"})
    closed = await _close_of(subscribed, IDLE * 4)
    assert closed is not None and closed.code == 1000
    for ws in [*idle, subscribed]:
        ws.writer.close()


async def _idle_closed(live: Live) -> float:
    async with httpx.AsyncClient(trust_env=False) as client:
        text = (await client.get(live.url.removesuffix("/graphql") + "/metrics")).text
    for line in text.splitlines():
        if line.startswith("shopgraph_router_ws_idle_closed_total "):
            return float(line.split()[-1])
    return 0.0
