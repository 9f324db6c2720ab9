"""compose.yaml, run: its services started as local processes with exactly its commands and
environments (tests/support/compose_processes.py), against this test's own database and Redis.

The stack runs as shipped: the router with deploy/router.yaml (safelisted operations
only, so every request here is a storefront operation sent by its manifest id, the
subscription by its manifest text; /metrics on the admin listener), the secrets given
as an operator must, and the demo data asked for (``--profile demo``: the demo admin).

Through them: a checkout and an order-event subscription; two routers over two orders
replicas (as ``--scale``) deliver every event once to subscribers on either; the
services' metrics move, their logs are JSON lines with request and trace ids, an
expected client error is logged at INFO without a traceback; one storefront
query is one trace from the router to SQL, received over OTLP/HTTP.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.embedded import backing_services
from deploy.stack import create_database, delete_redis_keys, drop_database
from tests.support.compose_processes import ComposeProcesses
from tests.support.npm import storefront_build
from tests.support.order_events import newest_event_id
from tests.support.otlp import Receiver
from tests.support.subscriptions import subscription
from tests.support.wait import until

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = {
    op["name"]: op for op in json.loads((ROOT / "frontend_contract" / "manifest.json").read_text())["operations"]
}
ADDRESS = {
    "name": "Compose Shopper",
    "line1": "1 Process Lane",
    "city": "Leeds",
    "postalCode": "LS1 1AA",
    "country": "GB",
}
# Safelisted by its identical text. ``after`` the newest event: every later one arrives,
# however long the subscription takes to reach orders.
EVENTS = MANIFEST["OrderEvents"]["body"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[ComposeProcesses]:
    with backing_services() as (server_url, redis_url):
        database_url = asyncio.run(create_database(server_url))
        prefix = f"shopgraph_test_{secrets.token_hex(6)}:"
        # What an operator would export before `docker compose up` to trace every request.
        shell = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            # The router samples on its own (a client's sampled flag is not followed): all of them.
            "OTEL_TRACES_SAMPLER_ARG": "1",
            # No defaults for these: compose refuses to start without them.
            "SHOPGRAPH_SERVICE_SECRET": secrets.token_hex(32),
            "POSTGRES_PASSWORD": secrets.token_hex(12),
        }
        processes = ComposeProcesses(
            database_url,
            redis_url,
            prefix,
            tmp_path_factory.mktemp("compose"),
            shell,
            profiles=frozenset({"demo"}),  # `docker compose --profile demo up`: the demo admin and catalog
            image_env={"SHOPGRAPH_STOREFRONT_DIR": str(storefront_build(tmp_path_factory))},
        )
        try:
            with processes:
                yield processes
        finally:
            asyncio.run(drop_database(database_url))
            asyncio.run(delete_redis_keys(redis_url, prefix))


async def call(
    url: str,
    operation: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The storefront operation ``operation``, sent as the storefront sends it: by its manifest id."""
    sent = dict(headers or {}) | ({"authorization": f"Bearer {token}"} if token else {})
    request = {
        "variables": variables or {},
        "operationName": operation,
        "extensions": {"persistedQuery": {"version": 1, "id": MANIFEST[operation]["id"]}},
    }
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        response = await client.post(url, json=request, headers=sent)
    body: dict[str, Any] = response.json()
    return body


async def data(url: str, operation: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
    body = await call(url, operation, variables, token)
    assert "errors" not in body, body
    return body["data"]


async def login(url: str, email: str, password: str) -> str:
    payload = await data(url, "Login", {"input": {"email": email, "password": password}})
    token: str = payload["login"]["accessToken"]
    return token


async def shopper(url: str) -> tuple[str, str]:
    email = f"compose-{secrets.token_hex(5)}@example.com"
    got = await data(
        url, "Register", {"input": {"email": email, "password": "a long compose secret", "name": "Compose"}}
    )
    return email, got["register"]["accessToken"]


async def new_product(url: str, admin: str, stock: int) -> str:
    category = (await data(url, "CategoryNav"))["categories"][0]["id"]
    tag = secrets.token_hex(4).upper()
    product = {
        "sku": f"CMP-{tag}",
        "name": f"Compose {tag}",
        "description": "Made by processes.",
        "price": "12.50",
        "stock": stock,
        "imageUrl": f"https://img.example/{tag}.jpg",
        "categoryId": category,
    }
    created = await data(url, "AdminCreateProduct", {"input": product}, admin)
    assert created["createProduct"]["userErrors"] == [], created
    product_id: str = created["createProduct"]["product"]["id"]
    return product_id


async def checkout(url: str, token: str, product_id: str, headers: dict[str, str] | None = None) -> str:
    added = await data(url, "AddToCart", {"input": {"productId": product_id, "quantity": 1}}, token)
    assert added["addToCart"]["userErrors"] == []
    variables = {"input": {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}}
    body = await call(url, "Checkout", variables, token, headers=headers)
    assert "errors" not in body, body
    got = body["data"]
    assert got["checkout"]["userErrors"] == [], got
    order_id: str = got["checkout"]["order"]["id"]
    return order_id


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10, trust_env=False).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.strip():
            parsed = json.loads(line)  # every line: a JSON object, or this fails
            assert {"time", "level", "logger", "message"} <= set(parsed), line
            lines.append(parsed)
    return lines


async def test_a_checkout_and_its_order_event_through_the_compose_services(shop: ComposeProcesses) -> None:
    router = shop.url("router")
    admin = await login(router, "admin@shopgraph.dev", "admin-demo-pass")
    product = await new_product(router, admin, stock=20)
    email, token = await shopper(router)
    after = {"after": str(await newest_event_id(shop.database_url))}
    async with subscription(router, EVENTS, after, token=admin) as feed:
        order_id = await checkout(router, token, product)
        async with asyncio.timeout(30):
            while not any(r["orderEvents"]["order"]["id"] == order_id for r in feed.results):
                await feed.wait(len(feed.results) + 1)
    (event,) = [r["orderEvents"] for r in feed.results if r["orderEvents"]["order"]["id"] == order_id]
    assert event["type"] == "CREATED"
    assert event["order"]["user"]["email"] == email  # enriched by users through the router


async def test_two_routers_over_two_orders_replicas_deliver_every_event_once_to_either(
    shop: ComposeProcesses,
) -> None:
    orders_b = shop.start("orders", instance="orders-b")
    # An operator adding a replica at another address allows it (subgraphs.allowed_urls) too.
    subgraphs = [name for name, service in shop.services.items() if service.get("command", [""])[0] == "serve"]
    allowed = [shop.url(name) for name in (*subgraphs, orders_b.name)]
    router_b = shop.start(
        "router",
        instance="router-b",
        changes={
            "SHOPGRAPH_SUBGRAPH_ORDERS_URL": shop.url(orders_b.name),
            "SHOPGRAPH_ALLOWED_SUBGRAPH_URLS": ",".join(allowed),
        },
    )
    relay_b = shop.start("relay", instance="relay-b")
    routers = [shop.url("router"), shop.url(router_b.name)]
    admin = await login(routers[0], "admin@shopgraph.dev", "admin-demo-pass")
    product = await new_product(routers[0], admin, stock=50)
    buyers = [await shopper(routers[i % 2]) for i in range(6)]
    last_buyer = await shopper(routers[0])
    after = {"after": str(await newest_event_id(shop.database_url))}
    async with (
        subscription(routers[0], EVENTS, after, token=admin) as on_a,
        subscription(routers[1], EVENTS, after, token=admin) as on_b,
    ):
        # Alternate routers, hence orders replicas: each replica commits half of the events.
        order_ids = [await checkout(routers[i % 2], token, product) for i, (_, token) in enumerate(buyers)]
        emails = {email for email, _ in buyers}
        for feed in (on_a, on_b):
            async with asyncio.timeout(30):
                while sum(r["orderEvents"]["order"]["user"]["email"] in emails for r in feed.results) < len(order_ids):
                    await feed.wait(len(feed.results) + 1)
        # One more order, delivered in commit order after the others: a duplicate would come before it.
        last_order = await checkout(routers[0], last_buyer[1], product)
        for feed in (on_a, on_b):
            async with asyncio.timeout(30):
                while feed.results[-1]["orderEvents"]["order"]["id"] != last_order:
                    await feed.wait(len(feed.results) + 1)
    scraped = [scrape(shop.url(name, "/metrics")) for name in ("relay", relay_b.name)]
    streams = {dict(ls)["stream"] for s in scraped for n, ls in s if n == "shopgraph_relay_leader"}
    # each relay serves every outbox
    assert {stream.split(":")[-2] for stream in streams} == {"orders", "catalog", "users", "payments"}
    for stream in streams:  # two relays, one publishing each outbox
        assert sorted(sample(s, "shopgraph_relay_leader", stream=stream) for s in scraped) == [0, 1], stream
    for feed in (on_a, on_b):
        ours = [r["orderEvents"] for r in feed.results if r["orderEvents"]["order"]["user"]["email"] in emails]
        assert [e["order"]["id"] for e in ours] == order_ids  # each once, in commit order
        ids = [int(e["id"]) for e in feed.results for e in [e["orderEvents"]]]
        assert ids == sorted(set(ids))  # no event twice on either, none out of order


async def test_the_router_runs_the_production_configuration(shop: ComposeProcesses) -> None:
    router = shop.url("router")
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        # Safelisting: an ad-hoc document is refused, introspection with it; the storefront's run.
        for query in ("{ __typename }", "{ __schema { types { name } } }", MANIFEST["CategoryNav"]["body"] + " "):
            refused = await client.post(router, json={"query": query})
            assert refused.status_code == 403, (query, refused.text)
            assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
        listed = await client.post(router, json={"query": MANIFEST["CategoryNav"]["body"]})
        assert listed.json()["data"]["categories"], listed.text
        # No GraphiQL page, no /metrics on the public port (it is on the admin listener).
        page = await client.get(router, headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower(), page.text[:300]
        assert (await client.get(shop.url("router", "/metrics"))).status_code == 404
        assert "shopgraph_router_requests_total" in (await client.get(shop.admin_url("router"))).text


async def test_the_storefront_service_renders_the_pages_the_router_serves(shop: ComposeProcesses) -> None:
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:

        async def rendered() -> httpx.Response | None:
            page = await client.get(shop.url("router", "/"), headers={"accept": "text/html"})
            return page if page.status_code == 200 else None  # 503 "starting" until the service answers

        page = await until(rendered, what="a page rendered by the storefront service", within=120)
        assert page is not None
        assert "<h1" in page.text and 'id="shopgraph-state"' in page.text  # rendered on the server
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]  # the router's headers
        robots = await client.get(shop.url("router", "/robots.txt"))
    # Canonical URLs from SHOPGRAPH_PUBLIC_URL (compose's default: the router's published port).
    assert f"Sitemap: {shop.url('router', '/sitemap.xml')}" in robots.text.splitlines()


def test_every_service_answers_its_probes(shop: ComposeProcesses) -> None:
    for name in ("users", "catalog", "cart", "orders", "router"):
        for path in ("/health", "/ready"):
            assert httpx.get(shop.url(name, path), timeout=10, trust_env=False).status_code == 200, (name, path)


async def test_metrics_move_on_the_router_subgraphs_and_relay(shop: ComposeProcesses) -> None:
    router = shop.url("router")
    before = scrape(shop.admin_url("router"))
    catalog_before = scrape(shop.url("catalog", "/metrics"))
    for _ in range(3):
        # product(sku:) is never cached, so each call reaches catalog past the router's entity cache.
        body = await call(router, "ProductDetailBySku", {"sku": "NO-SUCH-SKU"})
        assert body["data"] == {"product": None}, body
    after = scrape(shop.admin_url("router"))
    catalog_after = scrape(shop.url("catalog", "/metrics"))

    def moved(name: str, then: Any, now: Any, **labels: str) -> float:
        return sample(now, name, **labels) - sample(then, name, **labels)

    operation = "ProductDetailBySku"
    assert moved("shopgraph_router_requests_total", before, after, operation=operation, outcome="ok") == 3
    assert moved("shopgraph_router_request_duration_seconds_count", before, after, operation=operation) == 3
    assert moved("shopgraph_router_subgraph_fetch_duration_seconds_count", before, after, subgraph="catalog") >= 3
    assert moved("shopgraph_subgraph_operations_total", catalog_before, catalog_after, subgraph="catalog") >= 3
    assert sample(catalog_after, "shopgraph_db_pool_size", subgraph="catalog") > 0
    assert ("shopgraph_router_open_subscriptions", ()) in after

    # Events: committed by the checkout test above, published by the relay, lag measured at the hub.
    admin = await login(router, "admin@shopgraph.dev", "admin-demo-pass")
    _, token = await shopper(router)
    relay_before = scrape(shop.url("relay", "/metrics"))
    await checkout(router, token, await new_product(router, admin, stock=5))
    deadline = time.monotonic() + 20
    while sample(scrape(shop.url("relay", "/metrics")), "shopgraph_relay_published_total") <= sample(
        relay_before, "shopgraph_relay_published_total"
    ):
        assert time.monotonic() < deadline, "the relay published nothing"
        await asyncio.sleep(0.2)
    relay = scrape(shop.url("relay", "/metrics"))
    # One relay process leads every outbox (orders', catalog's, users' and payments' events).
    led = {dict(ls)["stream"] for n, ls in relay if n == "shopgraph_relay_leader"}
    assert len(led) == 4 and all(sample(relay, "shopgraph_relay_leader", stream=s) == 1 for s in led), led
    assert sample(relay, "shopgraph_relay_backlog") == 0
    orders = scrape(shop.url("orders", "/metrics"))
    assert sample(orders, "shopgraph_event_lag_seconds_count") >= 1
    # The notifications worker took the checkout's order.created in (it sends nothing for it).
    while not sample(scrape(shop.url("notifications", "/metrics")), "shopgraph_notify_events_total", stream="orders"):
        assert time.monotonic() < deadline + 20, "the notifications worker read no order event"
        await asyncio.sleep(0.2)


async def test_logs_are_json_lines_with_request_ids_and_client_errors_at_info(shop: ComposeProcesses) -> None:
    router = shop.url("router")
    _, token = await shopper(router)
    request_id = "compose-" + secrets.token_hex(6)
    # A client error the orders subgraph answers (the router forwards a page over the largest;
    # it refuses an admin field to a shopper itself, so that one never reaches orders).
    refused = await call(router, "OrderHistory", {"first": 1000}, token, headers={"x-request-id": request_id})
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    def logged(name: str) -> bool:
        """A whole line (newline written) with the request id is in the process's log."""
        lines = shop.instances[name].log.read_text().splitlines(keepends=True)
        return any(request_id in line and line.endswith("\n") for line in lines)

    # Each process writes its log line as it answers; wait for the lines, not for a while.
    await until(lambda: logged("router") and logged("orders"), what="the request's log lines")

    router_lines = json_lines(shop.instances["router"].log)
    (access,) = [line for line in router_lines if line.get("request_id") == request_id]
    assert access["logger"] == "shopgraph.router.access"
    assert access["operation"] == "OrderHistory"
    assert access["outcome"] == "graphql_error"
    assert access["http_status"] == 200
    assert len(access["trace_id"]) == 32  # tracing is on in this stack

    orders_lines = json_lines(shop.instances["orders"].log)
    mine = [line for line in orders_lines if line.get("request_id") == request_id]
    assert [(line["level"], line.get("code")) for line in mine] == [("INFO", "BAD_USER_INPUT")]
    assert "exception" not in mine[0]
    assert mine[0]["trace_id"] == access["trace_id"]  # the same request, across processes
    for name in shop.instances:
        lines = json_lines(shop.instances[name].log)
        assert not [line for line in lines if line["level"] == "ERROR"], name


async def test_a_storefront_query_is_one_trace_from_router_to_sql(shop: ComposeProcesses, receiver: Receiver) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    body = await call(shop.url("router"), "ProductList", {"first": 2}, headers={"traceparent": traceparent})
    assert len(body["data"]["products"]["edges"]) == 2

    def chain_to_sql(spans: list[Any]) -> list[Any]:
        """From the catalog's first SQL span up its parents, as far as they have arrived."""
        by_id = {s.span_id: s for s in spans}
        sql = [s for s in spans if s.service == "shopgraph-catalog" and s.attributes.get("db.system") == "postgresql"]
        chain = sql[:1]
        while chain and chain[-1].parent_span_id in by_id:
            chain.append(by_id[chain[-1].parent_span_id])
        return chain[::-1]

    deadline = time.monotonic() + 30  # each process exports every 5 s
    while not ((chain := chain_to_sql(receiver.of_trace(trace_id))) and chain[0].service == "shopgraph-router"):
        assert time.monotonic() < deadline, [(s.service, s.name) for s in chain]
        await asyncio.sleep(0.25)
    services = [s.service for s in chain]
    names = [s.name for s in chain]
    # router request -> fetch catalog -> catalog request -> SQL: one trace, one parent chain.
    assert services[-1] == "shopgraph-catalog", names
    assert "fetch catalog" in names, names
    assert chain[-1].attributes.get("db.system") == "postgresql"
    assert chain[0].parent_span_id == traceparent.split("-")[2]  # continued the client's trace


async def test_an_order_event_delivery_links_to_the_checkout_that_caused_it(
    shop: ComposeProcesses, receiver: Receiver
) -> None:
    router = shop.url("router")
    admin = await login(router, "admin@shopgraph.dev", "admin-demo-pass")
    product = await new_product(router, admin, stock=5)
    _, token = await shopper(router)
    trace_id = secrets.token_hex(16)
    await checkout(router, token, product, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})

    def deliveries() -> list[Any]:
        return [
            s
            for s in receiver.spans
            if s.service == "shopgraph-orders" and s.name == "deliver order.created" and trace_id in dict(s.links)
        ]

    def writers() -> list[Any]:
        """The spans of the checkout's trace that the deliveries link to."""
        linked = {link[1] for d in deliveries() for link in d.links if link[0] == trace_id}
        return [s for s in receiver.of_trace(trace_id) if s.span_id in linked]

    # Every orders replica's hub delivers the event; each process exports on its own schedule.
    deadline = time.monotonic() + 30
    while not (deliveries() and writers()):
        assert time.monotonic() < deadline, "no delivery span linked to the checkout's trace"
        await asyncio.sleep(0.25)
    assert len({link for d in deliveries() for link in d.links if link[0] == trace_id}) == 1  # one writer
    assert [w.service for w in writers()] == ["shopgraph-orders"]  # the checkout's span in orders
    assert all(d.trace_id != trace_id for d in deliveries())  # a trace of its own, linked
