"""Tools for attacking the router's subscription fan-out (tests/router/test_subscriptions_attacks.py):

- :class:`RawWs`: a bare RFC 6455 client on an asyncio stream, for what a
  library client will not do — stop reading (the stream's small buffer stalls TCP),
  reset the connection mid-burst, write after the close.
- :class:`ScriptedFeed`: a "feed" subgraph the test scripts message by message
  (graphql-transport-ws), plus a "people" subgraph whose entity fetches wait as
  long as the test says per user, so enrichment is in flight when the feed fails.
  It records each upstream connection's caller (the router's internal token).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from router.config import Settings
from router.http import create_app
from tests.router.fixtures.live import internal_claims
from tests.router.fixtures.shop import SERVICE_SECRET
from tests.router.router_harness import ThreadServer, compose
from tests.router.subs_support import Keys, Live

Json = dict[str, Any]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Poll ``check`` until it holds (a condition, not a fixed sleep, decides)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def settled(live: Live, active: int = 0, feeds: int = 0, upstream: int | None = 0) -> None:
    """Wait until the router holds exactly ``active`` client subscriptions and ``feeds`` upstream ones."""
    svc = live.service
    wait_for(
        lambda: svc.active == active and len(svc.feeds) == feeds,
        f"active={active} feeds={feeds} (have {svc.active}, {len(svc.feeds)}, groups {len(svc.groups)})",
    )
    if active == 0:
        wait_for(lambda: not svc.groups, "no groups")
    if upstream is not None:
        live.wait_subscribers(upstream)


# ---- a raw WebSocket client -------------------------------------------------------------------


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


class RawWs:
    """graphql-transport-ws over a hand-made WebSocket: reads only when asked to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, ws_url: str, token: str | None = None) -> RawWs:
        u = urlsplit(ws_url)
        # A small stream buffer: once it is full the transport stops reading and TCP stalls the server.
        reader, writer = await asyncio.open_connection(u.hostname, u.port, limit=16 * 1024)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        writer.write(
            (
                f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        c = cls(reader, writer)
        if token is not None:
            await c.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
            assert await c.recv() == {"type": "connection_ack"}
        return c

    def frame(self, opcode: int, payload: bytes) -> bytes:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    async def send(self, msg: Json) -> None:
        self.writer.write(self.frame(0x1, json.dumps(msg).encode()))
        await self.writer.drain()

    async def subscribe(self, op_id: str, query: str, variables: Json | None = None) -> None:
        await self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})

    async def recv(self, within: float = 20) -> Json:
        """The next text message; :class:`Closed` on a close frame or EOF."""
        async with asyncio.timeout(within):
            while True:
                try:
                    b0, b1 = await self.reader.readexactly(2)
                except asyncio.IncompleteReadError:
                    raise Closed(None, "eof") from None
                except ConnectionError:  # the server cut the socket with our unread frames in its buffer
                    raise Closed(None, "reset") from None
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(n)
                opcode = b0 & 0x0F
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    raise Closed(code, payload[2:].decode())
                if opcode == 0x9:  # ping: answer, as any client does
                    self.writer.write(self.frame(0xA, payload))
                    continue
                if opcode == 0x1:
                    return dict(json.loads(payload))

    async def until_closed(self, within: float = 30) -> tuple[list[Json], Closed]:
        """Everything the server still sends, and how it closed."""
        out: list[Json] = []
        try:
            while True:
                out.append(await self.recv(within))
        except Closed as e:
            return out, e

    def reset(self) -> None:
        """Abort with a TCP RST: no close frame, no FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def close(self) -> None:
        self.writer.transport.abort()


# ---- a scripted feed subgraph ------------------------------------------------------------------


@dataclass
class Upstream:
    """One router connection to the scripted feed, and the operations open on it."""

    ws: WebSocket
    uid: str
    ops: dict[str, Json] = field(default_factory=dict)  # id -> subscribe payload


class ScriptedFeed:
    """A feed subgraph whose events the test sends, and a people subgraph with per-user delays."""

    def __init__(self) -> None:
        self.conns: list[Upstream] = []
        self.completed: list[str] = []  # ids the router completed
        self.delays: dict[str, float] = {}  # people: seconds an entity fetch for a user waits
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = threading.Lock()
        self.app = Starlette(
            routes=[WebSocketRoute("/feed/", self._feed), Route("/people/", self._people, methods=["POST"])]
        )

    async def _feed(self, ws: WebSocket) -> None:
        self.loop = asyncio.get_running_loop()
        await ws.accept(subprotocol="graphql-transport-ws")
        init = await ws.receive_json()
        claims = internal_claims((init.get("payload") or {}).get("Authorization", ""))
        up = Upstream(ws, str(claims.get("uid", "-")))
        with self.lock:
            self.conns.append(up)
        await ws.send_json({"type": "connection_ack"})
        try:
            while True:
                msg = await ws.receive_json()
                if msg.get("type") == "subscribe":
                    up.ops[msg["id"]] = msg["payload"]
                elif msg.get("type") == "complete":
                    up.ops.pop(msg["id"], None)
                    self.completed.append(msg["id"])
                elif msg.get("type") == "ping":
                    await ws.send_json({"type": "pong"})
        except WebSocketDisconnect:
            pass
        finally:
            with self.lock:
                self.conns.remove(up)

    async def _people(self, request: Request) -> JSONResponse:
        body = await request.json()
        reps = body["variables"]["representations"]
        await asyncio.sleep(max([self.delays.get(r["id"], 0.0) for r in reps], default=0.0))
        return JSONResponse(
            {"data": {"_entities": [{"__typename": "User", "email": f"{r['id']}@people"} for r in reps]}}
        )

    def open_ops(self) -> list[tuple[Upstream, str]]:
        with self.lock:
            return [(up, op_id) for up in self.conns for op_id in up.ops]

    def send(self, make: Callable[[Upstream], list[Json]]) -> None:
        """Send every open operation the messages ``make`` returns for its connection
        (``id`` filled in), back to back; return once they are written."""
        assert self.loop is not None

        async def go() -> None:
            for up, op_id in self.open_ops():
                for m in make(up):
                    if m["type"] != "next":  # over: no longer open
                        up.ops.pop(op_id, None)
                    await up.ws.send_text(json.dumps({**m, "id": op_id}))

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)

    def subscribers(self) -> int:
        return len(self.open_ops())

    def wait_subscribers(self, n: int, timeout: float = 20) -> None:
        wait_for(lambda: self.subscribers() == n, f"{n} scripted feed subscriptions", timeout)


def event(n: int, uid: str = "u1", blob: int = 0) -> Json:
    """A ``next`` with orderEvents #n, for the order of user ``uid``, shaped as the router's root fetch
    asks (``subscription{orderEvents{id order{number user{__typename _fk_id:id}}}}``)."""
    ev: Json = {
        "__typename": "OrderEvent",
        "id": str(n),
        "type": "order.created",
        "order": {
            "__typename": "Order",
            "number": f"SG-{n:04d}",
            "user": {"__typename": "User", "_fk_id": uid},
            "items": [],
        },
    }
    if blob:
        ev["blob"] = "x" * blob
    return {"type": "next", "payload": {"data": {"orderEvents": ev}}}


class ScriptedLive(Live):
    """A router in front of a :class:`ScriptedFeed`: ``subscribers`` counts its open operations."""

    scripted: ScriptedFeed

    def subscribers(self) -> int:
        return self.scripted.subscribers()


def start_scripted(subgraphs: ThreadServer, *, batching: bool = True, **settings: Any) -> Iterator[ScriptedLive]:
    scripted = ScriptedFeed()
    keys = Keys()

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse(keys.jwks())

    with (
        ThreadServer(scripted.app) as fs,
        ThreadServer(Starlette(routes=[Route("/jwks", jwks)])) as js,
    ):
        sdl = compose("live", subgraphs.url, {"feed": fs.url + "/feed/", "people": fs.url + "/people/"})
        app = create_app(sdl, Settings(jwks_urls=(js.url + "/jwks",), service_secret=SERVICE_SECRET, **settings))
        with ThreadServer(app, batching=batching) as r:
            live = ScriptedLive(r.url + "/graphql", "", keys, app.state.subscriptions)
            live.scripted = scripted
            yield live
