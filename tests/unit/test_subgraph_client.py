"""router.subgraph_client against a raw HTTP/1.1 server on 127.0.0.1: keep-alive
reuse, a server closing idle connections, chunked bodies, refusals and timeouts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from router.subgraph_client import SubgraphClient, SubgraphConnectionError, SubgraphTimeout
from tests.support.wait import until

# request number -> raw response (None: never answer, b"": close the connection unanswered)
Reply = Callable[[int], bytes | None]


def _ok(body: bytes, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


@asynccontextmanager
async def server(reply: Reply) -> AsyncIterator[tuple[str, list[int]]]:
    """A server answering each request with ``reply(n)``; yields (URL, connections per request)."""
    seen: list[int] = []
    count = 0
    conns = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count, conns
        conns += 1
        me = conns
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
                await reader.readexactly(length)
                count += 1
                seen.append(me)
                raw = reply(count)
                if raw is None:
                    await asyncio.sleep(10)
                    return
                if not raw:  # drop the connection unanswered (a keep-alive expiry race)
                    return
                writer.write(raw)
                await writer.drain()
                if b"Connection: close" in raw:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/graphql", seen
    finally:
        srv.close()


HEADERS = {"content-type": "application/json"}


async def test_keep_alive_connections_are_reused() -> None:
    async with server(lambda n: _ok(b'{"n": %d}' % n)) as (url, seen):
        client = SubgraphClient()
        for i in range(1, 4):
            assert await client.post(url, b"{}", HEADERS, 5) == (200, "OK", b'{"n": %d}' % i)
        client.close()
    assert seen == [1, 1, 1]


async def test_a_connection_closed_by_the_server_is_replaced() -> None:
    async with server(lambda n: _ok(b"{}", close=n == 1)) as (url, seen):
        client = SubgraphClient()
        await client.post(url, b"{}", HEADERS, 5)
        await asyncio.sleep(0.05)
        assert (await client.post(url, b"{}", HEADERS, 5))[0] == 200
        client.close()
    assert seen == [1, 2]


async def test_a_reused_connection_dropped_unanswered_is_retried_once() -> None:
    async with server(lambda n: b"" if n == 2 else _ok(b'{"n": %d}' % n)) as (url, seen):
        client = SubgraphClient()
        await client.post(url, b"{}", HEADERS, 5)
        # (the lost request also makes the pool probe the subgraph: a request of its own, answered)
        status, _, body = await client.post(url, b"{}", HEADERS, 5)
        assert status == 200 and body in (b'{"n": 3}', b'{"n": 4}')
        client.close()
    assert seen[:3] == [1, 1, 2] and len(seen) <= 4


async def test_a_fresh_connection_dropped_unanswered_is_an_error() -> None:
    async with server(lambda n: b"") as (url, seen):
        client = SubgraphClient()
        with pytest.raises(SubgraphConnectionError):
            await client.post(url, b"{}", HEADERS, 5)
        client.close()
    assert seen == [1]


async def test_chunked_bodies() -> None:
    raw = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n5\r\n": 1}\r\n0\r\n\r\n'
    async with server(lambda n: raw) as (url, _):
        client = SubgraphClient()
        assert await client.post(url, b"{}", HEADERS, 5) == (200, "OK", b'{"a": 1}')
        assert await client.post(url, b"{}", HEADERS, 5) == (200, "OK", b'{"a": 1}')
        client.close()


async def test_error_statuses_come_back_with_their_reason() -> None:
    raw = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\noops"
    async with server(lambda n: raw) as (url, _):
        client = SubgraphClient()
        assert await client.post(url, b"{}", HEADERS, 5) == (502, "Bad Gateway", b"oops")
        client.close()


async def test_refused_connections_and_timeouts_raise() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = SubgraphClient()
    with pytest.raises(SubgraphConnectionError):
        await client.post(f"http://127.0.0.1:{port}/graphql", b"{}", HEADERS, 5)
    async with server(lambda n: None) as (url, _):
        with pytest.raises(SubgraphTimeout):
            await client.post(url, b"{}", HEADERS, 0.2)
    client.close()


async def test_concurrent_requests_beyond_the_connection_limit_wait() -> None:
    async with server(lambda n: _ok(b"{}")) as (url, seen):
        client = SubgraphClient(max_per_host=2)
        results = await asyncio.gather(*(client.post(url, b"{}", HEADERS, 5) for _ in range(10)))
        client.close()
    assert all(r[0] == 200 for r in results)
    assert len(set(seen)) <= 2


async def test_cancelled_requests_give_their_connections_back() -> None:
    # Requests cancelled while waiting for, or using, a pooled connection (a client that went
    # away) must not leak the pool's slots: later requests would otherwise wait forever.
    async with server(lambda n: None if n <= 2 else _ok(b"{}")) as (url, seen):
        client = SubgraphClient(max_per_host=2)
        stuck = [asyncio.ensure_future(client.post(url, b"{}", HEADERS, 30)) for _ in range(6)]
        # Two hold the connections (the server has their requests, no answer yet), four wait for one.
        await until(lambda: len(seen) == 2, what="two requests at the server")
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        # Well before the stuck server lets go (10 s): the slots came back at the cancel.
        results = await asyncio.wait_for(
            asyncio.gather(*(client.post(url, b"{}", HEADERS, 5) for _ in range(4))), timeout=5
        )
        client.close()
    assert all(r[0] == 200 for r in results)


async def test_waiting_for_a_connection_counts_against_the_deadline() -> None:
    async with server(lambda n: None) as (url, seen):
        client = SubgraphClient(max_per_host=1)
        holder = asyncio.ensure_future(client.post(url, b"{}", HEADERS, 30))
        await until(lambda: seen == [1], what="the holder's request at the server")
        with pytest.raises(SubgraphTimeout):
            # Never gets the only connection: it must give up at its own deadline, not when
            # the holder's connection frees up (10 s later).
            await asyncio.wait_for(client.post(url, b"{}", HEADERS, 0.3), timeout=5)
        holder.cancel()
        await asyncio.gather(holder, return_exceptions=True)
        client.close()
