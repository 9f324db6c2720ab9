"""Incremental delivery of `@defer`red results (the payloads Apollo Client reads).

The first payload carries the primary part's data (deferred fragments left out)
as soon as its fetches finish; then one payload per finished deferred part,
with an `incremental` item per object it completes; `hasNext` says whether more
come. A transport (multipart/mixed, WebSocket/SSE `next` messages) sends each
as it is yielded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from graphql import GraphQLObjectType
from starlette.responses import StreamingResponse

from router import telemetry
from router.errors import RouterError
from router.executor import Executor
from router.operation import Sel
from router.pipeline import Pipeline, Ready
from router.plan import QueryPlan
from router.response import Shaper

Json = dict[str, Any]
log = logging.getLogger("shopgraph.router")

# Apollo Router's and Apollo Client's multipart format for @defer
DEFER_SPEC = "deferspec=20220824"
MULTIPART_DEFER_TYPE = 'multipart/mixed;boundary="-";deferSpec=20220824'
_PART = b"\r\n---\r\ncontent-type: application/json; charset=utf-8\r\n\r\n"
_END = b"\r\n-----\r\n"


async def incremental_results(
    executor: Executor,
    shaper: Shaper,
    plan: QueryPlan,
    root: GraphQLObjectType,
    sels: list[Sel],
    variables: Json,
    headers: Mapping[str, dict[str, str]],
    sanitize: Callable[[list[Json]], list[Json]],
    viewer: str | None = None,
) -> AsyncGenerator[Json]:
    left = len(plan.deferred)
    async for data, raw_errors, part in executor.execute_incremental(plan, variables, headers, viewer):
        errors = sanitize(raw_errors)  # subgraph errors reach clients only as the router cleans them
        payload: Json
        if part is None:
            payload = {"data": shaper.shape(root, shaper.primary(sels), data, variables, errors)}
            if errors:
                payload = {"errors": errors, **payload}
        else:
            left -= 1
            payload = {"incremental": shaper.shape_deferred(part, data, variables, errors)}
        payload["hasNext"] = left > 0
        yield payload


async def deferred_payloads(pipeline: Pipeline, ready: Ready) -> AsyncIterator[Json]:
    """A deferred query's payloads for a transport sending each as a `next` message
    (WebSocket, SSE), all within the whole-request deadline (a RouterError past it)."""
    p = ready.p
    executor = p.schema.executor
    assert executor is not None, "Pipeline.bind() not called"
    timeout = pipeline.settings.request_timeout
    deadline = asyncio.get_running_loop().time() + timeout
    results = incremental_results(
        executor,
        p.schema.shaper,
        p.plan,
        p.root,
        p.op.sels,
        ready.variables,
        pipeline.auth.headers(ready.caller),
        pipeline.sanitize,
        ready.caller.viewer,
    )
    failed = False
    try:
        while True:
            # the deadline covers the fetches only, not the time the client takes to read a payload
            try:
                async with asyncio.timeout_at(deadline):
                    payload = await anext(results)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise RouterError.of(f"Request timed out after {timeout:g}s.", "GATEWAY_TIMEOUT", 504) from None
            failed = failed or "errors" in payload or any("errors" in i for i in payload.get("incremental", ()))
            yield payload
    finally:
        await results.aclose()
    telemetry.note_outcome("graphql_error" if failed else "ok")


def accepts_defer(accept: str) -> bool:
    """Does the client take @defer results as multipart/mixed parts?"""
    a = accept.lower().replace(" ", "")
    return "multipart/mixed" in a and DEFER_SPEC in a


def defer_response(pipeline: Pipeline, ready: Ready) -> StreamingResponse:
    """A query with @defer, answered part by part as multipart/mixed."""
    p = ready.p
    executor = p.schema.executor
    assert executor is not None, "Pipeline.bind() not called"
    headers = pipeline.auth.headers(ready.caller)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for payload in incremental_results(
                executor,
                p.schema.shaper,
                p.plan,
                p.root,
                p.op.sels,
                ready.variables,
                headers,
                pipeline.sanitize,
                ready.caller.viewer,
            ):
                yield _PART + orjson.dumps(payload)
        except Exception:
            log.exception("deferred response failed")
            err = {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
            yield _PART + orjson.dumps({"hasNext": False, "errors": [err]})
        yield _END

    return StreamingResponse(body(), media_type=MULTIPART_DEFER_TYPE, headers={"cache-control": "no-cache"})
