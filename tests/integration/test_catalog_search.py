"""Search and facets in PostgreSQL, on the seeded catalog: the issue's examples ("head phones",
"expresso", "dumbells", "kitchen"), stemming and accents, ranking, facets that narrow together,
"did you mean", paging, bad input, and statements per search."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from deploy.stack import ThreadedStack
from tests.integration.helpers import admin_token, create_product, data, error_codes, unique_word
from tests.integration.shop_helpers import fewest_statements
from tests.support.graphql import gql

SEARCH = """
query($q: String, $filter: ProductSearchFilter, $first: Int, $after: String) {
  productSearch(query: $q, filter: $filter, first: $first, after: $after) {
    totalCount correctedQuery didYouMean
    products { edges { cursor node { id name stock price { amount } category { name } } }
               pageInfo { hasNextPage endCursor } }
    facets { kind name values { value label count selected } }
  }
}
"""


async def search(stack: ThreadedStack, q: str | None = None, first: int = 20, **filters: Any) -> dict[str, Any]:
    variables: dict[str, Any] = {"q": q, "first": first, "filter": filters or None}
    result: dict[str, Any] = data(await gql(stack.url("catalog"), SEARCH, variables))["productSearch"]
    return result


def names(result: dict[str, Any]) -> list[str]:
    return [e["node"]["name"] for e in result["products"]["edges"]]


def facet(result: dict[str, Any], kind: str, name: str | None = None) -> dict[str, int]:
    for f in result["facets"]:
        if f["kind"] == kind and (name is None or f["name"] == name):
            return {v["value"]: v["count"] for v in f["values"]}
    return {}


@pytest.mark.parametrize(
    ("typed", "means", "corrected"),
    [
        ("head phones", "Headphones", "headphones"),
        ("expresso", "Espresso Machine", "espresso"),
        ("dumbells", "Adjustable Dumbbells", "dumbbells"),
        ("expresso machine", "Espresso Machine", "espresso machine"),
        ("Headphones", "Headphones", None),
    ],
)
async def test_what_a_shopper_means_is_found(
    stack: ThreadedStack, typed: str, means: str, corrected: str | None
) -> None:
    result = await search(stack, typed)
    assert result["totalCount"] > 0 and result["correctedQuery"] == corrected
    assert all(means in n for n in names(result)), names(result)


async def test_a_category_name_finds_its_products(stack: ThreadedStack) -> None:
    result = await search(stack, "kitchen", first=100)
    assert result["totalCount"] >= 20  # the seeded kitchen products on sale, found by its category's name
    assert facet(result, "CATEGORY") and set(facet(result, "CATEGORY").values()) == {result["totalCount"]}
    assert {e["node"]["category"]["name"] for e in result["products"]["edges"]} == {"Kitchen"}


async def test_stemming_accents_and_ranking(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> None:
    admin = await admin_token(stack, demo_accounts)
    word = unique_word()
    in_name = await create_product(stack, admin, name=f"Crème Brûlée Torch {word}")
    await create_product(stack, admin, name=f"Plain Lighter {word[:-1]}x", description=f"works with a {word}")
    for typed in ("creme brulee torch", "CRÈME", "brûlées torches"):
        assert in_name["name"] in names(await search(stack, typed)), typed
    # A name match ranks above a description-only one.
    ranked = names(await search(stack, word))
    assert ranked[0] == in_name["name"] and len(ranked) == 2


async def test_facets_narrow_together(stack: ThreadedStack) -> None:
    everything = await search(stack, "audio", first=100)
    total = everything["totalCount"]
    colours = facet(everything, "OPTION", "Colour")
    bands = facet(everything, "PRICE")
    stock = facet(everything, "IN_STOCK")
    assert total > 3 and len(colours) > 2
    assert sum(bands.values()) == total and sum(stock.values()) == total
    assert all(0 < n <= total for n in colours.values())

    colour = max(colours, key=lambda c: colours[c])
    by_colour = await search(stack, "audio", first=100, options=[{"name": "Colour", "values": [colour]}])
    assert by_colour["totalCount"] == colours[colour]
    # Its own facet still counts the other colours (to widen), marked as not selected.
    own = next(f for f in by_colour["facets"] if f["kind"] == "OPTION" and f["name"] == "Colour")
    assert {v["value"]: v["count"] for v in own["values"]} == colours
    assert [v["value"] for v in own["values"] if v["selected"]] == [colour]
    # The other facets narrow to that colour.
    assert sum(facet(by_colour, "PRICE").values()) == colours[colour]

    band = next(b for b, n in facet(by_colour, "PRICE").items() if n > 0)
    both = await search(stack, "audio", first=100, options=[{"name": "Colour", "values": [colour]}], priceBands=[band])
    assert both["totalCount"] == facet(by_colour, "PRICE")[band]
    only_band = await search(stack, "audio", first=100, priceBands=[band])
    assert facet(only_band, "OPTION", "Colour")[colour] == both["totalCount"]
    in_stock = await search(
        stack,
        "audio",
        first=100,
        options=[{"name": "Colour", "values": [colour]}],
        priceBands=[band],
        inStock=True,
    )
    assert in_stock["totalCount"] == facet(both, "IN_STOCK").get("true", 0)
    assert all(e["node"]["stock"] > 0 for e in in_stock["products"]["edges"])
    # Two values of one option widen; the count is at most the sum.
    two = sorted(colours)[:2]
    wider = await search(stack, "audio", first=100, options=[{"name": "Colour", "values": two}])
    assert max(colours[c] for c in two) <= wider["totalCount"] <= sum(colours[c] for c in two)


async def test_size_and_colour_must_be_one_variant(stack: ThreadedStack) -> None:
    """Colour=X and Size=Y finds products with a variant that is both, not one of each."""
    apparel = await search(stack, "apparel", first=100)
    sizes = facet(apparel, "OPTION", "Size")
    assert sizes
    colour = sorted(facet(apparel, "OPTION", "Colour"))[0]
    size = sorted(sizes)[0]
    both = await search(
        stack,
        "apparel",
        first=100,
        options=[{"name": "Colour", "values": [colour]}, {"name": "Size", "values": [size]}],
    )
    per_colour = await search(stack, "apparel", first=100, options=[{"name": "Colour", "values": [colour]}])
    assert both["totalCount"] == facet(per_colour, "OPTION", "Size").get(size, 0)


async def test_did_you_mean_when_nothing_matches(stack: ThreadedStack) -> None:
    nothing = await search(stack, "headphones kitchen")
    assert nothing["totalCount"] == 0 and nothing["products"]["edges"] == []
    assert nothing["didYouMean"]
    assert (await search(stack, nothing["didYouMean"]))["totalCount"] > 0
    gibberish = await search(stack, "qqqzzzxxv")
    assert gibberish["totalCount"] == 0 and gibberish["didYouMean"] is None


async def test_paging_walks_every_result_once(stack: ThreadedStack) -> None:
    whole = await search(stack, "kitchen", first=100)
    seen: list[str] = []
    after = None
    while True:
        variables = {"q": "kitchen", "first": 7, "after": after}
        page = data(await gql(stack.url("catalog"), SEARCH, variables))["productSearch"]
        seen += [e["node"]["id"] for e in page["products"]["edges"]]
        if not page["products"]["pageInfo"]["hasNextPage"]:
            break
        after = page["products"]["pageInfo"]["endCursor"]
    assert seen == [e["node"]["id"] for e in whole["products"]["edges"]] and len(seen) == whole["totalCount"]


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "variables",
    [
        {"q": "x" * 201},
        {"filter": {"priceBands": ["1-2"]}},
        {"after": _cursor(["a"])},
        {"after": _cursor([-5])},
        {"after": _cursor([10**9])},
        {"after": "!!"},
        {"first": 101},
        {"filter": {"options": [{"name": f"o{i}", "values": ["x"]} for i in range(6)]}},
    ],
)
async def test_bad_search_input_is_a_client_error(stack: ThreadedStack, variables: dict[str, Any]) -> None:
    result = await gql(stack.url("catalog"), SEARCH, variables)
    assert error_codes(result) == ["BAD_USER_INPUT"], result


async def test_hostile_text_is_just_words(stack: ThreadedStack) -> None:
    for typed in ("head & phones | !", "':* & ( ", "%_\\", "\x00?", "ÅÆØ ß"):
        result = await gql(stack.url("catalog"), SEARCH, {"q": typed})
        assert "errors" not in result or error_codes(result) == ["BAD_USER_INPUT"], typed


async def test_a_search_costs_the_same_statements_for_2_and_100_results(stack: ThreadedStack) -> None:
    filters = {"options": [{"name": "Colour", "values": ["Olive", "Navy"]}], "inStock": True}

    async def run(first: int) -> dict[str, Any]:
        return await search(stack, "kitchen", first=first, **filters)

    _, small = await fewest_statements(stack, ("catalog",), lambda: run(2))
    large, large_cost = await fewest_statements(stack, ("catalog",), lambda: run(100))
    assert len(large["products"]["edges"]) > 2
    assert 0 < large_cost["catalog"] == small["catalog"] <= 3
