"""Cache hints -> a response's Cache-Control, per Apollo's rules, on the real catalog and orders schemas."""

from __future__ import annotations

import pytest
from graphql import parse

from subgraphs.catalog.schema import CACHE_HINTS
from subgraphs.catalog.schema import schema as catalog
from subgraphs.kit.cache_control import CacheHint, CachePolicies, Scope
from subgraphs.orders.schema import schema as orders

ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { name price { amount } } } }"
LISTING = "{ products(first: 3) { totalCount edges { cursor node { name category { name } } } } }"
SPREAD = "fragment F on Product { name } query($r: [_Any!]!) { _entities(representations: $r) { ...F } }"


@pytest.mark.parametrize(
    ("document", "header"),
    [
        (ENTITIES, "max-age=600, public"),
        (
            "{ products(first: 3) { totalCount edges { cursor node { name category { name } } } } }",
            "max-age=600, public",
        ),
        ('{ product(id: "x") { name } }', "no-store"),
        ('{ category(slug: "x") { name } categories { name } }', "max-age=600, public"),
        # __typename alone names no type with a hint: nothing says it may be cached
        ("query($r: [_Any!]!) { _entities(representations: $r) { __typename } }", "no-store"),
        ("{ _service { sdl } }", "no-store"),
        ('mutation { archiveProduct(input: {id: "x"}) { product { name } } }', "no-store"),
        (
            "fragment F on Product { name } query($r: [_Any!]!) { _entities(representations: $r) { ...F } }",
            "max-age=600, public",
        ),
    ],
)
def test_catalog_policies(document: str, header: str) -> None:
    policies = CachePolicies(CACHE_HINTS)
    assert policies.of(catalog._schema, parse(document), None).header == header


def test_subgraphs_without_hints_cache_nothing() -> None:
    policies = CachePolicies({})
    document = parse("{ allOrders(first: 2) { edges { node { number } } } }")
    assert policies.of(orders._schema, document, None).header == "no-store"


def test_private_and_shortest_win() -> None:
    policies = CachePolicies({**CACHE_HINTS, "Category": CacheHint(30, Scope.PRIVATE)})
    document = parse("{ products(first: 3) { edges { node { name category { name } } } } }")
    assert policies.of(catalog._schema, document, None).header == "max-age=30, private"
