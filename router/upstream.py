"""Subscriptions to subgraphs over graphql-transport-ws, multiplexed.

One WebSocket per (subgraph, caller): every subscription of the same caller to
the same subgraph shares it, each under its own operation id. The connection
authenticates with an internal token in ``connection_init`` that lives as long
as the caller's own token (the subgraph closes the connection when it
expires), and is closed shortly after its last subscription ends.

Messages are handed to each subscription's sink without awaiting, so a slow
subscriber never holds up the others on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from router.errors import RouterError

Json = dict[str, Any]
# ("next", payload) | ("error", [errors]) | ("complete", None) | ("closed", [errors])
Message = tuple[str, Any]
Sink = Callable[[Message], None]

PROTOCOL = Subprotocol("graphql-transport-ws")
log = logging.getLogger("shopgraph.router.subscriptions")


def ws_url(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://") :]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://") :]
    return http_url


def _closed_error(service: str, code: int | None, reason: str) -> Json:
    detail = f"{code} {reason}".strip() if code else "connection lost"
    ext_code = {4401: "UNAUTHENTICATED", 4403: "FORBIDDEN"}.get(code or 0, "SUBSCRIPTION_UPSTREAM_CLOSED")
    return {
        "message": f"Subscription to subgraph '{service}' ended: {detail}",
        "extensions": {"code": ext_code, "serviceName": service},
    }


class Upstream:
    """One graphql-transport-ws connection to a subgraph."""

    def __init__(self, pool: UpstreamPool, key: Hashable, graph: str, auth: str | None, retire_at: float) -> None:
        self.pool = pool
        self.key = key
        self.graph = graph
        self.service = pool.names.get(graph, graph)
        self.auth = auth
        self.retire_at = retire_at  # no new subscriptions after this (token about to expire)
        self.sinks: dict[str, Sink] = {}
        self.ids = itertools.count(1)
        self.ws: ClientConnection | None = None
        self.ready: asyncio.Task[None] = asyncio.create_task(self._open())
        self.reader: asyncio.Task[None] | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.closed = False
        self.pending = 0  # subscriptions being started on this connection

    @property
    def load(self) -> int:
        return len(self.sinks) + self.pending

    async def _open(self) -> None:
        try:
            await self._handshake()
        except BaseException:
            # Failed or cancelled half-way: the socket must not outlive this upstream.
            if self.ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(), 1)
            raise
        self.reader = asyncio.create_task(self._read())

    async def _handshake(self) -> None:
        url = ws_url(self.pool.urls[self.graph])
        try:
            self.ws = await connect(
                url,
                subprotocols=[PROTOCOL],
                open_timeout=self.pool.timeout,
                max_size=self.pool.max_message,
                compression=None,
            )
            payload = {"Authorization": self.auth} if self.auth else {}
            await self.ws.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
            async with asyncio.timeout(self.pool.timeout):
                while True:
                    msg = orjson.loads(await self.ws.recv())
                    if msg.get("type") == "connection_ack":
                        break
                    if msg.get("type") == "ping":
                        await self.ws.send('{"type":"pong"}')
        except ConnectionClosed as e:
            raise RouterError(
                [_closed_error(self.service, e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else "")]
            ) from e
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, orjson.JSONDecodeError) as e:
            raise RouterError.of(
                f"Cannot subscribe through subgraph '{self.service}': {_reason(e)}",
                "SUBSCRIPTION_UPSTREAM_UNAVAILABLE",
                serviceName=self.service,
            ) from e
        except Exception as e:  # e.g. a frame that is JSON but not an object: the subgraph is not speaking the protocol
            raise RouterError.of(
                f"Subgraph '{self.service}' broke the subscription protocol: {type(e).__name__}",
                "SUBSCRIPTION_UPSTREAM_UNAVAILABLE",
                serviceName=self.service,
            ) from e

    async def _read(self) -> None:
        assert self.ws is not None
        code: int | None = None
        reason = ""
        try:
            async for raw in self.ws:
                msg = orjson.loads(raw)
                kind = msg.get("type")
                if kind == "ping":
                    await self.ws.send('{"type":"pong"}')
                    continue
                sink = self.sinks.get(msg.get("id"))
                if sink is None:
                    continue
                if kind == "next":
                    sink(("next", msg.get("payload")))
                elif kind in ("error", "complete"):
                    del self.sinks[msg["id"]]
                    sink((kind, msg.get("payload")))
                    self._maybe_idle()
        except ConnectionClosed:
            pass
        except Exception:  # malformed frames: treat like a lost connection
            log.exception("bad message from subgraph %s", self.service)
        finally:
            if self.ws.close_code is not None:
                code, reason = self.ws.close_code, self.ws.close_reason or ""
            self._fail(_closed_error(self.service, code, reason))

    def _fail(self, error: Json) -> None:
        self.closed = True
        self.pool.forget(self)
        sinks, self.sinks = self.sinks, {}
        for sink in sinks.values():
            sink(("closed", [error]))

    async def subscribe(self, payload: Json, sink: Sink) -> str:
        try:
            return await self._subscribe(payload, sink)
        finally:
            self.pending -= 1

    async def _subscribe(self, payload: Json, sink: Sink) -> str:
        try:
            await asyncio.shield(self.ready)
        except RouterError:
            self.closed = True
            self.pool.forget(self)
            raise
        if self.closed or self.ws is None:
            raise RouterError([_closed_error(self.service, None, "")])
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        op_id = str(next(self.ids))
        self.sinks[op_id] = sink
        msg = {"id": op_id, "type": "subscribe", "payload": payload}
        try:
            await self.ws.send(orjson.dumps(msg).decode())
        except ConnectionClosed as e:
            self.sinks.pop(op_id, None)
            raise RouterError([_closed_error(self.service, None, "")]) from e
        return op_id

    async def unsubscribe(self, op_id: str) -> None:
        if self.sinks.pop(op_id, None) is None or self.ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(orjson.dumps({"id": op_id, "type": "complete"}).decode())
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if not self.sinks and not self.closed and self.idle is None:
            self.idle = asyncio.get_running_loop().call_later(
                self.pool.linger, lambda: asyncio.ensure_future(self.close())
            )

    async def close(self) -> None:
        self.closed = True
        self.pool.forget(self)
        with contextlib.suppress(BaseException):
            await self.ready
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader


def _reason(e: BaseException) -> str:
    """Why a connection failed, without the address (the message reaches clients)."""
    errno = getattr(e, "errno", None)
    return os.strerror(errno) if isinstance(errno, int) else type(e).__name__


class UpstreamPool:
    def __init__(
        self,
        urls: Mapping[str, str],
        names: Mapping[str, str],
        timeout: float,
        linger: float = 5.0,
        max_message: int = 16 * 1024 * 1024,
        per_connection: int = 100,
    ) -> None:
        self.urls = urls
        self.names = names
        self.timeout = timeout
        self.linger = linger
        self.max_message = max_message
        self.per_connection = per_connection  # subgraphs cap operations per connection (strawberry: 100)
        self.conns: dict[Hashable, list[Upstream]] = {}

    def connection(
        self, graph: str, caller: Hashable, auth: Callable[[], str | None], retire_at: float, now: float
    ) -> Upstream:
        """A connection with room for one more subscription (call ``subscribe`` on it next)."""
        key = (graph, caller)
        ups = self.conns.setdefault(key, [])
        for up in ups:
            if not up.closed and up.retire_at > now and up.load < self.per_connection:
                break
        else:
            up = Upstream(self, key, graph, auth(), retire_at)
            ups.append(up)
        up.pending += 1
        return up

    def forget(self, up: Upstream) -> None:
        ups = self.conns.get(up.key)
        if ups is not None and up in ups:
            ups.remove(up)
            if not ups:
                del self.conns[up.key]

    @property
    def connections(self) -> int:
        return sum(len(ups) for ups in self.conns.values())

    async def close(self) -> None:
        ups = [u for lst in self.conns.values() for u in lst]
        await asyncio.gather(*(u.close() for u in ups), return_exceptions=True)
