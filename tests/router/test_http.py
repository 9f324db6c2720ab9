"""GraphQL-over-HTTP behaviour: bad input, GET rules, media types, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from router.config import Settings
from router.http import create_app
from tests.router.router_harness import Counter, Stack, ThreadServer, compose, gql

GQL_RESP = "application/graphql-response+json"


async def _post(client: httpx.AsyncClient, url: str, body: Any, accept: str = GQL_RESP, **kw: Any) -> httpx.Response:
    return await client.post(url, json=body, headers={"accept": accept}, **kw)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ topProducts { "}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query($n: Int!) { topProducts(first: $n) { upc } }", "variables": {"n": "two"}}, "BAD_USER_INPUT"),
        ({"query": "query($n: Int!) { topProducts(first: $n) { upc } }"}, "BAD_USER_INPUT"),
        ({"query": "query A { me { id } } query B { me { name } }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query A { me { id } }", "operationName": "Z"}, "OPERATION_RESOLUTION_FAILURE"),
        ({"query": "{ secret }"}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_request_errors_are_400_with_graphql_response_json(
    client: httpx.AsyncClient, shop_stack: Stack, body: dict[str, Any], code: str
) -> None:
    r = await _post(client, shop_stack.router_url, body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(GQL_RESP)
    out = r.json()
    assert "data" not in out
    assert out["errors"][0]["extensions"]["code"] == code
    assert out["errors"][0]["message"]


async def test_request_errors_are_200_with_application_json(client: httpx.AsyncClient, shop_stack: Stack) -> None:
    r = await _post(client, shop_stack.router_url, {"query": "{ nope }"}, "application/json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "Cannot query field 'nope'" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"query": 3}', "application/json", 400),
        (b'{"query": "{ me { id } }", "variables": [1]}', "application/json", 400),
        (b"query=x", "application/x-www-form-urlencoded", 400),  # CSRF prevention: a simple request
        (b'{"query": "' + b"a" * 2_000_000 + b'"}', "application/json", 413),
    ],
)
async def test_malformed_requests(
    client: httpx.AsyncClient, shop_stack: Stack, content: bytes, ctype: str, status: int
) -> None:
    r = await client.post(shop_stack.router_url, content=content, headers={"content-type": ctype, "accept": GQL_RESP})
    assert r.status_code == status, r.text
    assert r.json()["errors"][0]["message"]


async def test_get_query_and_get_mutation(client: httpx.AsyncClient, shop_stack: Stack) -> None:
    preflighted = {"apollo-require-preflight": "true"}
    r = await client.get(shop_stack.router_url, params={"query": "{ me { name } }"}, headers=preflighted)
    assert r.status_code == 200
    assert r.json() == {"data": {"me": {"name": "User 1"}}}
    r = await client.get(
        shop_stack.router_url,
        params={"query": 'mutation { renameProduct(upc: "p7", name: "x") { name } }'},
        headers={"accept": GQL_RESP, **preflighted},
    )
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert "POST" in r.json()["errors"][0]["message"]


async def test_graphiql_and_health(client: httpx.AsyncClient, shop_stack: Stack) -> None:
    r = await client.get(shop_stack.router_url, headers={"accept": "text/html,*/*"})
    assert r.status_code == 200
    assert "graphiql" in r.text.lower()
    r = await client.get(shop_stack.router_url.replace("/graphql", "/health"))
    assert r.json()["status"] == "ok"


async def test_introspection_and_api_schema(client: httpx.AsyncClient, edge_stack: Stack) -> None:
    body = await gql(client, edge_stack.router_url, '{ __type(name: "Book") { fields { name } } books { id } }')
    names = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert "internalCode" not in names  # @inaccessible
    assert {"id", "title", "weight", "reviewCount"} <= names
    assert len(body["data"]["books"]) == 5
    body = await gql(client, edge_stack.router_url, "{ __schema { types { name } } }")
    types = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert not any(t.startswith(("join__", "link__")) for t in types)


async def test_mutations_run_in_order(client: httpx.AsyncClient, shop_stack: Stack) -> None:
    q = """mutation { a: renameProduct(upc: "p9", name: "first") { name }
      b: renameProduct(upc: "p9", name: "second") { name inStock }
      c: renameProduct(upc: "p9", name: "third") { name } }"""
    body = await gql(client, shop_stack.router_url, q)
    assert body == {"data": {"a": {"name": "first"}, "b": {"name": "second", "inStock": True}, "c": {"name": "third"}}}


async def test_limits(client: httpx.AsyncClient, subgraphs: ThreadServer, counter: Counter) -> None:
    sdl = compose("shop", subgraphs.url)
    app = create_app(sdl, Settings(anonymous_only=True, max_depth=3, max_aliases=2))
    with ThreadServer(app) as router:
        url = router.url + "/graphql"
        deep = "{ me { reviews { product { reviews { id } } } } }"
        r = await _post(client, url, {"query": deep})
        assert r.status_code == 400 and "depth" in r.json()["errors"][0]["message"]
        r = await _post(client, url, {"query": "{ a: me { id } b: me { id } c: me { id } }"})
        assert r.status_code == 400 and "aliases" in r.json()["errors"][0]["message"]


async def test_subgraph_failure_and_timeout(
    client: httpx.AsyncClient, subgraphs: ThreadServer, counter: Counter, tmp_path: Path
) -> None:
    sdl = compose("shop", subgraphs.url)
    settings = Settings(
        anonymous_only=True,
        subgraph_timeout=0.5,
        subgraph_urls={"INVENTORY": subgraphs.url + "/broken", "ACCOUNTS": subgraphs.url + "/slow"},
    )
    with ThreadServer(create_app(sdl, settings)) as router:
        url = router.url + "/graphql"
        body = await gql(client, url, '{ product(upc: "p1") { name inStock } }')
        assert body["data"] == {"product": None}  # inStock is non-null
        err = body["errors"][0]
        assert err["extensions"]["code"] == "SUBREQUEST_HTTP_ERROR"
        assert err["extensions"]["serviceName"] == "inventory"
        assert "inventory" in err["message"]
        body = await gql(client, url, "{ reviews { id author { name } } }")
        assert body["data"]["reviews"][0] == {"id": "1", "author": {"name": None}}
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes == {"SUBREQUEST_TIMEOUT"}
        assert body["errors"][0]["extensions"]["serviceName"] == "accounts"
