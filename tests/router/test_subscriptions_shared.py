"""Identical subscriptions share one upstream subscription (router/feeds.py):
counted at the subgraph (the live fixture's ``subscribers``) and in the router."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.router.subs_support import Live, live

__all__ = ["live"]

CLIENTS = 20
QUERY = "subscription($a: ID) { orderEvents(after: $a) { id order { number } } }"


class Sub:
    """One client WebSocket with one subscription."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, live: Live, token: str, variables: dict[str, Any] | None = None) -> Sub:
        ws = await connect(live.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": QUERY, "variables": variables or {}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return cls(ws)

    async def ids(self, n: int) -> list[int]:
        out: list[int] = []
        async with asyncio.timeout(30):
            while len(out) < n:
                msg = json.loads(await self.ws.recv())
                assert msg["type"] == "next", msg
                out.append(int(msg["payload"]["data"]["orderEvents"]["id"]))
        return out


async def test_identical_subscriptions_share_one_upstream_until_the_last_leaves(live: Live) -> None:
    token = live.admin()
    subs = [await Sub.open(live, token) for _ in range(CLIENTS)]
    await asyncio.to_thread(live.wait_subscribers, 1)
    assert len(live.service.feeds) == 1
    last = await asyncio.to_thread(live.emit, 5)
    got = await asyncio.gather(*(s.ids(5) for s in subs))
    assert all(ids == list(range(last - 4, last + 1)) for ids in got)  # each event once, in order

    # Leaving does not stop the others, nor the upstream.
    for s in subs[:-1]:
        await s.ws.close()
    last = await asyncio.to_thread(live.emit, 3)
    assert await subs[-1].ids(3) == [last - 2, last - 1, last]
    assert await asyncio.to_thread(live.subscribers) == 1

    await subs[-1].ws.close()  # the last one: the upstream subscription ends
    await asyncio.to_thread(live.wait_subscribers, 0)
    assert len(live.service.feeds) == 0


async def test_different_callers_or_variables_are_not_merged(live: Live) -> None:
    a = await Sub.open(live, live.admin(uid="ua"))
    b = await Sub.open(live, live.admin(uid="ub"))
    c = await Sub.open(live, live.admin(uid="ua"), {"a": "7"})  # a late joiner with another `after`
    await asyncio.to_thread(live.wait_subscribers, 3)
    assert len(live.service.feeds) == 3
    last = await asyncio.to_thread(live.emit, 2)
    for s in (a, b, c):
        assert await s.ids(2) == [last - 1, last]
        await s.ws.close()
    await asyncio.to_thread(live.wait_subscribers, 0)
