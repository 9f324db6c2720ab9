"""``shopgraph dev`` traces: one storefront query is one trace, router → plan → fetch → the
subgraph's request → SQL, received over OTLP/HTTP by this test, with the router and the
subgraph under their own service names; a checkout's ``order.created`` is delivered in a
trace of its own linked to the checkout's; in one process and with ``--processes``.

And nothing else starts traces of its own: no health check, no scrape, no idle
background loop (a relay's poll, a hub's blocking read) — only requests and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.embedded import backing_services
from deploy.stack import create_database, delete_redis_keys, drop_database
from tests.integration.test_stack import _free_port_base
from tests.support.otlp import Receiver, Span
from tests.support.processes import dev_banner

SERVER, CLIENT = 2, 3  # OTLP span kinds
QUERY = "query ProductList { products(first: 2) { edges { node { id name } } } }"
REGISTER = "mutation { register(input: {email: $email, password: $password, name: $name}) { accessToken } }"
ADD = "mutation($input: AddToCartInput!) { addToCart(input: $input) { userErrors { message } } }"
CHECKOUT = "mutation($input: CheckoutInput!) { checkout(input: $input) { order { id } userErrors { message } } }"
ADDRESS = {"name": "Trace Shopper", "line1": "1 Span Street", "city": "Leeds", "postalCode": "LS1 1AA", "country": "GB"}


def call(url: str, query: str, variables: dict[str, object], token: str | None = None, **headers: str) -> Any:
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = httpx.post(url, json={"query": query, "variables": variables}, headers=headers, timeout=30).json()
    assert "errors" not in body, body
    return body["data"]


@contextlib.contextmanager
def dev(receiver: Receiver, *flags: str) -> Iterator[dict[str, str]]:
    """``shopgraph dev`` in a fresh database and Redis prefix, exporting to ``receiver``; yields the
    URLs its banner printed (name -> base URL)."""
    with backing_services() as (server_url, redis_url):
        database_url = asyncio.run(create_database(server_url))
        prefix = f"shopgraph_test_{secrets.token_hex(6)}:"
        base = _free_port_base()
        shopgraph = Path(sys.executable).parent / "shopgraph"
        env = os.environ | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SHOPGRAPH_REDIS_PREFIX": prefix,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            # No npm: dev would build the storefront and GraphiQL's assets in the repository.
            "PATH": str(shopgraph.parent),
        }
        proc = subprocess.Popen(
            [str(shopgraph), "dev", "--port-base", str(base), *flags],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            text = dev_banner(proc, within=300)
            assert f"Traces: exported over OTLP to {receiver.endpoint}" in text, text
            assert f"http://127.0.0.1:{base}/metrics" in text, text
            yield dict(re.findall(r"^\s+(\w+)\s+(http://\S+)/graphql", text, re.MULTILINE))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            asyncio.run(drop_database(database_url))
            asyncio.run(delete_redis_keys(redis_url, prefix))


def descendants(spans: list[Span], root: Span) -> list[Span]:
    children: dict[str, list[Span]] = {}
    for s in spans:
        children.setdefault(s.parent_span_id, []).append(s)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop().span_id, []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.parametrize("flags", [(), ("--processes",)], ids=["in-process", "processes"])
def test_a_storefront_query_is_one_trace_from_router_to_sql(flags: tuple[str, ...]) -> None:
    with Receiver() as receiver, dev(receiver, *flags) as urls:
        router = urls["router"]
        for name, url in urls.items():  # probes and scrapes, as an orchestrator would
            assert httpx.get(url + "/health", timeout=10).status_code == 200, name
            assert httpx.get(url + "/metrics", timeout=10).status_code == 200, name
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        response = httpx.post(
            router + "/graphql",
            json={"query": QUERY, "operationName": "ProductList"},
            headers={"traceparent": f"00-{trace_id}-{client_span}-01"},
            timeout=30,
        )
        assert len(response.json()["data"]["products"]["edges"]) == 2, response.text

        def tree() -> tuple[Span, Span, Span, Span] | None:
            spans = receiver.of_trace(trace_id)
            roots = [s for s in spans if s.parent_span_id == client_span]
            if len(roots) != 1:
                return None
            (root,) = roots
            below = descendants(spans, root)
            fetches = [s for s in below if s.name == "fetch catalog"]
            served = [s for s in below if s.service == "shopgraph-catalog" and s.kind == SERVER]
            sql = [
                s for s in below if s.service == "shopgraph-catalog" and s.attributes.get("db.system") == "postgresql"
            ]
            plans = [s for s in below if s.name == "plan" and s.parent_span_id == root.span_id]
            if not (fetches and served and sql and plans):
                return None
            return root, fetches[0], served[0], sql[0]

        deadline = time.monotonic() + 60
        while (found := tree()) is None:
            assert time.monotonic() < deadline, [
                (s.service, s.name, s.parent_span_id) for s in receiver.of_trace(trace_id)
            ]
            time.sleep(0.25)
        root, fetch, served, sql = found
        assert (root.service, root.kind) == ("shopgraph-router", SERVER)
        assert (fetch.service, fetch.kind) == ("shopgraph-router", CLIENT)
        assert served.parent_span_id == fetch.span_id  # the subgraph continued the router's traceparent
        assert sql.span_id in {s.span_id for s in descendants(receiver.of_trace(trace_id), served)}
        # One trace holds the whole request: every span of it is the router's or the catalog's.
        assert {s.service for s in receiver.of_trace(trace_id)} == {"shopgraph-router", "shopgraph-catalog"}

        # What else was exported while the stack started, idled and answered probes: no trace of
        # its own for a probe, a scrape or a bare SQL/Redis call (a background loop's poll).
        time.sleep(2)
        roots = [s for s in receiver.spans if not s.parent_span_id]
        assert not [s.name for s in roots if re.search(r"/(health|ready|metrics)\b", s.name)]
        assert not [(s.service, s.name) for s in roots if s.kind == CLIENT]
        assert not [s for s in receiver.spans if s.service == "shopgraph-dev"]  # every span has its service

        # A checkout writes order.created to the outbox with its trace context; its delivery to the
        # orders hub is a trace of its own, linked to the checkout's span that wrote it.
        graphql = router + "/graphql"
        register = REGISTER.replace("$email", f'"trace-{secrets.token_hex(4)}@example.com"')
        token = call(graphql, register.replace("$password", '"a long trace secret"').replace("$name", '"T"'), {})
        token = token["register"]["accessToken"]
        product = call(graphql, QUERY, {})["products"]["edges"][0]["node"]["id"]
        added = call(graphql, ADD, {"input": {"productId": product, "quantity": 1}}, token)
        assert added["addToCart"]["userErrors"] == []
        checkout_trace = secrets.token_hex(16)
        placed = call(
            graphql,
            CHECKOUT,
            {"input": {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}},
            token,
            traceparent=f"00-{checkout_trace}-{secrets.token_hex(8)}-01",
        )
        assert placed["checkout"]["userErrors"] == [], placed

        def linked() -> list[tuple[Span, Span]]:
            writers = {s.span_id: s for s in receiver.of_trace(checkout_trace)}
            return [
                (d, writers[span])
                for d in receiver.spans
                if d.name == "deliver order.created"
                for trace, span in d.links
                if trace == checkout_trace and span in writers
            ]

        deadline = time.monotonic() + 60
        while not linked():
            assert time.monotonic() < deadline, "no delivery linked to the checkout's trace"
            time.sleep(0.25)
        delivery, writer = linked()[0]
        assert delivery.service == writer.service == "shopgraph-orders"

        # The checkout is one trace too: orders calls cart and catalog (subgraph to subgraph, with
        # traceparent), each of them runs SQL, and Redis commands are in it.
        def called(callee: str) -> list[Span]:
            """``callee``'s requests in the checkout's trace, once their parents have arrived too."""
            spans = receiver.of_trace(checkout_trace)
            by_id = {s.span_id: s for s in spans}
            served = [s for s in spans if s.service == f"shopgraph-{callee}" and s.kind == SERVER]
            return [by_id[s.parent_span_id] for s in served if s.parent_span_id in by_id]

        while not (called("cart") and called("catalog")):
            assert time.monotonic() < deadline, {s.service for s in receiver.of_trace(checkout_trace)}
            time.sleep(0.25)
        for callee in ("cart", "catalog"):  # called by orders (the cart may call the catalog too)
            parents = {(p.service, p.name, p.kind) for p in called(callee)}
            assert ("shopgraph-orders", f"call {callee}", CLIENT) in parents, parents
            assert all(name == f"call {callee}" and kind == CLIENT for _, name, kind in parents), parents
        spans = receiver.of_trace(checkout_trace)
        assert {"postgresql", "redis"} <= {s.attributes.get("db.system") for s in spans}

        # Through the saga: payments consumes order.created in a trace of its own, linked to the
        # checkout's, and its work (SQL) is inside that consumer span.
        def consumed() -> list[Span]:
            return [
                s
                for s in receiver.spans
                if s.name == "consume order.created" and any(t == checkout_trace for t, _ in s.links)
            ]

        while not consumed():
            assert time.monotonic() < deadline, "no consumer span linked to the checkout's trace"
            time.sleep(0.25)
        (consumer,) = consumed()
        assert consumer.service == "shopgraph-payments" and not consumer.parent_span_id
        assert delivery.trace_id != checkout_trace and not delivery.parent_span_id

        # The business dashboard's counters move, on the orders service's own /metrics.
        scraped = httpx.get(urls["orders"] + "/metrics", timeout=10).text
        placed_total = [line for line in scraped.splitlines() if line.startswith("shopgraph_orders_placed_total{")]
        assert placed_total and float(placed_total[0].split()[-1]) >= 1, placed_total
        assert 'shopgraph_db_statements_total{subgraph="orders"}' in scraped
        assert "shopgraph_router_" not in scraped
