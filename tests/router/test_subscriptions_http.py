"""Subscriptions through the router with real npm clients (graphql-ws,
graphql-sse, Apollo Client's multipart HttpLink) and, for the wire format,
httpx streaming (SSE and multipart)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import httpx
import pytest

from tests.router.subs_support import EVENTS, Live, live, node_clients

__all__ = ["live"]

MODES = ["ws", "sse", "multipart"]


def client(live: Live, mode: str, query: str, count: int, token: str | None) -> subprocess.Popen[str]:
    url = live.ws_url if mode == "ws" else live.url
    args = ["node", "client.mjs", mode, url, query, str(count)] + ([token] if token else [])
    return subprocess.Popen(args, cwd=node_clients(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(p: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = p.communicate(timeout=90)
    assert p.returncode == 0, err
    return dict(json.loads(out))


def strip_typenames(v: Any) -> Any:  # Apollo Client adds __typename to every selection
    if isinstance(v, dict):
        return {k: strip_typenames(x) for k, x in v.items() if k != "__typename"}
    if isinstance(v, list):
        return [strip_typenames(x) for x in v]
    return v


@pytest.mark.parametrize("mode", MODES)
def test_npm_clients_receive_enriched_events(live: Live, mode: str) -> None:
    p = client(live, mode, EVENTS, 3, live.admin())
    live.wait_subscribers(1)
    last = live.emit(3)
    r = result(p)
    assert r["error"] is None
    events = [strip_typenames(x["data"]["orderEvents"]) for x in r["results"]]
    assert [int(e["id"]) for e in events] == [last - 2, last - 1, last]
    n = last % 9 + 1
    assert events[-1]["order"] == {
        "number": f"SG-{n:04d}",
        "user": {"email": f"u{n % 3 + 1}@example.com"},
        "items": [{"product": {"name": f"Product p{n}"}}, {"product": {"name": f"Product p{n + 1}"}}],
    }
    live.wait_subscribers(0)  # the client went away: so did the upstream subscription


@pytest.mark.parametrize("mode", MODES)
def test_npm_clients_complete_with_the_upstream(live: Live, mode: str) -> None:
    r = result(client(live, mode, "subscription { ticks(count: 4) }", 99, None))
    assert r["error"] is None and r["completed"]
    assert [x["data"]["ticks"] for x in r["results"]] == [1, 2, 3, 4]


@pytest.mark.parametrize("mode", MODES)
def test_bad_tokens_are_refused_by_every_transport(live: Live, mode: str) -> None:
    r = result(client(live, mode, "subscription { whoami }", 1, "not-a-jwt"))
    assert r["results"] == []
    if mode == "ws":
        assert r["error"]["close"] == 4401 and r["error"]["reason"].startswith("Unauthorized: ")
    else:
        assert r["error"]["status"] == 401


@pytest.mark.parametrize("mode", MODES)
def test_customers_cannot_subscribe_to_admin_streams_by_any_transport(live: Live, mode: str) -> None:
    r = result(client(live, mode, "subscription { orderEvents { id } }", 1, live.keys.token("u2", "CUSTOMER")))
    errors = r["error"]["graphQLErrors"] if r["error"] else r["results"][0]["errors"]
    assert errors[0]["message"] == "Only an administrator can do this."
    assert errors[0]["extensions"]["serviceName"] == "feed"
    assert all("data" not in x or x["data"] is None for x in r["results"])


def sse_events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "event" in fields:
            out.append((fields["event"], fields.get("data", "")))
    return out


async def test_sse_wire_format_get_and_post(live: Live) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        q = "subscription { ticks(count: 2) }"
        headers = {"accept": "text/event-stream", "apollo-require-preflight": "1"}
        r = await http.get(live.url, params={"query": q}, headers=headers)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert sse_events(r.text) == [
            ("next", '{"data":{"ticks":1}}'),
            ("next", '{"data":{"ticks":2}}'),
            ("complete", ""),
        ]
        # a query over SSE: one result, then complete
        r = await http.post(
            live.url, json={"query": '{ order(id: "o1") { number } }'}, headers={"accept": "text/event-stream"}
        )
        assert sse_events(r.text) == [("next", '{"data":{"order":{"number":"SG-0001"}}}'), ("complete", "")]
        # request errors are plain JSON with a 4xx status
        r = await http.post(live.url, json={"query": "subscription { nope }"}, headers={"accept": "text/event-stream"})
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_multipart_wire_format(live: Live) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            live.url,
            json={"query": "subscription { ticks(count: 2) }"},
            headers={"accept": 'multipart/mixed;subscriptionSpec="1.0", application/json'},
        )
    assert r.headers["content-type"] == 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'
    part = "\r\n--graphql\r\ncontent-type: application/json\r\n\r\n"
    assert r.text == (
        part
        + "{}"
        + part
        + '{"payload":{"data":{"ticks":1}}}'
        + part
        + '{"payload":{"data":{"ticks":2}}}'
        + "\r\n--graphql--\r\n"
    )


async def test_subscription_without_a_streaming_transport_is_refused(live: Live) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            live.url,
            json={"query": "subscription { ticks(count: 1) }"},
            headers={"accept": "application/graphql-response+json"},
        )
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_SUPPORTED"


@pytest.mark.parametrize("accept", ["text/event-stream", 'multipart/mixed;subscriptionSpec="1.0"'])
async def test_http_streams_end_when_the_token_expires(live: Live, accept: str) -> None:
    token = live.admin(ttl=2)
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            live.url,
            json={"query": "subscription { ticks(count: 1000, interval: 0.05) }"},
            headers={"accept": accept, "authorization": f"Bearer {token}"},
        )
    assert r.text.count("ticks") > 5
    tail = r.text[-300:]
    assert '"Token expired"' in tail and '"UNAUTHENTICATED"' in tail
    assert tail.endswith("event: complete\ndata: \n\n" if accept == "text/event-stream" else "\r\n--graphql--\r\n")


@pytest.mark.parametrize("accept", ["text/event-stream", 'multipart/mixed;subscriptionSpec="1.0"'])
async def test_http_client_disconnect_ends_the_upstream_subscription(live: Live, accept: str) -> None:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            live.url,
            json={"query": "subscription { orderEvents { id } }"},
            headers={"accept": accept, "authorization": f"Bearer {live.admin()}"},
        ) as r,
    ):
        assert r.status_code == 200
        await asyncio.to_thread(live.wait_subscribers, 1)
    await asyncio.to_thread(live.wait_subscribers, 0)
