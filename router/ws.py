"""The graphql-transport-ws protocol (npm ``graphql-ws``) for clients, on /graphql.

The token comes in the ``connection_init`` payload (``Authorization`` or
``authorization``: "Bearer <token>") or else the upgrade request's
Authorization header. Close codes follow graphql-ws: 4400 bad message, 4401
unauthorized (bad token, subscribe before ack, token expired — with the
reason), 4406 wrong subprotocol, 4408 init timeout, 4409 duplicate id, 4429
repeated init; 1000 "Idle: …" for an acknowledged connection that has carried
no operation for ``subscriptions.idle_timeout_seconds`` (60 s; pings keep
nothing open, and a connection with a live subscription is never idle:
router/ws_idle.py); 1009 for a message larger than the router's body limit; 1013 when
the client is too slow to keep up with its events. Each ``subscribe`` goes
through the same pipeline as an HTTP request (router/pipeline.py); a refusal
is an ``error`` message for that operation (router/errors.py).

Everything a connection sends goes through its outbox, in order: subscription
events are pushed into it synchronously by their group
(router/subscriptions.py) — no task per subscription — and what one turn of
the event loop queued leaves in one write, synchronously when the transport
takes it at once (router/ws_frames.py), else through the connection's writer
task. A client that leaves more than its subscriptions' buffers (in messages)
or ``subscriptions.backlog_bytes`` unread is dropped with 1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from router import errors
from router.auth import AuthError, Caller, bearer
from router.errors import RouterError, error
from router.incremental import deferred_payloads
from router.request import Client, from_params
from router.subscriptions import Subscription, SubscriptionService
from router.ws_frames import SEND_TEXTS
from router.ws_idle import closed_idle

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = 10.0
log = logging.getLogger("shopgraph.router.subscriptions")


def _reason(text: str) -> str:
    return text.encode()[:123].decode(errors="ignore")  # a close reason fits in 123 bytes


class Operation:
    """One client operation (by id): the task starting or running it, then, for a
    subscription, its place in a group — which calls :meth:`deliver` and :meth:`end`."""

    __slots__ = ("conn", "head", "id", "sub", "task")

    def __init__(self, conn: Connection, op_id: str) -> None:
        self.conn = conn
        self.id = op_id
        self.head = b'{"id":' + orjson.dumps(op_id) + b',"type":"next","payload":'
        self.task: asyncio.Task[None] | None = None
        self.sub: Subscription | None = None

    def deliver(self, result: dict[str, Any], encoded: bytes) -> None:
        self.conn.push(self.head + encoded + b"}")

    def end(self, failure: RouterError | None) -> None:
        self.sub = None
        if self.conn.ops.get(self.id) is self:
            del self.conn.ops[self.id]
            self.conn.maybe_idle()
        if failure is None:
            self.conn.send({"id": self.id, "type": "complete"})
        else:
            self.conn.send(errors.ws_message(self.id, failure))

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.sub is not None:
            self.sub.close()
            self.sub = None


class Connection:
    def __init__(self, ws: WebSocket, send: Send, service: SubscriptionService, client: Client) -> None:
        self.ws = ws
        self.asgi_send = send
        # Under router/ws_frames.py's protocol: many messages in one write, synchronously when possible.
        batching = (ws.scope.get("extensions") or {}).get(SEND_TEXTS)
        self.write_now: Callable[[list[bytes]], bool] | None = batching.get("write") if batching else None
        self.service = service
        self.pipeline = service.pipeline
        self.client = client  # address and headers (the token comes with connection_init)
        self.caller: Caller | None = None
        self.init_received = False
        self.ops: dict[str, Operation] = {}
        self.closing = False  # read no further message, queue nothing more
        self.close_started = False
        self.outbox: list[bytes] = []
        self.outbox_bytes = 0  # queued and not yet written, the writer's batch included
        self.flush_due = False  # a flush is scheduled for this turn of the event loop
        self.wake = asyncio.Event()  # for the writer: the outbox has what could not be written at once
        self.busy = False  # the writer is writing (later messages wait for it, to keep the order)
        self.drained = asyncio.Event()  # everything queued has been written (or can no longer be)
        self.drained.set()
        self.writer: asyncio.Task[None] | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.idle_since: float | None = None  # acknowledged and without any operation since (monotonic)
        self.idle_timer: asyncio.TimerHandle | None = None
        self.flush_soon = self._flush  # bound once: no method object per event

    async def run(self) -> None:
        ws = self.ws
        offered = ws.scope.get("subprotocols") or []
        if PROTOCOL not in offered:
            await ws.accept()
            await ws.close(4406, "Subprotocol not acceptable")
            return
        await ws.accept(subprotocol=PROTOCOL)
        self.writer = asyncio.create_task(self._write())
        loop = asyncio.get_running_loop()
        self.timers.append(loop.call_later(INIT_TIMEOUT, self._init_timeout))
        try:
            while True:
                raw = await ws.receive()
                if raw["type"] == "websocket.disconnect":
                    break
                text = raw.get("text")
                if text is None and raw.get("bytes") is not None:
                    text = raw["bytes"].decode("utf-8", "replace")
                if text is None:
                    continue
                if len(text) > self.service.settings.max_body_bytes:
                    await self.close(1009, "Message too big")
                    break
                await self._handle(text)
                if self.closing:
                    break
        except WebSocketDisconnect:
            pass
        finally:
            self.closing = True
            starting = [op.task for op in self.ops.values() if op.task is not None]
            self._end_operations()
            for timer in self.timers:
                timer.cancel()
            if self.idle_timer is not None:
                self.idle_timer.cancel()
            tasks = [self.writer, *starting]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _end_operations(self) -> None:
        ops, self.ops = self.ops, {}
        for op in ops.values():
            op.cancel()  # a task still starting its operation is cancelled; a subscription leaves its group

    # -- sending -----------------------------------------------------------------------------

    def push(self, text: bytes) -> None:
        """Queue one message (UTF-8 JSON) for the client, after everything queued before it."""
        if self.closing:
            return
        self.outbox.append(text)
        self.outbox_bytes += len(text)
        self.drained.clear()
        # Only a backlog counts (the transport did not take the last flush): a burst queued
        # within one turn leaves in that turn's write. Bounded in messages and in bytes: each
        # message is its own copy of the event, so a client that reads nothing must not hold
        # 100 subscriptions x 1,024 events of them.
        settings = self.service.settings
        if (self.busy or self.wake.is_set()) and (
            len(self.outbox) > settings.subscription_buffer * max(1, len(self.ops))
            or self.outbox_bytes > settings.subscription_backlog_bytes
        ):
            self._overflow()
            return
        if not self.flush_due:  # once per turn: what a whole fan-out queued leaves in one write
            self.flush_due = True
            self.service.soon(self.flush_soon)

    def send(self, msg: dict[str, Any]) -> None:
        self.push(orjson.dumps(msg))

    def _overflow(self) -> None:
        """The client does not read its events: drop its subscriptions and the connection."""
        self.closing = True  # nothing more is queued, from this very fan-out on
        self.outbox = []
        self.outbox_bytes = 0
        self._end_operations()
        self.service.background(self.close(1013, "Subscriber too slow: event buffer overflowed", flush=False))

    def _flush(self) -> None:
        self.flush_due = False
        if self.busy or not self.outbox:
            return
        if self.write_now is not None and self.write_now(self.outbox):
            self.outbox.clear()  # reused: a list kept per event would keep filling the GC's oldest generation
            self.outbox_bytes = 0
            self.drained.set()
        else:
            self.wake.set()  # the writer waits until the transport takes it

    async def _write(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.outbox:
                    batch, self.outbox = self.outbox, []
                    self.busy = True
                    if self.write_now is not None:
                        await self.asgi_send({"type": SEND_TEXTS, "texts": batch})
                    else:
                        for text in batch:
                            await self.asgi_send({"type": "websocket.send", "text": text.decode()})
                    self.outbox_bytes -= sum(len(t) for t in batch)
                    self.busy = False
                self.drained.set()
        except (OSError, RuntimeError):  # the client went away (uvicorn's ClientDisconnected), or we closed
            self.closing = True
        finally:
            self.busy = False
            self.drained.set()

    async def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Close after what is queued has been written (``flush``, for at most 5 s) or at once."""
        if self.close_started:
            return
        self.close_started = True
        self.closing = True
        self._end_operations()  # nothing more will be sent: leave the groups now, not when the client reads the close
        if flush:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.drained.wait()
        # The close frame still waits for the transport (uvicorn's send): a client that reads
        # nothing gets it when it reads, or is cut by the server's keep-alive ping timeout.
        with contextlib.suppress(Exception):
            await self.ws.close(code, _reason(reason))

    # -- receiving ---------------------------------------------------------------------------

    # Timers, not sleeping tasks: a connection idles with as few objects as possible.
    def _init_timeout(self) -> None:
        if self.caller is None:
            self.service.background(self.close(4408, "Connection initialisation timeout"))

    def maybe_idle(self) -> None:
        """Start counting idle time if the connection now carries no operation (one timer per connection)."""
        timeout = self.service.settings.ws_idle_timeout
        if self.ops or self.closing or timeout <= 0 or self.caller is None:
            return
        self.idle_since = time.monotonic()
        if self.idle_timer is None:
            self.idle_timer = asyncio.get_running_loop().call_later(timeout, self._idle_check)

    def _idle_check(self) -> None:
        self.idle_timer = None
        if self.ops or self.closing or self.idle_since is None:
            return  # busy: the operation's end calls maybe_idle again
        timeout = self.service.settings.ws_idle_timeout
        left = self.idle_since + timeout - time.monotonic()
        if left > 0:  # it had an operation meanwhile, which ended
            self.idle_timer = asyncio.get_running_loop().call_later(left, self._idle_check)
            return
        closed_idle(self.client.address, timeout)
        self.service.background(self.close(1000, f"Idle: no subscription for {timeout:g} s"))

    def _expire(self) -> None:
        self.service.background(self.close(4401, "Token expired"))

    async def _handle(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self.close(4400, "Invalid message received: not JSON")
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "connection_init":
            await self._init(msg.get("payload"))  # inline: messages after it need its caller
        elif kind == "ping":
            self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self._subscribe(msg)
        elif kind == "complete":
            op = self.ops.pop(str(msg.get("id")), None)
            if op is not None:
                op.cancel()
                self.maybe_idle()
        else:
            await self.close(4400, f"Invalid message received: unknown type {kind!r}")

    async def _init(self, payload: Any) -> None:
        if self.init_received:
            await self.close(4429, "Too many initialisation requests")
            return
        self.init_received = True
        if payload is not None and not isinstance(payload, dict):
            await self.close(4400, "Invalid message received: payload must be an object")
            return
        try:
            header: Any = None
            for key in ("Authorization", "authorization"):
                if payload and key in payload:
                    header = payload[key]
                    break
            else:
                header = self.ws.headers.get("authorization")
            if header is not None and not isinstance(header, str):
                raise AuthError("Authorization must be 'Bearer <token>'")
            client = Client(bearer(header), self.client.address, self.client.headers)
            caller = await self.pipeline.auth.caller(client)
        except (AuthError, RouterError) as e:
            await self.close(4401, f"Unauthorized: {e}")
            return
        self.caller = caller
        self.send({"type": "connection_ack"})
        self.maybe_idle()
        if caller.expires_at is not None:
            delay = max(0.0, caller.expires_at - time.time())
            self.timers.append(asyncio.get_running_loop().call_later(delay, self._expire))

    async def _subscribe(self, msg: dict[str, Any]) -> None:
        if self.caller is None:
            await self.close(4401, "Unauthorized")
            return
        op_id = msg.get("id")
        payload = msg.get("payload")
        if not isinstance(op_id, str) or not op_id or not isinstance(payload, dict):
            await self.close(4400, "Invalid message received: subscribe needs an id and a query")
            return
        if op_id in self.ops:
            await self.close(4409, f"Subscriber for {op_id} already exists")
            return
        limit = self.service.settings.max_subscriptions_per_connection
        if len(self.ops) >= limit:
            self.send(
                {
                    "id": op_id,
                    "type": "error",
                    "payload": [
                        error(f"Too many subscriptions on this connection (at most {limit}).", "TOO_MANY_SUBSCRIPTIONS")
                    ],
                }
            )
            return
        op = self.ops[op_id] = Operation(self, op_id)
        self.idle_since = None
        op.task = asyncio.create_task(self._operation(op, payload))

    async def _operation(self, op: Operation, payload: dict[str, Any]) -> None:
        op_id = op.id
        try:
            assert self.caller is not None  # subscribe is refused before connection_ack
            ready = await self.pipeline.prepare(from_params(payload), self.caller, streaming=True)
            if ready.p.op.kind == "subscription":
                sub = await self.service.subscribe(ready, op)
                if self.ops.get(op_id) is op:  # events now reach the client through ``op``
                    op.sub = sub
                else:  # completed, ended or the connection closed meanwhile
                    sub.close()
                return
            if ready.p.plan.deferred and not ready.p.introspection:
                async for part in deferred_payloads(self.pipeline, ready):  # a `next` message each
                    self.send({"id": op_id, "type": "next", "payload": part})
            else:
                single = await self.pipeline.execute(ready)
                self.send({"id": op_id, "type": "next", "payload": single})
            self.send({"id": op_id, "type": "complete"})
        except RouterError as e:
            if self.ops.get(op_id) is op:  # else its group already ended it, with this error
                self.send(errors.ws_message(op_id, e))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subscription %s failed", op_id)
            self.send(
                {"id": op_id, "type": "error", "payload": [error("Internal server error", "INTERNAL_SERVER_ERROR")]}
            )
        finally:
            op.task = None
            if op.sub is None and self.ops.get(op_id) is op:
                del self.ops[op_id]
                self.maybe_idle()


class WebSocketApp:
    """The ASGI endpoint: the raw ``send`` is kept for batched writes (router/ws_frames.py)."""

    def __init__(self, serve: Any) -> None:
        self.serve = serve

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        await self.serve(WebSocket(scope, receive, send), send)


async def serve(ws: WebSocket, send: Send, service: SubscriptionService, client: Client) -> None:
    await Connection(ws, send, service, client).run()
