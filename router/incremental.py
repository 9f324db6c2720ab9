"""Incremental delivery of `@defer`red results (the payloads Apollo Client reads).

The first payload carries the primary part's data (deferred fragments left out)
as soon as its fetches finish; then one payload per finished deferred part,
with an `incremental` item per object it completes; `hasNext` says whether more
come. A transport (multipart/mixed, WebSocket/SSE `next` messages) sends each
as it is yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLObjectType

from router.executor import Executor
from router.operation import Sel
from router.plan import QueryPlan
from router.response import Shaper

Json = dict[str, Any]


async def incremental_results(
    executor: Executor,
    shaper: Shaper,
    plan: QueryPlan,
    root: GraphQLObjectType,
    sels: list[Sel],
    variables: Json,
    headers: dict[str, str],
) -> AsyncIterator[Json]:
    left = len(plan.deferred)
    async for data, errors, part in executor.execute_incremental(plan, variables, headers):
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
