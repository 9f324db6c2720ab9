"""Hostile and unlucky clients (and subgraphs) against the subscription fan-out
(router/subscriptions.py groups, router/ws.py connections, router/ws_frames.py).

Whatever a client does — stop reading, reset mid-burst, churn subscribe/complete,
let its token expire with events queued — every other subscriber keeps getting
every event once and in order, nothing reaches an id after it ended, and the
router's books (``active``, ``groups``, ``feeds``, the subgraph's subscriptions)
return to zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.router.attack_support import RawWs, ScriptedLive, event, settled, start_scripted, wait_for
from tests.router.router_harness import ThreadServer
from tests.router.subs_support import Live, start_live

Json = dict[str, Any]
PLAIN = "subscription { orderEvents { id } }"
BURST = 4  # events per emit: under the buffer, which a burst read in one loop turn fills at once
ENRICHED = "subscription { orderEvents { id order { number user { email } } } }"


def blob_query(size: int) -> str:
    return f"subscription {{ orderEvents {{ id blob(size: {size}) }} }}"


def ids_of(msgs: list[Json], op_id: str) -> list[int]:
    return [int(m["payload"]["data"]["orderEvents"]["id"]) for m in msgs if m.get("id") == op_id]


def assert_prefixes(msgs: list[Json], ops: list[str], first: int) -> None:
    """Each op got events first, first+1, ... with no gap or duplicate (possibly cut short)."""
    for m in msgs:
        assert m["type"] == "next" and m["id"] in ops, m
    for op_id in ops:
        got = ids_of(msgs, op_id)
        assert got == list(range(first, first + len(got))), (op_id, got[:10])


@pytest.fixture(scope="module", params=["batched", "one-send-each"])
def tight(request: pytest.FixtureRequest, subgraphs: ThreadServer) -> Iterator[Live]:
    """The live feed behind a router with a small per-subscription buffer, served both ways."""
    yield from start_live(subgraphs, batching=request.param == "batched", subscription_buffer=8)


@pytest.fixture(scope="module")
def scripted(subgraphs: ThreadServer) -> Iterator[ScriptedLive]:
    yield from start_scripted(subgraphs)


async def good_reader(ws: RawWs, op_ids: list[str], n: int) -> list[Json]:
    out: list[Json] = []
    while len(out) < n * len(op_ids):
        out.append(await ws.recv())
    return out


# ---- a client that stops reading ----------------------------------------------------------------


async def test_a_stalled_multiplexed_client_is_dropped_without_disturbing_its_group(tight: Live) -> None:
    """50 subscriptions on a client that stops reading share their group with a well-behaved
    connection: the staller is closed with 1013 and released; the other gets every event in order."""
    token = tight.admin()
    query = blob_query(16 * 1024)
    good = await RawWs.open(tight.ws_url, token)
    await good.subscribe("g", query)
    stalled = await RawWs.open(tight.ws_url, token)
    ops = [f"s{i}" for i in range(50)]
    for op_id in ops:
        await stalled.subscribe(op_id, query)
    await asyncio.to_thread(settled, tight, 51, 1, 1)
    assert len(tight.service.groups) == 1  # same operation and caller: one group across both connections

    start = await asyncio.to_thread(tight.emit, 0) + 1
    got: list[Json] = []
    sent = 0
    async with asyncio.timeout(60):
        while tight.service.active != 1:  # until the router gives up on the staller
            await asyncio.to_thread(tight.emit, BURST)
            sent += BURST
            got += await good_reader(good, ["g"], BURST)
        await asyncio.to_thread(tight.emit, BURST)  # the group goes on for the good one
        sent += BURST
        got += await good_reader(good, ["g"], BURST)
    assert ids_of(got, "g") == list(range(start, start + sent))
    assert len(tight.service.feeds) == 1 and tight.subscribers() == 1

    rest, closed = await stalled.until_closed()  # reading again: what was written, then the close
    assert (closed.code, closed.reason) == (1013, "Subscriber too slow: event buffer overflowed")
    assert_prefixes(rest, ops, start)
    good.close()
    await asyncio.to_thread(settled, tight)


# ---- upstream failures while events are buffered or being enriched -------------------------------


def sse_events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.partition(": ")[::2] for line in block.splitlines())
        if "event" in fields:
            out.append((fields["event"], fields.get("data", "")))
    return out


@pytest.mark.parametrize("accept", ["text/event-stream", 'multipart/mixed;subscriptionSpec="1.0"'])
async def test_an_http_stream_gets_its_buffered_events_before_the_upstream_error(
    scripted: ScriptedLive, accept: str
) -> None:
    """Events already delivered to a (briefly) slow SSE/multipart reader are not lost when the
    subgraph then fails: the client gets all of them, then the error."""
    n, size = 40, 256 * 1024  # more than the sockets hold: the response waits on the client
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            scripted.url,
            json={"query": blob_query(size)},
            headers={"accept": accept, "authorization": f"Bearer {scripted.admin()}"},
        ) as r,
    ):
        assert r.status_code == 200
        await asyncio.to_thread(scripted.scripted.wait_subscribers, 1)
        failure = {"type": "error", "payload": [{"message": "the feed failed"}]}
        await asyncio.to_thread(
            scripted.scripted.send, lambda _: [*(event(i, blob=size) for i in range(1, n + 1)), failure]
        )
        await asyncio.to_thread(wait_for, lambda: scripted.service.active == 0, "the group to end")
        body = (await r.aread()).decode()  # only now does the client read
    if accept == "text/event-stream":
        events = sse_events(body)
        nexts = [json.loads(d) for e, d in events if e == "next"]
        assert events[-1] == ("complete", "")
    else:
        parts = [json.loads(p.split("\r\n\r\n", 1)[1]) for p in body.split("\r\n--graphql")[1:-1]]
        nexts = [p["payload"] for p in parts if p.get("payload")]
        nexts.append({"errors": parts[-1]["errors"]})
    ids = [int(x["data"]["orderEvents"]["id"]) for x in nexts if x.get("data")]
    assert ids == list(range(1, n + 1))
    assert nexts[-1]["errors"][0]["message"] == "the feed failed"
    await asyncio.to_thread(settled, scripted)


async def barrier(ws: RawWs) -> list[Json]:
    """Everything the server sends before answering a ping (it answers in order)."""
    await ws.send({"type": "ping"})
    out: list[Json] = []
    while (m := await ws.recv()) != {"type": "pong"}:
        out.append(m)
    return out


@pytest.mark.parametrize("end", ["error", "complete"])
async def test_the_upstream_ending_while_enrichment_is_in_flight_comes_after_every_earlier_event(
    scripted: ScriptedLive, end: str
) -> None:
    feed = scripted.scripted
    feed.delays = {"u1": 0.6, "u2": 0.3}  # enrichments finish in reverse order, after the end arrived
    ws = await RawWs.open(scripted.ws_url, scripted.admin())
    await ws.subscribe("a", ENRICHED)
    await ws.subscribe("b", ENRICHED)
    await asyncio.to_thread(settled, scripted, 2, 1, 1)  # both in the group before the events
    last: Json = {"type": "error", "payload": [{"message": "gone"}]} if end == "error" else {"type": "complete"}
    await asyncio.to_thread(feed.send, lambda _: [event(1, "u1"), event(2, "u2"), event(3, "u3"), last])
    got = [await ws.recv() for _ in range(8)]
    got += await barrier(ws)  # and nothing after the end
    for op_id in ("a", "b"):
        mine = [m for m in got if m.get("id") == op_id]
        assert [m["type"] for m in mine] == ["next", "next", "next", end], mine
        events = [m["payload"]["data"]["orderEvents"] for m in mine[:3]]
        assert [(e["id"], e["order"]["user"]["email"]) for e in events] == [
            ("1", "u1@people"),
            ("2", "u2@people"),
            ("3", "u3@people"),
        ]
        if end == "error":
            assert mine[3]["payload"][0]["message"] == "gone"
    feed.delays = {}
    ws.close()
    await asyncio.to_thread(settled, scripted)


async def test_callers_never_get_each_others_events(scripted: ScriptedLive) -> None:
    """Two customers and an admin, two connections each, the same subscription: each event a
    subgraph sends for a caller (tagged with the caller it authenticated) reaches that caller only."""
    feed = scripted.scripted
    tokens = {
        uid: scripted.keys.token(uid, role) for uid, role in (("u2", "CUSTOMER"), ("u3", "CUSTOMER"), ("a", "ADMIN"))
    }
    clients = {(uid, i): await RawWs.open(scripted.ws_url, t) for uid, t in tokens.items() for i in range(2)}
    for ws in clients.values():
        for op_id in ("x", "y"):
            await ws.subscribe(op_id, "subscription { orderEvents { id type } }")
    await asyncio.to_thread(settled, scripted, 12, 3, 3)  # a feed (and group) per caller, never merged
    assert len(scripted.service.groups) == 3

    def tagged(up: Any) -> list[Json]:
        out = [event(i) for i in range(1, 4)]
        for m in out:
            m["payload"]["data"]["orderEvents"]["type"] = up.uid
        return out

    await asyncio.to_thread(feed.send, tagged)
    for (uid, _), ws in clients.items():
        got = [await ws.recv() for _ in range(6)] + await barrier(ws)
        assert sorted((m["id"], m["payload"]["data"]["orderEvents"]["type"]) for m in got) == sorted(
            [(op_id, uid) for op_id in ("x", "y") for _ in range(3)]
        )
        ws.close()
    await asyncio.to_thread(settled, scripted)


async def test_frames_of_every_length_class_are_well_formed(scripted: ScriptedLive) -> None:
    """Messages of 125, 126, 65535 and 65536 bytes (the edges of the 7-bit, 16-bit and 64-bit
    lengths router/ws_frames.py writes), batched in one write to several subscriptions."""
    feed = scripted.scripted
    ws = await RawWs.open(scripted.ws_url, scripted.admin())
    query = blob_query(1)
    for op_id in ("p", "q"):
        await ws.subscribe(op_id, query)
    await asyncio.to_thread(settled, scripted, 2, 1, 1)
    overhead = len(b'{"id":"p","type":"next","payload":{"data":{"orderEvents":{"id":"1","blob":""}}}}')
    sizes = [125, 126, 127, 65535, 65536, 65537]
    await asyncio.to_thread(feed.send, lambda _: [event(i + 1, blob=size - overhead) for i, size in enumerate(sizes)])
    got = [await ws.recv() for _ in range(2 * len(sizes))]
    for op_id in ("p", "q"):
        mine = [m for m in got if m["id"] == op_id]
        assert [len(json.dumps(m, separators=(",", ":"))) for m in mine] == sizes
    ws.close()
    await asyncio.to_thread(settled, scripted)


async def test_malformed_events_are_errors_in_their_place_and_the_stream_goes_on(scripted: ScriptedLive) -> None:
    """A subgraph sending events that do not fit the operation (while an earlier one is still
    being enriched): each is an error result in its place, later events still arrive."""
    feed = scripted.scripted
    feed.delays = {"u1": 0.3}
    ws = await RawWs.open(scripted.ws_url, scripted.admin())
    await ws.subscribe("a", ENRICHED)
    await asyncio.to_thread(settled, scripted, 1, 1, 1)

    def bad(path: list[str], value: Any) -> Json:
        m = event(2)
        at = m["payload"]
        for k in path[:-1]:
            at = at[k]
        at[path[-1]] = value
        return m

    user = ["data", "orderEvents", "order", "user"]
    bads = [
        bad(user, "oops"),
        bad(user, 5),
        bad(user, {"__typename": 5, "_fk_id": "u1"}),
        bad(user, {"__typename": "Nope", "_fk_id": "u1"}),
        bad(["data", "orderEvents", "order"], "oops"),
        bad(["data", "orderEvents"], [1]),
        bad(["data"], {"orderEvents": {"order": {"user": None}}}),
    ]
    await asyncio.to_thread(feed.send, lambda _: [event(1, "u1"), *bads, event(3, "u3")])
    got = [await ws.recv() for _ in range(len(bads) + 2)] + await barrier(ws)
    assert [m["type"] for m in got] == ["next"] * (len(bads) + 2)
    assert got[0]["payload"]["data"]["orderEvents"]["id"] == "1"
    assert got[-1]["payload"]["data"]["orderEvents"]["id"] == "3"
    for m in got[1:-1]:
        assert m["payload"]["data"] is None and m["payload"]["errors"], m
        assert all(e["extensions"]["code"] != "INTERNAL_SERVER_ERROR" for e in m["payload"]["errors"]), m
    feed.delays = {}
    ws.close()
    await asyncio.to_thread(settled, scripted)


# ---- the live feed: churn, resets, expiry, groups ------------------------------------------------


@pytest.fixture(scope="module", params=["batched", "one-send-each"])
def roomy(request: pytest.FixtureRequest, subgraphs: ThreadServer) -> Iterator[Live]:
    """The live feed behind a router with the default message buffers and room for tens of MB of
    backlog (these tests queue that much on purpose; the byte bound has a test of its own), served
    both ways."""
    yield from start_live(subgraphs, batching=request.param == "batched", subscription_backlog_bytes=256 << 20)


AFTER = "subscription($a: ID) { orderEvents(after: $a) { id } }"  # a feed per `after`


async def test_subscribe_complete_churn_leaks_nothing_and_completed_ids_stay_silent(roomy: Live) -> None:
    ws = await RawWs.open(roomy.ws_url, roomy.admin())
    for i in range(300):
        op_id = f"c{i % 7}"  # ids reused once completed
        await ws.subscribe(op_id, AFTER, {"a": str(i % 4)})
        if i % 3 == 0:  # now and then the subscription has started before it is completed
            await asyncio.to_thread(wait_for, lambda: roomy.service.active >= 1, "a subscription")
        await ws.send({"id": op_id, "type": "complete"})  # often before it started
    # Completing twice, completing unknown ids and re-subscribing a just-completed id.
    await ws.send({"id": "c0", "type": "complete"})
    await ws.send({"id": "never", "type": "complete"})
    await ws.subscribe("c1", AFTER, {"a": "0"})
    await ws.send({"id": "c1", "type": "complete"})
    await ws.subscribe("c1", AFTER, {"a": "0"})  # the one that stays
    assert await barrier(ws) == []  # nothing for any completed id
    await asyncio.to_thread(settled, roomy, 1, 1, 1)
    assert len(roomy.service.groups) == 1
    last = await asyncio.to_thread(roomy.emit, 5)
    got = [await ws.recv() for _ in range(5)] + await barrier(ws)
    assert [(m["id"], int(m["payload"]["data"]["orderEvents"]["id"])) for m in got] == [
        ("c1", n) for n in range(last - 4, last + 1)
    ]
    ws.close()
    await asyncio.to_thread(settled, roomy)


async def test_a_reset_in_the_middle_of_a_burst_leaks_nothing(roomy: Live) -> None:
    token = roomy.admin()
    query = blob_query(8 * 1024)
    good = await RawWs.open(roomy.ws_url, token)
    await good.subscribe("g", query)
    doomed = await RawWs.open(roomy.ws_url, token)
    for i in range(20):
        await doomed.subscribe(f"d{i}", query)
    await asyncio.to_thread(settled, roomy, 21, 1, 1)
    start = await asyncio.to_thread(roomy.emit, 0) + 1
    burst = asyncio.ensure_future(asyncio.to_thread(roomy.emit, 200))
    got = [await doomed.recv() for _ in range(30)]  # the burst has begun
    doomed.reset()
    await burst
    got += await good_reader(good, ["g"], 200)
    assert ids_of(got, "g") == list(range(start, start + 200))
    await asyncio.to_thread(settled, roomy, 1, 1, 1)
    good.close()
    await asyncio.to_thread(settled, roomy)


async def test_a_token_expiring_with_events_queued_releases_at_once_and_closes_4401_after_them(roomy: Live) -> None:
    """The client has stopped reading when its token expires: its subscriptions end then (not
    when it reads the close frame, or the keep-alive times out); the events queued before the
    expiry still reach it, then the 4401 close."""
    ws = await RawWs.open(roomy.ws_url, roomy.admin(ttl=2))
    try:
        ops = [f"t{i}" for i in range(10)]
        for op_id in ops:
            await ws.subscribe(op_id, blob_query(64 * 1024))
        await asyncio.to_thread(settled, roomy, 10, 1, 1)
        start = await asyncio.to_thread(roomy.emit, 30) - 29  # 19 MB: more than the sockets hold
        await asyncio.to_thread(wait_for, lambda: roomy.service.active == 0, "the expired subscriptions' end", 10)
        await asyncio.to_thread(settled, roomy)
        got, closed = await ws.until_closed()  # reading again
        assert (closed.code, closed.reason) == (4401, "Token expired")
        assert_prefixes(got, ops, start)
    finally:
        ws.close()
    await asyncio.to_thread(settled, roomy)


async def test_two_groups_on_one_feed_each_get_every_event_in_their_shape(roomy: Live) -> None:
    query = "subscription($e: Boolean!) { orderEvents { id order { number user { email @include(if: $e) } } } }"
    ws = await RawWs.open(roomy.ws_url, roomy.admin())
    for i in range(6):  # interleaved: with, without, with, ...
        await ws.subscribe(f"o{i}", query, {"e": i % 2 == 0})
    await asyncio.to_thread(settled, roomy, 6, 1, 1)
    assert len(roomy.service.groups) == 2
    last = await asyncio.to_thread(roomy.emit, 10)
    got = [await ws.recv() for _ in range(60)] + await barrier(ws)
    for i in range(6):
        mine = [m["payload"]["data"]["orderEvents"] for m in got if m["id"] == f"o{i}"]
        assert [int(e["id"]) for e in mine] == list(range(last - 9, last + 1))
        assert all(("email" in e["order"]["user"]) == (i % 2 == 0) for e in mine), mine[0]
    ws.close()
    await asyncio.to_thread(settled, roomy)


async def test_sse_and_multipart_streams_share_a_group_with_websockets(roomy: Live) -> None:
    token = roomy.admin()
    ws = await RawWs.open(roomy.ws_url, token)
    await ws.subscribe("w", PLAIN)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30) as http:
        streams = [
            http.stream("POST", roomy.url, json={"query": PLAIN}, headers={**headers, "accept": accept})
            for accept in ("text/event-stream", 'multipart/mixed;subscriptionSpec="1.0"')
        ]
        sse, multipart = [await s.__aenter__() for s in streams]
        await asyncio.to_thread(settled, roomy, 3, 1, 1)
        assert len(roomy.service.groups) == 1
        last = await asyncio.to_thread(roomy.emit, 5)
        expected = list(range(last - 4, last + 1))
        assert ids_of([await ws.recv() for _ in range(5)], "w") == expected
        sse_text = ""
        async for chunk in sse.aiter_text():
            sse_text += chunk
            if sse_text.count("event: next") == 5:
                break
        assert [int(json.loads(d)["data"]["orderEvents"]["id"]) for _, d in sse_events(sse_text)] == expected
        mp_text = ""
        async for chunk in multipart.aiter_text():
            mp_text += chunk
            if mp_text.count('"payload"') == 5:
                break
        assert [int(x) for x in re.findall(r'"id":"(\d+)"', mp_text)] == expected
        for s in streams:  # the HTTP subscribers leave; the WebSocket one stays
            await s.__aexit__(None, None, None)
        await asyncio.to_thread(settled, roomy, 1, 1, 1)
        last = await asyncio.to_thread(roomy.emit, 3)
        assert ids_of([await ws.recv() for _ in range(3)], "w") == [last - 2, last - 1, last]
    ws.close()
    await asyncio.to_thread(settled, roomy)


async def test_messages_after_the_close_start_nothing(roomy: Live) -> None:
    ws = await RawWs.open(roomy.ws_url, roomy.admin())
    await ws.subscribe("a", PLAIN)
    await asyncio.to_thread(settled, roomy, 1, 1, 1)
    ws.writer.write(ws.frame(0x8, b"\x03\xe8bye"))  # our close, then more
    with contextlib.suppress(ConnectionError):  # the server may already have cut the socket
        await ws.subscribe("b", AFTER, {"a": "late"})
        await ws.send({"id": "a", "type": "complete"})
    got, closed = await ws.until_closed()
    assert got == [] and closed.code in (1000, None)  # the close echoed, or the socket cut
    await asyncio.to_thread(settled, roomy)
    ws.close()


# ---- bounds that do not depend on the client -----------------------------------------------------


@pytest.fixture(scope="module")
def byte_bound(subgraphs: ThreadServer) -> Iterator[Live]:
    """A generous buffer in messages, 256 KiB of backlog in bytes."""
    yield from start_live(subgraphs, subscription_buffer=100_000, subscription_backlog_bytes=256 * 1024)


async def test_a_stalled_client_is_dropped_by_bytes_long_before_its_message_count(byte_bound: Live) -> None:
    # Each queued message is its own copy of the event: 20 subscriptions x 16 KiB events reach
    # 256 KiB of backlog within a few events, far below 20 x 100,000 messages.
    stalled = await RawWs.open(byte_bound.ws_url, byte_bound.admin())
    ops = [f"s{i}" for i in range(20)]
    for op_id in ops:
        await stalled.subscribe(op_id, blob_query(16 * 1024))
    await asyncio.to_thread(settled, byte_bound, 20, 1, 1)
    start = await asyncio.to_thread(byte_bound.emit, 0) + 1
    async with asyncio.timeout(60):
        while byte_bound.service.active:
            await asyncio.to_thread(byte_bound.emit, BURST)
    rest, closed = await stalled.until_closed()
    assert closed.code == 1013
    assert_prefixes(rest, ops, start)
    await asyncio.to_thread(settled, byte_bound)


@pytest.fixture(scope="module")
def small_buffer_scripted(subgraphs: ThreadServer) -> Iterator[ScriptedLive]:
    yield from start_scripted(subgraphs, subscription_buffer=3)


async def test_events_outrunning_their_enrichment_end_the_subscription_with_an_error(
    small_buffer_scripted: ScriptedLive,
) -> None:
    # Enrichment (an entity fetch per event) hangs: events pile up behind it, bounded by the
    # buffer; the subscription then ends with an error after the events before it, in order.
    live = small_buffer_scripted
    feed = live.scripted
    feed.delays = {"u1": 1.0}
    ws = await RawWs.open(live.ws_url, live.admin())
    await ws.subscribe("a", ENRICHED)
    await asyncio.to_thread(settled, live, 1, 1, 1)
    await asyncio.to_thread(feed.send, lambda _: [event(n, "u1") for n in range(1, 11)])
    got = [await ws.recv() for _ in range(4)]
    assert [m["type"] for m in got] == ["next", "next", "next", "error"], got
    assert [m["payload"]["data"]["orderEvents"]["id"] for m in got[:3]] == ["1", "2", "3"]
    assert got[3]["payload"][0]["extensions"]["code"] == "SUBSCRIPTION_BACKLOG"
    assert await barrier(ws) == []  # nothing after the error
    feed.delays = {}
    ws.close()
    await asyncio.to_thread(settled, live)
