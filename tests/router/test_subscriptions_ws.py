"""Subscriptions through the router over WebSocket (graphql-transport-ws):
`gql`'s websockets transport and raw `websockets` for the protocol edges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.router.router_harness import ThreadServer
from tests.router.subs_support import EVENTS, Live, live, start_live

__all__ = ["live"]


def transport(live: Live, token: str | None) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=live.ws_url,
        init_payload={"Authorization": f"Bearer {token}"} if token else {},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )


async def collect(agen: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async for r in agen:
        out.append(r)
        if len(out) == n:
            break
    return out


class Raw:
    """A bare graphql-transport-ws client for protocol-level checks."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg))

    async def recv(self, within: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(within):
            return dict(json.loads(await self.ws.recv()))

    async def init(self, token: str | None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"} if token else {}})
        return await self.recv()

    async def closed(self, within: float = 10) -> tuple[int | None, str]:
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as e:
            return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")
        raise AssertionError("not closed")


async def raw(live: Live, **kw: Any) -> Raw:
    ws = await connect(live.ws_url, subprotocols=kw.pop("subprotocols", ["graphql-transport-ws"]), **kw)
    return Raw(ws)


async def test_enriched_events_over_gql_websockets(live: Live) -> None:
    async with Client(transport=transport(live, live.admin())) as session:
        agen = session.subscribe(gql(EVENTS))
        first = asyncio.ensure_future(collect(agen, 3))
        await asyncio.to_thread(live.wait_subscribers, 1)
        last = await asyncio.to_thread(live.emit, 3)
        got = await asyncio.wait_for(first, 20)
    assert [int(r["orderEvents"]["id"]) for r in got] == [last - 2, last - 1, last]
    ev = got[-1]["orderEvents"]
    n = last % 9 + 1
    assert ev["type"] == "order.created"
    assert ev["order"]["number"] == f"SG-{n:04d}"
    assert ev["order"]["user"] == {"email": f"u{n % 3 + 1}@example.com"}  # from people
    assert ev["order"]["items"] == [
        {"product": {"name": f"Product p{n}"}},  # from catalog
        {"product": {"name": f"Product p{n + 1}"}},
    ]


async def test_identity_reaches_the_subgraph_in_connection_init(live: Live) -> None:
    async with Client(transport=transport(live, live.keys.token("u7", "CUSTOMER", ttl=120))) as session:
        got = await collect(session.subscribe(gql("subscription { whoami }")), 1)
    sub, uid, role, left = got[0]["whoami"].split("|")
    assert (sub, uid, role) == ("service:router", "u7", "CUSTOMER")
    assert 100 < int(left) <= 120  # the upstream token lives as long as the client's


async def test_queries_and_ticks_over_websocket(live: Live) -> None:
    async with Client(transport=transport(live, None)) as session:
        r = await session.execute(gql('{ order(id: "o4") { number user { email } } }'))
        assert r == {"order": {"number": "SG-0004", "user": {"email": "u2@example.com"}}}
        ticks = [t["ticks"] async for t in session.subscribe(gql("subscription { ticks(count: 5) }"))]
    assert ticks == [1, 2, 3, 4, 5]


async def test_subgraph_refusals_are_graphql_errors(live: Live) -> None:
    async with Client(transport=transport(live, live.keys.token("u3", "CUSTOMER"))) as session:
        with pytest.raises(TransportQueryError, match="Only an administrator"):
            await collect(session.subscribe(gql(EVENTS)), 1)
        with pytest.raises(TransportQueryError, match="cannot follow this order"):
            await collect(session.subscribe(gql('subscription { orderUpdated(id: "o1") { id } }')), 1)
        # u3 owns o2: allowed
        got = [r async for r in session.subscribe(gql('subscription { orderUpdated(id: "o2") { type } }'))]
    assert [g["orderUpdated"]["type"] for g in got] == ["order.paid", "order.shipped"]


async def test_validation_errors_are_error_messages(live: Live) -> None:
    c = await raw(live)
    assert (await c.init(None))["type"] == "connection_ack"
    await c.send({"id": "1", "type": "subscribe", "payload": {"query": "subscription { nope }"}})
    msg = await c.recv()
    assert msg["type"] == "error" and msg["id"] == "1"
    assert msg["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    await c.ws.close()


@pytest.mark.parametrize("token", ["not-a-jwt", "EXPIRED"])
async def test_bad_tokens_close_the_connection_with_4401(live: Live, token: str) -> None:
    if token == "EXPIRED":
        token = live.keys.token(ttl=-10)
    c = await raw(live)
    await c.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    code, reason = await c.closed()
    assert code == 4401 and reason.startswith("Unauthorized: ")
    assert ("expired" in reason) == (token != "not-a-jwt")


async def test_token_from_the_upgrade_request_header(live: Live) -> None:
    c = await raw(live, additional_headers={"Authorization": "Bearer junk"})
    await c.send({"type": "connection_init"})
    assert (await c.closed())[0] == 4401
    c = await raw(live, additional_headers={"Authorization": f"Bearer {live.admin()}"})
    assert (await c.init(None))["type"] == "connection_ack"
    await c.send({"id": "w", "type": "subscribe", "payload": {"query": "subscription { whoami }"}})
    assert (await c.recv())["payload"]["data"]["whoami"].startswith("service:router|u1|ADMIN")
    await c.ws.close()


async def test_connection_closes_when_the_token_expires(live: Live) -> None:
    c = await raw(live)
    assert (await c.init(live.admin(ttl=2)))["type"] == "connection_ack"
    ticks = "subscription { ticks(count: 1000, interval: 0.05) }"
    await c.send({"id": "t", "type": "subscribe", "payload": {"query": ticks}})
    assert (await c.recv())["type"] == "next"
    code, reason = await c.closed(within=10)
    assert (code, reason) == (4401, "Token expired")


async def test_protocol_rules(live: Live) -> None:
    c = await raw(live, subprotocols=["graphql-ws"])
    assert (await c.closed())[0] == 4406
    c = await raw(live)
    await c.send({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
    assert (await c.closed())[0] == 4401  # subscribe before connection_ack
    c = await raw(live)
    await c.init(None)
    await c.send({"type": "ping"})
    assert (await c.recv()) == {"type": "pong"}
    await c.send({"type": "connection_init"})
    assert (await c.closed())[0] == 4429
    c = await raw(live)
    await c.init(None)
    sub = {"id": "x", "type": "subscribe", "payload": {"query": "subscription { ticks(count: 100, interval: 0.1) }"}}
    await c.send(sub)
    await c.send(sub)
    assert (await c.closed())[0] == 4409
    c = await raw(live)
    await c.init(None)
    await c.ws.send("{nope")
    assert (await c.closed())[0] == 4400


async def test_client_complete_and_disconnect_end_the_upstream_subscription(live: Live) -> None:
    c = await raw(live)
    await c.init(live.admin())
    for i, query in (("a", EVENTS), ("b", "subscription { orderEvents { id } }")):  # distinct: not merged
        await c.send({"id": i, "type": "subscribe", "payload": {"query": query}})
    await asyncio.to_thread(live.wait_subscribers, 2)
    await c.send({"id": "a", "type": "complete"})
    await asyncio.to_thread(live.wait_subscribers, 1)
    await c.ws.close()
    await asyncio.to_thread(live.wait_subscribers, 0)


async def test_upstream_errors_and_closures_reach_the_client(live: Live) -> None:
    c = await raw(live)
    await c.init(None)
    await c.send({"id": "b", "type": "subscribe", "payload": {"query": "subscription { broken }"}})
    assert (await c.recv())["payload"] == {"data": {"broken": 1}}
    msg = await c.recv()
    assert msg["type"] == "next" and msg["payload"]["errors"][0]["message"] == "the feed broke"
    assert msg["payload"]["errors"][0]["extensions"]["serviceName"] == "feed"
    assert (await c.recv()) == {"id": "b", "type": "complete"}
    await c.send({"id": "h", "type": "subscribe", "payload": {"query": "subscription { hangUp }"}})
    assert (await c.recv())["payload"] == {"data": {"hangUp": 1}}
    msg = await c.recv()
    assert msg["type"] == "error" and msg["id"] == "h"
    assert msg["payload"][0]["message"] == "Subscription to subgraph 'feed' ended: 1011 feed going away"
    assert msg["payload"][0]["extensions"]["serviceName"] == "feed"
    await c.ws.close()


@pytest.fixture(scope="module")
def tight(subgraphs: ThreadServer) -> Iterator[Live]:
    """A router with small limits: 2 subscriptions per connection, 8 buffered events."""
    yield from start_live(subgraphs, max_subscriptions_per_connection=2, subscription_buffer=8)


async def test_concurrent_subscription_limit_per_connection(tight: Live) -> None:
    c = await raw(tight)
    await c.init(None)
    for i in range(3):
        await c.send(
            {
                "id": str(i),
                "type": "subscribe",
                "payload": {"query": "subscription { ticks(count: 100, interval: 0.2) }"},
            }
        )
    msgs = [await c.recv() for _ in range(3)]
    err = next(m for m in msgs if m["type"] == "error")
    assert err["id"] == "2" and err["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    await c.ws.close()


async def test_a_slow_client_is_dropped(tight: Live) -> None:
    # The client reads nothing: TCP back-pressure stalls the router's sends, the
    # bounded buffer overflows and the router drops the subscriber.
    c = await raw(tight, max_queue=1, max_size=None)
    await c.init(tight.admin())
    query = "subscription { orderEvents { id blob(size: 65536) } }"
    await c.send({"id": "s", "type": "subscribe", "payload": {"query": query}})
    await asyncio.to_thread(tight.wait_subscribers, 1)
    for _ in range(50):  # 64 KiB events, 100 at a time, until the router gives up on the client
        await asyncio.to_thread(tight.emit, 100)
        if await asyncio.to_thread(tight.subscribers) == 0:
            break
    await asyncio.to_thread(tight.wait_subscribers, 0)
    assert tight.service.active == 0
    code, reason = await c.closed(within=30)
    assert code == 1013 and "too slow" in reason
