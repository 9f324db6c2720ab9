"""What the cart needs to know about products, asked of the catalog subgraph.

One ``_entities`` call per batch: a cart of 50 lines costs one HTTP request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gql import gql

from subgraphs.kit.money import to_minor
from subgraphs.kit.service_client import ServiceClient

PRODUCTS = gql(
    """
    query CartProducts($representations: [_Any!]!) {
      _entities(representations: $representations) {
        ... on Product { id name active stock price { amount currencyCode } }
      }
    }
    """
)


@dataclass(frozen=True)
class ProductInfo:
    id: uuid.UUID
    name: str
    active: bool
    stock: int
    price_minor: int
    currency: str


async def fetch_products(catalog: ServiceClient, ids: list[uuid.UUID]) -> list[ProductInfo | None]:
    """Products in the order of ``ids``; None for ones the catalog does not know."""
    if not ids:
        return []
    representations = [{"__typename": "Product", "id": str(i)} for i in ids]
    data = await catalog.execute(PRODUCTS, {"representations": representations})
    out: list[ProductInfo | None] = []
    for entity in data["_entities"]:
        if entity is None:
            out.append(None)
            continue
        currency = entity["price"]["currencyCode"]
        out.append(
            ProductInfo(
                id=uuid.UUID(entity["id"]),
                name=entity["name"],
                active=entity["active"],
                stock=entity["stock"],
                price_minor=to_minor(entity["price"]["amount"], currency),
                currency=currency,
            )
        )
    return out
