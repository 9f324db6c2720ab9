"""The graphql-transport-ws protocol (npm ``graphql-ws``) for clients, on /graphql.

The token comes in the ``connection_init`` payload (``Authorization`` or
``authorization``: "Bearer <token>") or else the upgrade request's
Authorization header. Close codes follow graphql-ws: 4400 bad message, 4401
unauthorized (bad token, subscribe before ack, token expired — with the
reason), 4406 wrong subprotocol, 4408 init timeout, 4409 duplicate id, 4429
repeated init; 1009 for a message larger than the router's body limit; 1013 when
the client is too slow to keep up with its events. Each ``subscribe`` goes
through the same pipeline as an HTTP request (router/pipeline.py); a refusal
is an ``error`` message for that operation (router/errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from router import errors
from router.auth import AuthError, Caller, bearer
from router.errors import RouterError, error
from router.incremental import deferred_payloads
from router.request import Client, from_params
from router.subscriptions import TOO_SLOW, SubscriptionService

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = 10.0
log = logging.getLogger("shopgraph.router.subscriptions")


class _Encoded:
    """Serialised results, by object: identical subscriptions share one result (see
    ``SharedResults``), so its JSON is built once per event, not once per subscriber."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._texts: OrderedDict[int, tuple[Any, str]] = OrderedDict()

    def __call__(self, result: dict[str, Any]) -> str:
        hit = self._texts.get(id(result))
        if hit is not None and hit[0] is result:  # the entry holds ``result``: its id cannot be reused meanwhile
            return hit[1]
        text = orjson.dumps(result).decode()
        self._texts[id(result)] = (result, text)
        if len(self._texts) > self.size:
            self._texts.popitem(last=False)
        return text


_encoded = _Encoded()


def _reason(text: str) -> str:
    return text.encode()[:123].decode(errors="ignore")  # a close reason fits in 123 bytes


class Connection:
    def __init__(self, ws: WebSocket, service: SubscriptionService, client: Client) -> None:
        self.ws = ws
        self.service = service
        self.pipeline = service.pipeline
        self.client = client  # address and headers (the token comes with connection_init)
        self.caller: Caller | None = None
        self.init_received = False
        self.ops: dict[str, asyncio.Task[None]] = {}
        self.closing = False
        self.lock = asyncio.Lock()

    async def run(self) -> None:
        ws = self.ws
        offered = ws.scope.get("subprotocols") or []
        if PROTOCOL not in offered:
            await ws.accept()
            await ws.close(4406, "Subprotocol not acceptable")
            return
        await ws.accept(subprotocol=PROTOCOL)
        timers = [asyncio.create_task(self._init_timeout())]
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
                timer = await self._handle(text)
                if timer is not None:
                    timers.append(timer)
                if self.closing:
                    break
        except WebSocketDisconnect:
            pass
        finally:
            for t in [*timers, *self.ops.values()]:
                t.cancel()
            await asyncio.gather(*timers, *self.ops.values(), return_exceptions=True)

    async def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.ws.close(code, _reason(reason))

    async def send(self, msg: dict[str, Any]) -> None:
        await self.send_text(orjson.dumps(msg).decode())

    async def send_text(self, text: str) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED or self.closing:
            return
        async with self.lock:
            await self.ws.send_text(text)

    async def _init_timeout(self) -> None:
        await asyncio.sleep(INIT_TIMEOUT)
        if self.caller is None:
            await self.close(4408, "Connection initialisation timeout")

    async def _expire(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.time()))
        await self.close(4401, "Token expired")

    async def _handle(self, text: str) -> asyncio.Task[None] | None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self.close(4400, "Invalid message received: not JSON")
            return None
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "connection_init":
            return await self._init(msg.get("payload"))
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self._subscribe(msg)
        elif kind == "complete":
            task = self.ops.pop(str(msg.get("id")), None)
            if task is not None:
                task.cancel()
        else:
            await self.close(4400, f"Invalid message received: unknown type {kind!r}")
        return None

    async def _init(self, payload: Any) -> asyncio.Task[None] | None:
        if self.init_received:
            await self.close(4429, "Too many initialisation requests")
            return None
        self.init_received = True
        if payload is not None and not isinstance(payload, dict):
            await self.close(4400, "Invalid message received: payload must be an object")
            return None
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
            return None
        self.caller = caller
        await self.send({"type": "connection_ack"})
        if caller.expires_at is not None:
            return asyncio.create_task(self._expire(caller.expires_at))
        return None

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
            await self.send(
                {
                    "id": op_id,
                    "type": "error",
                    "payload": [
                        error(f"Too many subscriptions on this connection (at most {limit}).", "TOO_MANY_SUBSCRIPTIONS")
                    ],
                }
            )
            return
        task = asyncio.create_task(self._operation(op_id, payload))
        self.ops[op_id] = task

    async def _operation(self, op_id: str, payload: dict[str, Any]) -> None:
        try:
            assert self.caller is not None  # subscribe is refused before connection_ack
            ready = await self.pipeline.prepare(from_params(payload), self.caller, streaming=True)
            if ready.p.op.kind != "subscription" and ready.p.plan.deferred and not ready.p.introspection:
                async for payload in deferred_payloads(self.pipeline, ready):  # a `next` message each
                    await self.send({"id": op_id, "type": "next", "payload": payload})
            elif ready.p.op.kind != "subscription":
                single = await self.pipeline.execute(ready)
                await self.send({"id": op_id, "type": "next", "payload": single})
            else:

                def overflow() -> None:  # the client does not keep up: drop it
                    task = self.ops.pop(op_id, None)
                    if task is not None:
                        task.cancel()  # it is likely blocked writing to the client
                    asyncio.get_running_loop().create_task(
                        self.close(1013, "Subscriber too slow: event buffer overflowed")
                    )

                head = '{"id":' + orjson.dumps(op_id).decode() + ',"type":"next","payload":'
                async for result in self.service.open(ready, overflow).events():
                    if result is not None:
                        await self.send_text(head + _encoded(result) + "}")
            await self.send({"id": op_id, "type": "complete"})
        except RouterError as e:
            if e.code != TOO_SLOW:
                await self.send(errors.ws_message(op_id, e))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subscription %s failed", op_id)
            await self.send(
                {"id": op_id, "type": "error", "payload": [error("Internal server error", "INTERNAL_SERVER_ERROR")]}
            )
        finally:
            if self.ops.get(op_id) is asyncio.current_task():
                del self.ops[op_id]


async def serve(ws: WebSocket, service: SubscriptionService, client: Client) -> None:
    await Connection(ws, service, client).run()
