"""The router's edge protections with real clients: parser limits on every transport,
demand control, the request deadline, error sanitising, CSRF, CORS, persisted
queries, health/readiness and hot reload.

Attacks assert the refusal and that a normal request sent meanwhile is still
answered promptly, as a ratio against its own baseline (no wall-clock limits).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from router.config import Bucket, ConfigError, HeaderRule, Settings, SubgraphHeaderRules
from router.http import create_app
from tests.router.fixtures.shop import SERVICE_SECRET
from tests.router.router_harness import Counter, Stack, ThreadServer, compose
from tests.router.subs_support import run_node, start_live
from tests.support.wait import until

GQL_RESP = "application/graphql-response+json"
NORMAL = "{ me { name } }"
# Generous: before the limits, one bomb held the event loop for 14 s (a ratio in the thousands).
MAX_SLOWDOWN = 100
PROTOCOL = Subprotocol("graphql-transport-ws")


def _settings(**kw: Any) -> Settings:
    return Settings(**{"anonymous_only": True, **kw})


@pytest.fixture(scope="module")
def router(subgraphs: ThreadServer) -> Iterator[str]:
    # (documents up to the body limit: these tests aim at the token limit behind the document limit)
    settings = _settings(max_cost=2_000, max_document_bytes=2_000_000, max_token_bytes=2_000_000)
    with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as r:
        yield r.url + "/graphql"


async def _timed(client: httpx.AsyncClient, url: str, query: str = NORMAL) -> float:
    start = time.perf_counter()
    r = await client.post(url, json={"query": query})
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    return time.perf_counter() - start


async def _baseline(client: httpx.AsyncClient, url: str) -> float:
    return statistics.median([await _timed(client, url) for _ in range(7)])


async def _while(client: httpx.AsyncClient, url: str, attack: asyncio.Task[Any]) -> float:
    """Median latency of normal requests sent while ``attack`` runs."""
    times: list[float] = []
    while not attack.done() or len(times) < 3:
        times.append(await _timed(client, url))
    await attack
    return statistics.median(times)


# -- parser limits -----------------------------------------------------------------------------


def _token_bomb(size: int) -> str:
    return "query {" + " __typename @a" * (size // 13) + " }"


async def test_a_token_bomb_is_refused_on_http_without_stalling_others(client: httpx.AsyncClient, router: str) -> None:
    base = await _baseline(client, router)
    bomb = _token_bomb(900_000)

    async def attack() -> list[httpx.Response]:
        return await asyncio.gather(*(client.post(router, json={"query": bomb}) for _ in range(4)))

    task = asyncio.ensure_future(attack())
    during = await _while(client, router, task)
    for r in task.result():
        assert r.status_code == 200
        assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        assert "15000 tokens" in r.json()["errors"][0]["message"]
    assert during / base < MAX_SLOWDOWN, (during, base)
    start = time.perf_counter()
    r = await client.post(router, json={"query": bomb}, headers={"accept": GQL_RESP})
    refusal = time.perf_counter() - start
    assert r.status_code == 400
    assert refusal / base < MAX_SLOWDOWN, (refusal, base)


async def test_a_token_bomb_is_refused_over_sse(client: httpx.AsyncClient, router: str) -> None:
    r = await client.post(router, json={"query": _token_bomb(500_000)}, headers={"accept": "text/event-stream"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    big = "{" + " " * 1_100_000 + "__typename }"
    r = await client.post(router, json={"query": big}, headers={"accept": "text/event-stream"})
    assert r.status_code == 413


async def test_a_token_bomb_and_an_oversized_message_over_websocket(router: str) -> None:
    ws_url = router.replace("http://", "ws://")
    async with connect(ws_url, subprotocols=[PROTOCOL], max_size=None) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": _token_bomb(500_000)}}))
        msg = json.loads(await ws.recv())
        assert msg["type"] == "error" and msg["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": NORMAL}}))
        assert json.loads(await ws.recv())["payload"] == {"data": {"me": {"name": "User 1"}}}
        assert json.loads(await ws.recv()) == {"id": "2", "type": "complete"}
        huge = {"id": "3", "type": "subscribe", "payload": {"query": "{" + " " * 1_100_000 + "me { id } }"}}
        await ws.send(json.dumps(huge))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_aliases_and_repeated_fields_are_refused_before_validation(
    client: httpx.AsyncClient, router: str
) -> None:
    aliases = "{" + " ".join(f"a{i}: me {{ id }}" for i in range(101)) + "}"
    r = await client.post(router, json={"query": aliases})
    assert r.json()["errors"][0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED", "limit": "MAX_ALIASES_LIMIT"}
    repeated = "{" + " me { id }" * 1000 + "}"  # validation compares every pair: quadratic
    r = await client.post(router, json={"query": repeated})
    assert r.json()["errors"][0]["extensions"]["limit"] == "REPEATS"


# -- demand control ----------------------------------------------------------------------------


async def test_an_expensive_operation_is_refused_before_any_subgraph_call(
    client: httpx.AsyncClient, router: str, counter: Counter
) -> None:
    # users is a list without @listSize: 20 assumed, nested 3 times = 20 * 20 * 20 objects.
    expensive = "{ users { reviews { product { reviews { id } } } } }"
    before = dict(counter.counts)
    r = await client.post(router, json={"query": expensive}, headers={"accept": GQL_RESP})
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "COST_ESTIMATED_TOO_EXPENSIVE"
    assert err["extensions"]["cost"]["max"] == 2_000
    assert counter.counts == before
    r = await client.post(router, json={"query": "{ users { name } }"})
    assert r.status_code == 200 and "errors" not in r.json()


# -- deadline, errors --------------------------------------------------------------------------


async def test_the_whole_request_has_one_deadline(client: httpx.AsyncClient, subgraphs: ThreadServer) -> None:
    sdl = compose("shop", subgraphs.url)
    slow = {"ACCOUNTS": subgraphs.url + "/slow"}  # answers after 3 s
    settings = _settings(request_timeout=0.5, subgraph_timeout=10, subgraph_urls=slow)
    with ThreadServer(create_app(sdl, settings)) as r:
        resp = await client.post(r.url + "/graphql", json={"query": NORMAL}, headers={"accept": GQL_RESP})
        assert resp.status_code == 504
        assert resp.json()["errors"][0]["extensions"]["code"] == "GATEWAY_TIMEOUT"


async def test_deferred_payloads_share_the_request_deadline(client: httpx.AsyncClient, subgraphs: ThreadServer) -> None:
    # the primary part comes at once; the deferred one (from the slow subgraph) runs past the deadline
    sdl = compose("shop", subgraphs.url)
    slow = {"INVENTORY": subgraphs.url + "/slow"}  # answers after 3 s
    query = "{ topProducts(first: 1) { name ... @defer { inStock } } }"
    with ThreadServer(create_app(sdl, _settings(request_timeout=0.5, subgraph_timeout=10, subgraph_urls=slow))) as r:
        async with connect(r.url.replace("http", "ws", 1) + "/graphql", subprotocols=[PROTOCOL]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "d", "type": "subscribe", "payload": {"query": query}}))
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["type"] == "next" and first["payload"]["hasNext"] is True
            assert first["payload"]["data"]["topProducts"][0]["name"]
            failed = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert failed["type"] == "error" and failed["payload"][0]["extensions"]["code"] == "GATEWAY_TIMEOUT"
        async with client.stream(
            "POST", r.url + "/graphql", json={"query": query}, headers={"accept": "text/event-stream"}
        ) as resp:
            lines = [line async for line in resp.aiter_lines() if line.startswith(("event: ", "data: "))]
        events = [
            (e.removeprefix("event: "), json.loads(d.removeprefix("data: ") or "null"))
            for e, d in zip(lines[::2], lines[1::2], strict=True)
        ]
        assert [e for e, _ in events] == ["next", "next", "complete"]
        assert events[0][1]["hasNext"] is True
        assert events[1][1]["errors"][0]["extensions"]["code"] == "GATEWAY_TIMEOUT"


async def test_subgraph_errors_reveal_no_internal_address(client: httpx.AsyncClient, subgraphs: ThreadServer) -> None:
    sdl = compose("shop", subgraphs.url)
    closed = {"ACCOUNTS": "http://127.0.0.1:9/graphql"}  # nothing listens on the discard port
    with ThreadServer(create_app(sdl, _settings(subgraph_urls=closed))) as r:
        body = (await client.post(r.url + "/graphql", json={"query": NORMAL})).json()
        assert body["errors"][0]["extensions"]["serviceName"] == "accounts"
        assert "127.0.0.1" not in json.dumps(body) and ":9" not in json.dumps(body)


async def test_no_field_suggestions_without_introspection(
    client: httpx.AsyncClient, subgraphs: ThreadServer, router: str
) -> None:
    r = await client.post(router, json={"query": "{ mee { name } }"})
    assert "Did you mean" in r.json()["errors"][0]["message"]  # introspection on: suggestions help
    with ThreadServer(create_app(compose("shop", subgraphs.url), _settings(introspection=False))) as s:
        r = await client.post(s.url + "/graphql", json={"query": "{ mee { name } }"})
        assert "Did you mean" not in r.json()["errors"][0]["message"]
        assert "me" not in r.json()["errors"][0]["message"].replace("'mee'", "")


# -- CSRF, CORS --------------------------------------------------------------------------------

CSRF_CASES = [
    # (method, content type, extra headers, refused)
    ("POST", None, {}, True),
    ("POST", "text/plain", {}, True),
    ("POST", "application/x-www-form-urlencoded", {}, True),
    ("POST", "multipart/form-data; boundary=x", {}, True),
    ("POST", "application/json", {}, False),
    ("POST", None, {"apollo-require-preflight": "true"}, False),
    ("POST", None, {"x-apollo-operation-name": "Me"}, False),
    ("GET", None, {}, True),
    ("GET", None, {"apollo-require-preflight": "true"}, False),
    ("GET", "application/json", {}, False),
]


@pytest.mark.parametrize(("method", "ctype", "extra", "refused"), CSRF_CASES)
async def test_csrf_prevention(
    client: httpx.AsyncClient,
    shop_stack: Stack,
    method: str,
    ctype: str | None,
    extra: dict[str, str],
    refused: bool,
) -> None:
    headers = {**extra, **({"content-type": ctype} if ctype else {})}
    body = json.dumps({"query": NORMAL}).encode()
    if method == "GET":
        r = await client.get(shop_stack.router_url, params={"query": NORMAL}, headers=headers)
    else:
        r = await client.request("POST", shop_stack.router_url, content=body, headers=headers)
    if refused:
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["extensions"]["code"] == "CSRF_PREVENTION"
    else:
        assert r.json() == {"data": {"me": {"name": "User 1"}}}


async def test_cors(client: httpx.AsyncClient, subgraphs: ThreadServer) -> None:
    settings = _settings(cors_origins=("https://shop.example",))
    with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as s:
        url = s.url + "/graphql"
        preflight = {
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,authorization",
        }
        r = await client.options(url, headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
        assert "POST" in r.headers["access-control-allow-methods"]
        r = await client.options(url, headers={**preflight, "origin": "https://evil.example"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = await client.post(url, json={"query": NORMAL}, headers={"origin": "https://shop.example"})
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
        r = await client.post(url, json={"query": NORMAL}, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers  # the browser withholds the answer
        ws_url = url.replace("http://", "ws://")
        with pytest.raises(Exception, match=r"403|1008|rejected"):
            async with connect(ws_url, subprotocols=[PROTOCOL], origin=Origin("https://evil.example")) as ws:
                await ws.recv()


# -- persisted queries -------------------------------------------------------------------------


def _pq(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


async def test_apq_round_trip_post_and_get(client: httpx.AsyncClient, shop_stack: Stack) -> None:
    url = shop_stack.router_url
    query = "query Apq { me { name } }"
    ext = _pq(query)
    r = await client.post(url, json={"extensions": ext})
    assert r.status_code == 200
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    r = await client.post(url, json={"query": query, "extensions": ext})
    assert r.json() == {"data": {"me": {"name": "User 1"}}}
    r = await client.post(url, json={"extensions": ext})
    assert r.json() == {"data": {"me": {"name": "User 1"}}}
    get = {"extensions": json.dumps(ext)}
    r = await client.get(url, params=get, headers={"apollo-require-preflight": "1"})
    assert r.json() == {"data": {"me": {"name": "User 1"}}}
    invalid = "{ nope }"  # registered only once valid: junk never reaches the store
    r = await client.post(url, json={"query": invalid, "extensions": _pq(invalid)})
    assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    r = await client.post(url, json={"extensions": _pq(invalid)})
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    r = await client.post(url, json={"query": query, "extensions": wrong})
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"


@pytest.mark.parametrize("mode", ["allow", "safelist", "require-id"])
async def test_safelisting_modes(client: httpx.AsyncClient, subgraphs: ThreadServer, tmp_path: Path, mode: str) -> None:
    listed = "query Listed { me { name } }"
    manifest = tmp_path / "manifest.json"
    operation = {"id": "listed-1", "name": "Listed", "type": "query", "body": listed}
    manifest.write_text(
        json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": [operation]})
    )
    settings = _settings(safelist=mode, manifest_path=str(manifest))
    with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as s:
        url = s.url + "/graphql"

        async def run(body: dict[str, Any]) -> dict[str, Any]:
            data: dict[str, Any] = (await client.post(url, json=body)).json()
            return data

        by_id = await run({"extensions": {"persistedQuery": {"version": 1, "id": "listed-1"}}})
        assert by_id == {"data": {"me": {"name": "User 1"}}}
        by_body = await run({"query": listed})
        other = await run({"query": "{ me { id } }"})
        if mode == "allow":
            assert by_body["data"] and other["data"]
        elif mode == "safelist":
            assert by_body["data"]
            assert other["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
        else:
            for refused in (by_body, other):
                assert refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_ID_REQUIRED"


# -- health, readiness, hot reload -------------------------------------------------------------


async def test_health_and_ready(client: httpx.AsyncClient, subgraphs: ThreadServer, shop_stack: Stack) -> None:
    base = shop_stack.router_url.removesuffix("/graphql")
    assert (await client.get(base + "/health")).json() == {"status": "ok"}
    r = await client.get(base + "/ready")
    assert r.status_code == 200 and set(r.json()["subgraphs"].values()) == {"ok"}
    sdl = compose("shop", subgraphs.url)
    with ThreadServer(create_app(sdl, _settings(subgraph_urls={"REVIEWS": "http://127.0.0.1:9/"}))) as s:
        r = await client.get(s.url + "/ready")
        assert r.status_code == 503 and r.json()["subgraphs"]["reviews"] == "unreachable"
        assert "127.0.0.1" not in r.text


async def test_hot_reload_under_load_fails_no_request(
    client: httpx.AsyncClient, subgraphs: ThreadServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sdl = compose("shop", subgraphs.url)
    file = tmp_path / "supergraph.graphql"
    file.write_text(sdl)
    # (the load runs as fast as the router answers: not into the anonymous request budget)
    settings = _settings(supergraph_path=str(file), supergraph_poll=0.05, rate_anonymous=Bucket(100_000, 100_000))
    marker = '"""Reloaded {n}"""\ntype Query'
    with ThreadServer(create_app(sdl, settings)) as s:
        url = s.url + "/graphql"
        stop = asyncio.Event()
        results: list[int] = []

        async def load() -> None:
            while not stop.is_set():
                r = await client.post(url, json={"query": "{ me { name } reviews { id } }"})
                assert r.status_code == 200 and "errors" not in r.json(), r.text
                results.append(r.status_code)

        workers = [asyncio.ensure_future(load()) for _ in range(4)]
        for n in range(3):
            file.write_text(sdl.replace("type Query", marker.format(n=n), 1))
            description = None
            for _ in range(200):
                await asyncio.sleep(0.05)
                r = await client.post(url, json={"query": '{ __type(name: "Query") { description } }'})
                description = r.json()["data"]["__type"]["description"]
                if description == f"Reloaded {n}":
                    break
            assert description == f"Reloaded {n}"
        with caplog.at_level(logging.ERROR, logger="shopgraph.router"):
            file.write_text("this is not a supergraph")  # refused: the last good one keeps serving
            await until(lambda: "still serving the previous one" in caplog.text, what="the refusal's log line")
        r = await client.post(url, json={"query": '{ __type(name: "Query") { description } }'})
        assert r.json()["data"]["__type"]["description"] == "Reloaded 2"
        await until(lambda: len(results) > 20, what="more than 20 requests under the reloads")
        stop.set()
        await asyncio.gather(*workers)
        assert len(results) > 20


def test_apollo_clients_persisted_query_link(shop_stack: Stack) -> None:
    out = run_node("apq.mjs", shop_stack.router_url, "query ApqLink { me { name } }")
    assert out["results"] == [{"me": {"name": "User 1"}}] * 2
    first, second, third = out["requests"]
    sha = first["hash"]  # of the query as Apollo Client prints it
    assert isinstance(sha, str) and len(sha) == 64
    # Apollo Client's GETs carry Content-Type: application/json, so CSRF prevention lets them through.
    assert first == {"method": "GET", "hasQuery": False, "hash": sha}  # unknown: PERSISTED_QUERY_NOT_FOUND
    assert second["hasQuery"] and second["hash"] == sha  # registered with the query
    assert third == {"method": "GET", "hasQuery": False, "hash": sha}  # the second client: hash alone
    assert len(out["requests"]) == 3


class Recorder:
    """A subgraph in front of a fixture subgraph: records the headers of each request
    that reaches it and forwards the request."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[dict[str, str]] = []

    async def forward(self, request: Request) -> Response:
        self.seen.append(dict(request.headers))
        async with httpx.AsyncClient() as c:
            r = await c.post(self.target, content=await request.body(), headers={"content-type": "application/json"})
        return Response(r.content, r.status_code, media_type="application/json")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/graphql", self.forward, methods=["POST"])])


# Every subgraph: accept-language and x-tenant (as x-shop-tenant); reviews (lives: people) also
# x-review-key and a fixed x-router, without accept-language.
ALL_RULES = (HeaderRule("accept-language"), HeaderRule("x-tenant", "x-shop-tenant"))
OWN_RULES = SubgraphHeaderRules(
    propagate=(HeaderRule("x-review-key"),), remove=("accept-language",), insert=(("x-router", "shopgraph"),)
)
CLIENT_HEADERS = {"accept-language": "fr", "x-tenant": "t1", "x-review-key": "k", "x-other": "no", "cookie": "s=1"}


def _assert_all_rules(sent: dict[str, str]) -> None:
    assert sent["accept-language"] == "fr" and sent["x-shop-tenant"] == "t1"
    assert not {"x-tenant", "x-review-key", "x-router", "x-other", "cookie"} & set(sent)


def _assert_own_rules(sent: dict[str, str]) -> None:
    assert sent["x-shop-tenant"] == "t1" and sent["x-review-key"] == "k" and sent["x-router"] == "shopgraph"
    assert not {"accept-language", "x-tenant", "x-other", "cookie"} & set(sent)


async def test_header_propagation_rules_per_subgraph(client: httpx.AsyncClient, subgraphs: ThreadServer) -> None:
    accounts, reviews = Recorder(subgraphs.url + "/shop/accounts/"), Recorder(subgraphs.url + "/shop/reviews/")
    with ThreadServer(accounts.app()) as a, ThreadServer(reviews.app()) as r:
        settings = _settings(
            propagate_headers=ALL_RULES,
            subgraph_headers={"REVIEWS": OWN_RULES},
            service_secret=SERVICE_SECRET,
            subgraph_urls={"ACCOUNTS": a.url + "/graphql", "REVIEWS": r.url + "/graphql"},
        )
        with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as s:
            query = "{ me { name reviews { body } } }"
            resp = await client.post(s.url + "/graphql", json={"query": query}, headers=CLIENT_HEADERS)
            body = resp.json()
    assert "errors" not in body and body["data"]["me"]["reviews"], body
    assert len(accounts.seen) == 1 and len(reviews.seen) == 1  # one fetch each: the query went through both
    _assert_all_rules(accounts.seen[0])
    _assert_own_rules(reviews.seen[0])
    # The router's own headers reach both, untouched by the rules.
    for sent in (accounts.seen[0], reviews.seen[0]):
        assert sent["authorization"].startswith("Bearer ") and sent["x-request-id"]
        assert sent["x-shopgraph-client-address"] == "127.0.0.1"


async def test_subscription_events_follow_per_subgraph_header_rules(
    client: httpx.AsyncClient, subgraphs: ThreadServer
) -> None:
    people, catalog = Recorder(subgraphs.url + "/live/people/"), Recorder(subgraphs.url + "/live/catalog/")
    with ThreadServer(people.app()) as p, ThreadServer(catalog.app()) as c:
        urls = {"PEOPLE": p.url + "/graphql", "CATALOG": c.url + "/graphql"}
        for live in start_live(
            subgraphs, propagate_headers=ALL_RULES, subgraph_headers={"PEOPLE": OWN_RULES}, subgraph_urls=urls
        ):
            query = (
                'subscription { orderUpdated(id: "o2") { type order { user { email } items { product { name } } } } }'
            )
            headers = {**CLIENT_HEADERS, "accept": "text/event-stream", "authorization": f"Bearer {live.keys.token()}"}
            resp = await client.post(live.url, json={"query": query}, headers=headers)
    sse = [json.loads(line[5:]) for line in resp.text.splitlines() if line.startswith("data:") and line[5:].strip()]
    events = [e for e in sse if "data" in e]  # the completion event carries none
    assert [e["data"]["orderUpdated"]["order"]["user"]["email"] for e in events] == ["u3@example.com"] * 2
    assert people.seen and catalog.seen  # each event enriched from both
    for sent in people.seen:
        _assert_own_rules(sent)
    for sent in catalog.seen:
        _assert_all_rules(sent)


async def test_header_rules_for_an_unknown_subgraph_are_refused(subgraphs: ThreadServer) -> None:
    settings = _settings(subgraph_headers={"REVEIWS": OWN_RULES})
    with pytest.raises(ConfigError, match=r"headers\.subgraphs: no subgraph named reveiws.*reviews"):
        create_app(compose("shop", subgraphs.url), settings)


async def test_estimated_and_actual_cost_can_be_reported(client: httpx.AsyncClient, subgraphs: ThreadServer) -> None:
    with ThreadServer(create_app(compose("shop", subgraphs.url), _settings(cost_report=True))) as s:
        r = await client.post(s.url + "/graphql", json={"query": "{ users { name } me { name } }"})
        body = r.json()
        assert len(body["data"]["users"]) == 9
        assert body["extensions"] == {"cost": {"estimated": 20 + 1, "actual": 9 + 1}}


async def test_an_open_subscription_keeps_running_across_a_reload(
    client: httpx.AsyncClient, subgraphs: ThreadServer, tmp_path: Path
) -> None:
    file = tmp_path / "supergraph.graphql"
    sdl = compose("live", subgraphs.url)
    file.write_text(sdl)
    for live in start_live(subgraphs, supergraph_path=str(file), supergraph_poll=0.05):
        async with connect(live.ws_url, subprotocols=[PROTOCOL]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            query = "subscription { ticks(count: 6, interval: 0.3) }"
            await ws.send(json.dumps({"id": "t", "type": "subscribe", "payload": {"query": query}}))
            ticks = [json.loads(await ws.recv())["payload"]["data"]["ticks"] for _ in range(2)]
            file.write_text(sdl.replace("type Query", '"""Reloaded"""\ntype Query', 1))
            for _ in range(100):
                r = await client.post(live.url, json={"query": '{ __type(name: "Query") { description } }'})
                if r.json()["data"]["__type"]["description"] == "Reloaded":
                    break
                await asyncio.sleep(0.05)
            assert r.json()["data"]["__type"]["description"] == "Reloaded"
            while (msg := json.loads(await ws.recv()))["type"] == "next":
                ticks.append(msg["payload"]["data"]["ticks"])
            assert msg == {"id": "t", "type": "complete"}
            assert len(ticks) == 6 and ticks == sorted(ticks)


async def test_hot_reload_from_a_url(client: httpx.AsyncClient, subgraphs: ThreadServer) -> None:
    sdl = compose("shop", subgraphs.url)
    served = {"sdl": sdl}

    async def supergraph(_: Request) -> PlainTextResponse:
        return PlainTextResponse(served["sdl"])

    with ThreadServer(Starlette(routes=[Route("/supergraph", supergraph)])) as registry:
        settings = _settings(supergraph_path=registry.url + "/supergraph", supergraph_poll=0.05)
        with ThreadServer(create_app(sdl, settings)) as s:
            served["sdl"] = sdl.replace("type Query", '"""From the registry"""\ntype Query', 1)
            description = None
            for _ in range(200):
                await asyncio.sleep(0.05)
                r = await client.post(s.url + "/graphql", json={"query": '{ __type(name: "Query") { description } }'})
                description = r.json()["data"]["__type"]["description"]
                if description is not None:
                    break
            assert description == "From the registry"


async def test_a_failed_upstream_subscription_reveals_no_address(subgraphs: ThreadServer) -> None:
    for live in start_live(subgraphs, subgraph_urls={"FEED": "http://127.0.0.1:9/graphql"}):
        async with connect(live.ws_url, subprotocols=[PROTOCOL]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            query = "subscription { ticks(count: 1) }"
            await ws.send(json.dumps({"id": "t", "type": "subscribe", "payload": {"query": query}}))
            msg = json.loads(await ws.recv())
            assert msg["type"] == "error"
            assert msg["payload"][0]["extensions"]["code"] == "SUBSCRIPTION_UPSTREAM_UNAVAILABLE"
            assert "127.0.0.1" not in json.dumps(msg) and ":9" not in json.dumps(msg)


async def test_expensive_operations_have_a_budget_of_their_own(
    client: httpx.AsyncClient, subgraphs: ThreadServer
) -> None:
    # users { … } costs 20: the budget counts cost, 40 units are two of them
    settings = _settings(expensive_cost=10, rate_expensive=Bucket(0.01, 40))
    with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as s:
        url = s.url + "/graphql"
        for _ in range(2):
            assert (await client.post(url, json={"query": "{ users { name } }"})).status_code == 200
        r = await client.post(url, json={"query": "{ users { name } }"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 1
        assert r.json()["errors"][0]["extensions"]["retryAfter"] == int(r.headers["retry-after"])
        assert r.json()["errors"][0]["extensions"]["limit"] == "EXPENSIVE_COST"
        # an anonymous caller's every operation draws its cost (issue 18): a cheap one waits for the budget too
        r = await client.post(url, json={"query": NORMAL})
        assert r.status_code == 429 and r.json()["errors"][0]["extensions"]["limit"] == "EXPENSIVE_COST"


async def test_a_client_gone_mid_body_is_not_an_error(router: str, caplog: pytest.LogCaptureFixture) -> None:
    """A client that hangs up before its body arrived is logged at INFO, with no traceback."""
    caplog.set_level(logging.INFO, logger="shopgraph.router")
    url = httpx.URL(router)
    _, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b'POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"que'
    )
    await writer.drain()
    writer.close()
    await until(lambda: any("disconnected before" in r.getMessage() for r in caplog.records))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
