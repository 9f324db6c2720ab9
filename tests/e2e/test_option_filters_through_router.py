"""products(filter: {options}) through the router: option values narrow a listing together with its category,
price and stock filters, agree with productSearch's facet counts, apply to Category.products too, and cost
the same SQL statements for 2 and 100 products."""

from __future__ import annotations

from typing import Any

from deploy.stack import ThreadedStack
from tests.integration.shop_helpers import fewest_statements
from tests.support.graphql import gql

LIST = """
query($filter: ProductFilter, $first: Int) {
  products(first: $first, filter: $filter) {
    totalCount edges { node { id stock price { amount } category { id } } }
  }
}
"""
WITH_VARIANTS = """
query($filter: ProductFilter) {
  products(first: 10, filter: $filter) { edges { node { variants { active selectedOptions { name value } } } } }
}
"""
IN_CATEGORY = """
query($filter: ProductFilter) { categories { id slug products(first: 100, filter: $filter) { totalCount } } }
"""
FACETS = """
query($filter: ProductSearchFilter) {
  productSearch(filter: $filter, first: 1) { totalCount facets { kind name values { value count } } }
}
"""


async def call(url: str, query: str, variables: dict[str, Any]) -> Any:
    result = await gql(url, query, variables)
    assert "errors" not in result, result
    (value,) = result["data"].values()
    return value


def facet(result: dict[str, Any], kind: str, name: str) -> dict[str, int]:
    for f in result["facets"]:
        if f["kind"] == kind and f["name"] == name:
            return {v["value"]: v["count"] for v in f["values"]}
    return {}


async def apparel(router_url: str) -> str:
    categories = await call(router_url, IN_CATEGORY, {"filter": None})
    category_id: str = next(c["id"] for c in categories if c["slug"] == "apparel")
    return category_id


async def test_option_values_narrow_products_with_the_other_filters(router_url: str) -> None:
    category = await apparel(router_url)
    everything = await call(router_url, FACETS, {"filter": {"categoryIds": [category]}})
    colours, sizes = facet(everything, "OPTION", "Colour"), facet(everything, "OPTION", "Size")
    assert len(colours) > 1 and sizes
    colour = max(colours, key=lambda c: colours[c])
    by_colour = {"categoryId": category, "options": [{"name": "Colour", "values": [colour]}]}
    listed = await call(router_url, LIST, {"filter": by_colour, "first": 100})
    assert listed["totalCount"] == colours[colour] == len(listed["edges"])
    assert all(e["node"]["category"]["id"] == category for e in listed["edges"])
    for edge in (await call(router_url, WITH_VARIANTS, {"filter": by_colour}))["edges"]:
        node = edge["node"]
        assert any({"name": "Colour", "value": colour} in v["selectedOptions"] for v in node["variants"] if v["active"])

    # With stock and a price ceiling too: what productSearch counts for the same filters.
    prices = sorted(float(e["node"]["price"]["amount"]) for e in listed["edges"])
    ceiling = str(prices[len(prices) // 2])
    narrower = {**by_colour, "inStock": True, "maxPrice": ceiling}
    found = await call(router_url, LIST, {"filter": narrower, "first": 100})
    assert 0 < found["totalCount"] <= listed["totalCount"]
    assert all(e["node"]["stock"] > 0 and float(e["node"]["price"]["amount"]) <= float(ceiling) for e in found["edges"])
    in_stock = await call(
        router_url, FACETS, {"filter": {"categoryIds": [category], "inStock": True, "options": by_colour["options"]}}
    )
    expected = in_stock["totalCount"]
    all_in_stock = await call(router_url, LIST, {"filter": {**by_colour, "inStock": True}, "first": 100})
    assert all_in_stock["totalCount"] == expected

    # Colour and size: one variant must be both (as productSearch's facets count it).
    size = sorted(sizes)[0]
    per_colour = await call(
        router_url, FACETS, {"filter": {"categoryIds": [category], "options": by_colour["options"]}}
    )
    both = {**by_colour, "options": [*by_colour["options"], {"name": "Size", "values": [size]}]}
    assert (await call(router_url, LIST, {"filter": both, "first": 100}))["totalCount"] == facet(
        per_colour, "OPTION", "Size"
    ).get(size, 0)
    # Two values of one option widen.
    two = sorted(colours)[:2]
    wider = await call(
        router_url, LIST, {"filter": {"categoryId": category, "options": [{"name": "Colour", "values": two}]}}
    )
    assert max(colours[c] for c in two) <= wider["totalCount"] <= sum(colours[c] for c in two)
    # Category.products takes the same filter.
    nested = await call(router_url, IN_CATEGORY, {"filter": {"options": by_colour["options"]}})
    assert next(c for c in nested if c["id"] == category)["products"]["totalCount"] == colours[colour]
    # An unknown option or value finds nothing; too many options is a client error.
    nothing = {"options": [{"name": "Colour", "values": ["No Such Colour"]}]}
    assert (await call(router_url, LIST, {"filter": nothing}))["totalCount"] == 0
    many = {"options": [{"name": f"o{i}", "values": ["x"]} for i in range(6)]}
    refused = await gql(router_url, LIST, {"filter": many})
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_an_option_filtered_listing_costs_the_same_for_2_and_100_products(stack: ThreadedStack) -> None:
    # The catalog subgraph itself: the router would answer the repeats from its cache.
    options = [{"name": "Colour", "values": ["Olive", "Navy", "Black", "White"]}]

    async def run(first: int) -> Any:
        return await call(stack.url("catalog"), LIST, {"filter": {"options": options, "inStock": True}, "first": first})

    _, small = await fewest_statements(stack, ("catalog",), lambda: run(2))
    large, large_cost = await fewest_statements(stack, ("catalog",), lambda: run(100))
    assert len(large["edges"]) > 2
    assert 0 < large_cost["catalog"] == small["catalog"]
