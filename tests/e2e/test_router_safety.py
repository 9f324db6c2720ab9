"""The router under hostile or unlucky input: fragment bombs, repeated mutations."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from deploy.stack import ThreadedStack
from tests.integration.helpers import admin_token, create_product, register


async def _post(client: httpx.AsyncClient, url: str, query: str, token: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(url, json={"query": query, "variables": variables}, headers=headers)
    return response.json()


async def test_a_fragment_bomb_is_refused_at_once_and_the_router_stays_up(router_url: str) -> None:
    # ~1 KB of text that expands to 2^24 selections: each fragment spreads the next twice.
    levels = 24
    fragments = "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    bomb = f"query {{ ...F0 }}\n{fragments}\nfragment F{levels} on Query {{ __typename }}"
    # Before the fix the router computed the expansion and stalled: the client's timeout failed the test.
    async with httpx.AsyncClient(timeout=30) as client:
        body = await _post(client, router_url, bomb)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
        assert "fragments are expanded" in body["errors"][0]["message"]
        assert (await _post(client, router_url, "{ __typename }"))["data"] == {"__typename": "Query"}


async def test_identical_concurrent_mutations_are_each_applied(
    stack: ThreadedStack, router_url: str, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    # Two tabs, a double click: the same mutation sent at once is two changes, not one shared answer.
    admin = await admin_token(stack, demo_accounts)
    product = await create_product(stack, admin, stock=50)
    shopper = await register(stack, email=f"tabs-{uuid.uuid4().hex[:8]}@example.com")
    add = "mutation($p: ID!) { addToCart(input: {productId: $p, quantity: 1}) { userErrors { code } } }"
    async with httpx.AsyncClient(timeout=30) as client:
        results = await asyncio.gather(
            *(_post(client, router_url, add, shopper.access_token, p=product["id"]) for _ in range(10))
        )
        assert all(r["data"]["addToCart"]["userErrors"] == [] for r in results), results
        cart = await _post(client, router_url, "{ cart { totalQuantity } }", shopper.access_token)
    assert cart["data"]["cart"]["totalQuantity"] == 10
