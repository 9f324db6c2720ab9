"""Many subscriptions multiplexed on one client WebSocket: each gets every event of its
own operation, once and in order, whether the server writes them batched (as
``shopgraph router`` serves, router/ws_frames.py) or one ASGI send each (any other
ASGI server); completing one leaves the others running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.router.router_harness import ThreadServer
from tests.router.subs_support import EVENTS, Live, start_live
from tests.support.wait import until

PLAIN = "subscription { orderEvents { id type } }"  # no entity fetch: each event is shaped at once
PER_QUERY = 40
BURST = 60


@pytest.fixture(scope="module", params=["batched", "one-send-each"])
def router(request: pytest.FixtureRequest, subgraphs: ThreadServer) -> Iterator[Live]:
    yield from start_live(subgraphs, batching=request.param == "batched")


async def test_multiplexed_subscriptions_each_get_their_own_events_in_order(router: Live) -> None:
    async with connect(router.ws_url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {router.admin()}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        queries = {f"e{i}": EVENTS for i in range(PER_QUERY)} | {f"p{i}": PLAIN for i in range(PER_QUERY)}
        for op_id, query in queries.items():
            await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))
        await asyncio.to_thread(router.wait_subscribers, 2)  # two upstream subscriptions, one per operation
        assert router.service.active == 2 * PER_QUERY
        await ws.send(json.dumps({"id": "e0", "type": "complete"}))  # e0 leaves; everyone else stays
        await until(lambda: router.service.active == 2 * PER_QUERY - 1, what="e0 gone from the router")
        last = await asyncio.to_thread(router.emit, BURST)
        expected = list(range(last - BURST + 1, last + 1))
        got: dict[str, list[int]] = {op_id: [] for op_id in queries}
        want = (2 * PER_QUERY - 1) * BURST
        async with asyncio.timeout(60):
            for _ in range(want):
                msg: dict[str, Any] = json.loads(await ws.recv())
                assert msg["type"] == "next" and "errors" not in msg["payload"], msg
                event = msg["payload"]["data"]["orderEvents"]
                if msg["id"].startswith("e"):  # enriched through users and catalog
                    assert "@" in event["order"]["user"]["email"] and event["order"]["items"], event
                else:
                    assert set(event) == {"id", "type"}, event
                got[msg["id"]].append(int(event["id"]))
        assert got.pop("e0") == []
        assert all(ids == expected for ids in got.values()), {k: v[:5] for k, v in got.items() if v != expected}
        await ws.send(json.dumps({"id": "p1", "type": "complete"}))
    await asyncio.to_thread(router.wait_subscribers, 0)
    assert router.service.active == 0 and not router.service.groups
