"""The shop mix, as Locust users (run headless by ``test_shop_mix.py``; never imported by pytest).

usage: locust -f tests/perf/shopmix_locust.py --headless ... with SHOPMIX_CONFIG=<json file> naming
the router, the shoppers (distinct accounts, their access tokens), the catalog's categories,
products, variants and facet filters, the search terms and the target request rate per user.

Each Locust user is one signed-in shopper (its own account, cart and orders). Its steps, by weight:
browse categories and facets 60, search 15, product page 10, cart change 10, checkout 5, each one
GraphQL request through the router named after its step in Locust's statistics. Variables vary on
every request (category, page size, sort, price band, option values, search term, product,
variant). An answer is a failure unless it is HTTP 200 with data, no GraphQL error and no
``userErrors``: the test asserts there were none.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant_throughput, task

CONFIG: dict[str, Any] = json.loads(Path(os.environ["SHOPMIX_CONFIG"]).read_text())
OPERATIONS = Path(__file__).resolve().parents[2] / "frontend_contract" / "operations"
_accounts = itertools.count()


def _operation(name: str) -> str:
    """The storefront's own operation (frontend_contract/operations: the single source)."""
    return (OPERATIONS / f"{name}.graphql").read_text()


CATEGORY_PAGE = _operation("CategoryPage")
PRODUCT_LIST = _operation("ProductList")
SEARCH_FACETS = _operation("SearchFacets")
PRODUCT_DETAIL = _operation("ProductDetail")
ADD_TO_CART = _operation("AddToCart")
UPDATE_CART_ITEM = _operation("UpdateCartItem")
REMOVE_FROM_CART = _operation("RemoveFromCart")
CHECKOUT = _operation("Checkout")
# The search results page: the storefront's grid reads `products`; this is the ranked, typo-tolerant
# search with its facets, one request, as a search page built on `productSearch` would send it.
SEARCH_PAGE = """query SearchPage($query: String, $filter: ProductSearchFilter, $first: Int = 24) {
  productSearch(query: $query, filter: $filter, first: $first) {
    totalCount correctedQuery didYouMean
    products { edges { node { id name inStock price { amount currencyCode }
      featuredImage { url(width: 320) srcset altText } category { name slug } } } }
    facets { kind name values { value label count selected } }
  }
}"""
SORTS = [None, "PRICE", "NAME", "NEWEST"]
ADDRESS = {"name": "Load Shopper", "line1": "1 Demo Street", "city": "Springfield", "postalCode": "12345"}


class Shopper(FastHttpUser):
    wait_time = constant_throughput(float(CONFIG["rate_per_user"]))

    def on_start(self) -> None:
        accounts = CONFIG["shoppers"]
        index = next(_accounts)
        self.account = accounts[index % len(accounts)]
        self.rng = random.Random(self.account["email"])
        self.headers = {"authorization": f"Bearer {self.account['token']}", "content-type": "application/json"}
        self.lines: dict[str, int] = {}  # variant id -> quantity in this shopper's cart
        # Shoppers arrive spread over one pacing period, not all at the first instant: a burst of
        # every user at once would be the latency measured at low rates.
        time.sleep(self.rng.random() / float(CONFIG["rate_per_user"]))  # gevent's, as Locust patches it
        # Each shopper's first step in turn, then by weight: even a short run has every step.
        first = (Shopper.browse_grid, Shopper.search, Shopper.product_page, Shopper.change_cart, Shopper.checkout)
        first[index % len(first)](self)

    def _send(self, step: str, query: str, variables: dict[str, Any], payload: str | None = None) -> Any:
        body = json.dumps({"query": query, "variables": variables})
        with self.client.post("", data=body, headers=self.headers, name=step, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:300]}")
                return None
            answer = response.json()
            if answer.get("errors") or not answer.get("data"):
                response.failure(f"errors: {json.dumps(answer)[:500]}")
                return None
            data = answer["data"]
            if payload is not None and data[payload]["userErrors"]:
                response.failure(f"userErrors: {data[payload]['userErrors']}")
                return None
            response.success()
            return data

    # -- browse categories and facets: 60 -------------------------------------------------------

    @task(30)
    def browse_grid(self) -> None:
        rng = self.rng
        product_filter: dict[str, Any] = {"categoryId": rng.choice(CONFIG["categories"])["id"]}
        if rng.random() < 0.3:
            product_filter["minPrice"] = str(rng.choice([0, 10, 25, 50, 100]))
        if rng.random() < 0.3:
            product_filter["inStock"] = True
        self._send(
            "browse",
            PRODUCT_LIST,
            {
                "first": rng.choice([12, 24, 48]),
                "filter": product_filter,
                "sortKey": rng.choice(SORTS),
                "reverse": rng.random() < 0.3,
            },
        )

    @task(10)
    def browse_category(self) -> None:
        self._send("browse", CATEGORY_PAGE, {"slug": self.rng.choice(CONFIG["categories"])["slug"]})

    @task(20)
    def browse_facets(self) -> None:
        self._send("browse", SEARCH_FACETS, {"query": None, "filter": self._facet_filter()})

    def _facet_filter(self) -> dict[str, Any]:
        """One to three facet values chosen, as a shopper narrows a category page."""
        rng = self.rng
        chosen: dict[str, Any] = {"categoryIds": [rng.choice(CONFIG["categories"])["id"]]}
        if rng.random() < 0.5:
            chosen["priceBands"] = [rng.choice(CONFIG["price_bands"])]
        if CONFIG["options"] and rng.random() < 0.4:
            name, values = rng.choice(sorted(CONFIG["options"].items()))
            chosen["options"] = [{"name": name, "values": [rng.choice(values)]}]
        if rng.random() < 0.2:
            chosen["inStock"] = True
        return chosen

    # -- search: 15 -----------------------------------------------------------------------------

    @task(15)
    def search(self) -> None:
        rng = self.rng
        variables: dict[str, Any] = {"query": rng.choice(CONFIG["searches"]), "first": rng.choice([12, 24])}
        if rng.random() < 0.3:
            variables["filter"] = {"priceBands": [rng.choice(CONFIG["price_bands"])]}
        self._send("search", SEARCH_PAGE, variables)

    # -- product page: 10 -----------------------------------------------------------------------

    @task(10)
    def product_page(self) -> None:
        self._send("product", PRODUCT_DETAIL, {"id": self.rng.choice(CONFIG["products"])})

    # -- cart change: 10 ------------------------------------------------------------------------

    @task(10)
    def change_cart(self) -> None:
        rng = self.rng
        roll = rng.random()
        if not self.lines or (roll < 0.6 and len(self.lines) < 8):
            self._add(rng.choice(CONFIG["variants"]))
            return
        variant = rng.choice(sorted(self.lines))
        if roll < 0.85:
            quantity = rng.randint(1, 3)
            if self._send(
                "cart",
                UPDATE_CART_ITEM,
                {"input": {"variantId": variant, "quantity": quantity}},
                "updateCartItem",
            ):
                self.lines[variant] = quantity
        elif self._send("cart", REMOVE_FROM_CART, {"input": {"variantId": variant}}, "removeFromCart"):
            del self.lines[variant]

    def _add(self, variant: str) -> None:
        if self._send("cart", ADD_TO_CART, {"input": {"variantId": variant, "quantity": 1}}, "addToCart"):
            self.lines[variant] = self.lines.get(variant, 0) + 1

    # -- checkout: 5 ----------------------------------------------------------------------------

    @task(5)
    def checkout(self) -> None:
        if not self.lines:
            self._add(self.rng.choice(CONFIG["variants"]))  # a cart step, as the shopper would
            if not self.lines:
                return
        address = {**ADDRESS, "country": self.rng.choice(CONFIG["countries"])}
        variables = {"input": {"idempotencyKey": str(uuid.uuid4()), "shippingAddress": address}}
        if self._send("checkout", CHECKOUT, variables, "checkout"):
            self.lines.clear()
