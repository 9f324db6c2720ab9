"""Issue 18, finding 8: an answer that depends on the caller's role is never served to another role.

Attack (black box, through the stack's router with its Redis entity cache): an
administrator lists products with ``filter: {includeArchived: true}``; then a
customer and an anonymous caller send the very same text. Before the fix both got
the archived product from the entity cache (alone they get ``UNAUTHENTICATED``)
and the administrator's GET was answered ``Cache-Control: max-age=600, public``.

Every cacheable root field of the graph (catalog's hints, read from the subgraph
so a new one fails this test until it is covered) is attacked with every role,
in every order, over POST and GET.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack
from subgraphs.catalog.schema import CACHE_HINTS
from tests.integration.helpers import admin_token, create_category, create_product, register

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROLES = ("anonymous", "customer", "admin")


def _queries(word: str, category_id: str) -> dict[str, str]:
    """A query per cacheable root field, asking for archived products (administrators only)."""
    archived = "products(first: 50, filter: {includeArchived: true}) { edges { node { sku active } } }"
    return {
        "Query.products": (
            f'{{ products(first: 20, search: "{word}", filter: {{includeArchived: true}}) '
            "{ edges { node { sku active } } } }"
        ),
        "Query.categories": "{ categories { slug products(first: 50, filter: {includeArchived: true}) "
        "{ edges { node { sku active } } } } }",
        # Search lists active products only: the role-dependent part is below it (the category's archived).
        "Query.productSearch": (
            f'{{ productSearch(filter: {{categoryIds: ["{category_id}"]}}) '
            f"{{ totalCount products {{ edges {{ node {{ sku category {{ {archived} }} }} }} }} }} }}"
        ),
    }


def _cacheable_root_fields() -> set[str]:
    return {name for name, hint in CACHE_HINTS.items() if name.startswith("Query.") and hint.max_age > 0}


async def _ask(
    client: httpx.AsyncClient, url: str, query: str, token: str | None, method: str
) -> tuple[dict[str, Any], str | None]:
    headers = {"apollo-require-preflight": "true"} | ({"Authorization": f"Bearer {token}"} if token else {})
    if method == "GET":
        r = await client.get(url, params={"query": query}, headers=headers)
    else:
        r = await client.post(url, json={"query": query}, headers=headers)
    assert r.status_code < 500, r.text
    return r.json(), r.headers.get("cache-control")


async def test_role_dependent_answers_never_reach_another_role(
    stack: ThreadedStack, router_url: str, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    word = "scope" + uuid.uuid4().hex[:10]
    admin = await admin_token(stack, demo_accounts)
    category = await create_category(stack, admin, slug=f"scope-{uuid.uuid4().hex[:8]}", name=f"{word} category")
    archived = await create_product(
        stack, admin, name=f"{word} archived", category_id=category["id"], active=False, sku=f"ARCH-{word}".upper()
    )
    # An active product beside it: what productSearch finds (it never lists an archived one).
    await create_product(stack, admin, name=f"{word} shown", category_id=category["id"], sku=f"SHOWN-{word}".upper())
    customer = (await register(stack, email=f"{word}@example.com")).access_token
    tokens: dict[str, str | None] = {"anonymous": None, "customer": customer, "admin": admin}
    queries = _queries(word, category["id"])
    assert set(queries) == _cacheable_root_fields(), "cover every cacheable root field"
    secret = archived["sku"]
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        for field, query in queries.items():
            for order in itertools.permutations(ROLES):
                for method in ("POST", "GET"):
                    # Twice each: the second answer of each role may come from the cache.
                    for role in (*order, *order):
                        body, cache_control = await _ask(client, router_url, query, tokens[role], method)
                        shown = secret in json.dumps(body)
                        if role == "admin":
                            assert shown and not body.get("errors"), (field, order, method, body)
                            # Never public: a CDN must not keep what an administrator was shown.
                            if method == "GET":
                                assert cache_control is not None and "public" not in cache_control, cache_control
                        else:
                            assert not shown, (field, role, order, method, body)
                            codes = {e["extensions"]["code"] for e in body.get("errors", ())}
                            refused = {"UNAUTHENTICATED", "FORBIDDEN", "UNAUTHORIZED_FIELD_OR_TYPE"}
                            assert codes & refused, (field, role, body)


async def test_public_answers_are_still_shared_and_cached(stack: ThreadedStack, router_url: str) -> None:
    """The same listing without the admin-only filter: every role gets the same answer, GETs say public."""
    query = "{ categories { slug } }"
    customer = (await register(stack)).access_token
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        answers = [await _ask(client, router_url, query, token, "GET") for token in (None, customer, None, customer)]
    assert all(a[0] == answers[0][0] and not a[0].get("errors") for a in answers)
    assert {a[1] for a in answers} == {"max-age=600, public"}
