"""Subscriptions over HTTP: Server-Sent Events and multipart responses.

- graphql-sse, "distinct connections mode" (``Accept: text/event-stream``):
  ``event: next`` per result, ``event: complete`` at the end, ``:`` comments
  as keep-alives. A query or mutation is one ``next`` then ``complete`` (one
  ``next`` per incremental payload when it has ``@defer``).
- Multipart subscriptions as Apollo Client and Apollo Router speak them
  (``Accept: multipart/mixed;subscriptionSpec="1.0"``): parts with boundary
  ``graphql``, ``{"payload": result}`` per event, ``{}`` heartbeats, and
  ``{"payload": null, "errors": [...]}`` when the subscription fails.

A subscriber too slow for its buffer is dropped: its response is cut.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from router import errors
from router.errors import RouterError, error
from router.incremental import deferred_payloads
from router.pipeline import Ready
from router.subscriptions import MULTIPART, SSE, SubscriptionService

log = logging.getLogger("shopgraph.router.subscriptions")

MULTIPART_TYPE = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'
_PART = b"\r\n--graphql\r\ncontent-type: application/json\r\n\r\n"
_END = b"\r\n--graphql--\r\n"


def _sse(event: str, data: Any = None) -> bytes:
    body = orjson.dumps(data) if data is not None else b""
    return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"


async def _results(
    service: SubscriptionService, ready: Ready, heartbeat: float
) -> AsyncIterator[dict[str, Any] | None]:
    if ready.p.op.kind != "subscription":
        if ready.p.plan.deferred and not ready.p.introspection:
            async for payload in deferred_payloads(service.pipeline, ready):  # a `next` event each
                yield payload
        else:
            yield await service.pipeline.execute(ready)
        return
    task = asyncio.current_task()

    def overflow() -> None:  # too slow: the response task is blocked writing to the client; cut it
        if task is not None:
            task.cancel()

    stream = service.open(ready, on_overflow=overflow)
    async for r in stream.events(heartbeat):
        yield r


async def _sse_body(results: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[bytes]:
    yield b":\n\n"  # flush the headers at once
    try:
        async for r in results:
            yield b":\n\n" if r is None else _sse("next", r)
    except RouterError as e:
        yield errors.sse_event(e)
    except Exception:
        log.exception("SSE subscription failed")
        yield _sse("next", {"errors": [error("Internal server error", "INTERNAL_SERVER_ERROR")]})
    yield _sse("complete")


async def _multipart_body(results: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[bytes]:
    yield _PART + b"{}"
    try:
        async for r in results:
            yield _PART + (b"{}" if r is None else orjson.dumps({"payload": r}))
    except RouterError as e:
        yield _PART + errors.multipart_part(e)
    except Exception:
        log.exception("multipart subscription failed")
        yield _PART + orjson.dumps(
            {"payload": None, "errors": [error("Internal server error", "INTERNAL_SERVER_ERROR")]}
        )
    yield _END


def respond(mode: str, service: SubscriptionService, ready: Ready) -> StreamingResponse:
    heartbeat = service.settings.subscription_heartbeat
    results = _results(service, ready, heartbeat)
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    if mode == SSE:
        return StreamingResponse(
            _sse_body(results),
            media_type="text/event-stream; charset=utf-8",
            headers={**headers, "connection": "keep-alive"},
        )
    assert mode == MULTIPART
    return StreamingResponse(_multipart_body(results), media_type=MULTIPART_TYPE, headers=headers)
