"""The graphql-gateways-benchmark's shape: its four subgraphs (accounts, inventory, products,
reviews: Apollo's demo graph) over static data, in a process of their own.

usage: python gateways_main.py  -> one line ``ready {json}`` on stdout (``urls``: subgraph name ->
URL, ``jwks_url``: an empty key set, so both routers run with authentication on and every request
anonymous), then serves until stdin closes.

The data is sized so that the benchmark's deep ``TestQuery`` (test_gateways_bench.py) answers
~87 KB, as the public benchmark's does. The subgraphs are SDL over records
(tests/router/fixtures/sdl_subgraph.py); the benchmark puts replay.mjs in front of them, so
their own cost drops out and only the routers' work is measured.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from tests.router.fixtures.fed2 import LINK
from tests.router.fixtures.sdl_subgraph import Json, Ref, SdlSubgraph, Subgraph, World

USERS = 12
PRODUCTS = 10  # topProducts answers the first 5
REVIEWS_PER_USER = 2


def world() -> World:
    users: dict[str, Json] = {
        f"{i}": {"id": f"{i}", "name": f"User {i}", "username": f"user{i}"} for i in range(1, USERS + 1)
    }
    products: dict[str, Json] = {
        f"{i}": {"upc": f"{i}", "name": f"Product {i}", "price": 100 * i + 99, "weight": 10 * i, "inStock": i % 3 != 0}
        for i in range(1, PRODUCTS + 1)
    }
    reviews: dict[str, Json] = {}
    for u in range(1, USERS + 1):
        for k in range(REVIEWS_PER_USER):
            rid = str(len(reviews) + 1)
            product = str((u * 3 + k * 7) % 5 + 1)  # the reviews fall on the top products
            reviews[rid] = {
                "id": rid,
                "body": f"Review {rid} of product {product} by user {u}: a fair price for what it does.",
                "author": Ref("User", str(u)),
                "product": Ref("Product", product),
            }
    for rec in users.values():
        rec["reviews"] = [Ref("Review", r["id"]) for r in reviews.values() if r["author"].id == rec["id"]]
    for rec in products.values():
        rec["reviews"] = [Ref("Review", r["id"]) for r in reviews.values() if r["product"].id == rec["upc"]]
    return {"User": users, "Product": products, "Review": reviews}


WORLD = world()


def _shipping(o: Json, _: Json) -> int:
    # free over 1000, else half the weight (the demo's rule)
    return 0 if o["price"] > 1000 else o["weight"] // 2


SUBGRAPHS = [
    Subgraph(
        "accounts",
        LINK
        + """
type Query { me: User users: [User] }
type User @key(fields: "id") { id: ID! name: String username: String @shareable }
""",
        {
            "Query.me": lambda _o, _a: Ref("User", "1"),
            "Query.users": lambda _o, _a: [Ref("User", i) for i in WORLD["User"]],
        },
    ),
    Subgraph(
        "products",
        LINK
        + """
type Query { topProducts(first: Int = 5): [Product] }
type Product @key(fields: "upc") { upc: String! name: String price: Int weight: Int }
""",
        {"Query.topProducts": lambda _o, a: [Ref("Product", i) for i in list(WORLD["Product"])[: a["first"]]]},
    ),
    Subgraph(
        "inventory",
        LINK
        + """
type Product @key(fields: "upc") {
  upc: String!
  weight: Int @external
  price: Int @external
  inStock: Boolean
  shippingEstimate: Int @requires(fields: "price weight")
}
""",
        {"Product.shippingEstimate": _shipping},
    ),
    Subgraph(
        "reviews",
        LINK
        + """
type Review @key(fields: "id") { id: ID! body: String author: User @provides(fields: "username") product: Product }
type User @key(fields: "id") { id: ID! username: String @external reviews: [Review] }
type Product @key(fields: "upc") { upc: String! reviews: [Review] }
""",
    ),
]


async def main() -> None:
    routes: list[Route | Mount] = [
        Route("/jwks", lambda _r: JSONResponse({"keys": []})),
        *(Mount(f"/{s.name}", SdlSubgraph(s, WORLD, {}).app()) for s in SUBGRAPHS),
    ]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections made before the server runs wait in the backlog
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    info = {
        "urls": {s.name: f"{base}/{s.name}/" for s in SUBGRAPHS},
        "sdls": {s.name: s.sdl for s in SUBGRAPHS},
        "jwks_url": f"{base}/jwks",
    }
    print("ready " + json.dumps(info), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
