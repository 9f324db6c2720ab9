"""What the cart needs to know about the variants it holds, asked of the catalog subgraph.

One ``_entities`` call per batch: a cart of 50 lines costs one HTTP request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gql import gql

from subgraphs.kit.money import to_minor
from subgraphs.kit.service_client import ServiceClient

VARIANTS = gql(
    """
    query CartVariants($representations: [_Any!]!) {
      _entities(representations: $representations) {
        ... on ProductVariant {
          id title active stock weightGrams price { amount currencyCode } product { id name active }
        }
      }
    }
    """
)
DEFAULT_VARIANTS = gql(
    """
    query CartDefaultVariants($representations: [_Any!]!) {
      _entities(representations: $representations) { ... on Product { id defaultVariant { id } } }
    }
    """
)


@dataclass(frozen=True)
class ProductInfo:
    """One variant as the cart sees it: ``id`` is the variant's, ``active`` is false when the
    variant or its product is no longer sold, ``name`` the product's name and the variant's title."""

    id: uuid.UUID
    product_id: uuid.UUID
    name: str
    active: bool
    stock: int
    price_minor: int
    currency: str
    weight_grams: int = 500


async def fetch_products(catalog: ServiceClient, variant_ids: list[uuid.UUID]) -> list[ProductInfo | None]:
    """Variants in the order of ``variant_ids``; None for ones the catalog does not know."""
    if not variant_ids:
        return []
    representations = [{"__typename": "ProductVariant", "id": str(i)} for i in variant_ids]
    data = await catalog.execute(VARIANTS, {"representations": representations})
    out: list[ProductInfo | None] = []
    for entity in data["_entities"]:
        if entity is None or entity["product"] is None:
            out.append(None)
            continue
        currency = entity["price"]["currencyCode"]
        product = entity["product"]
        out.append(
            ProductInfo(
                id=uuid.UUID(entity["id"]),
                product_id=uuid.UUID(product["id"]),
                name=f"{product['name']} — {entity['title']}" if entity["title"] else product["name"],
                active=entity["active"] and product["active"],
                stock=entity["stock"],
                price_minor=to_minor(entity["price"]["amount"], currency),
                currency=currency,
                weight_grams=entity["weightGrams"],
            )
        )
    return out


async def fetch_default_variants(catalog: ServiceClient, product_ids: list[uuid.UUID]) -> list[uuid.UUID | None]:
    """The variant a bare product id means (see the catalog's ``Product.defaultVariant``)."""
    if not product_ids:
        return []
    representations = [{"__typename": "Product", "id": str(i)} for i in product_ids]
    data = await catalog.execute(DEFAULT_VARIANTS, {"representations": representations})
    return [
        uuid.UUID(e["defaultVariant"]["id"]) if e is not None and e["defaultVariant"] is not None else None
        for e in data["_entities"]
    ]
