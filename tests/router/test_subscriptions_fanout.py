"""Fan-out: 500 concurrent WebSocket subscribers over one router all receive a
burst of 200 events, complete and in order, through one upstream subscription."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect

from tests.router.subs_support import Live, live

__all__ = ["live"]

SUBSCRIBERS = 500
BURST = 200
QUERY = "subscription { orderEvents { id type order { number } } }"


async def subscriber(url: str, token: str, n: int, ready: asyncio.Event, count: list[int]) -> list[int]:
    async with connect(url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
        count[0] += 1
        if count[0] == SUBSCRIBERS:
            ready.set()
        ids: list[int] = []
        while len(ids) < n:
            msg: dict[str, Any] = json.loads(await ws.recv())
            assert msg["type"] == "next", msg
            ev = msg["payload"]["data"]["orderEvents"]
            assert ev["order"]["number"].startswith("SG-")
            ids.append(int(ev["id"]))
        return ids


async def test_500_subscribers_receive_a_burst_of_200_complete_and_in_order(live: Live) -> None:
    token = live.admin()
    ready = asyncio.Event()
    count = [0]
    tasks = [asyncio.create_task(subscriber(live.ws_url, token, BURST, ready, count)) for _ in range(SUBSCRIBERS)]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.to_thread(live.wait_subscribers, 1, 60)  # same operation, caller: merged upstream
    assert len(live.service.feeds) == 1
    last = await asyncio.to_thread(live.emit, BURST)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 240)
    expected = list(range(last - BURST + 1, last + 1))
    assert all(ids == expected for ids in results)
    assert live.service.pool.connections == 1
    await asyncio.to_thread(live.wait_subscribers, 0, 60)
