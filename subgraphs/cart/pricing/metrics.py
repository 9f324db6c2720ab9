"""Prometheus metrics of pricing: discount uses, refusals by reason, guest carts."""

from __future__ import annotations

from prometheus_client import Counter

DISCOUNT_REDEMPTIONS = Counter(
    "shopgraph_discount_redemptions",
    "Discount uses counted at order placement, by kind and whether it was an automatic promotion.",
    ["kind", "automatic"],
)
DISCOUNT_REFUSALS = Counter(
    "shopgraph_discount_refusals",
    "Discount codes refused, by reason, where (apply: entered in the cart; checkout: at order placement).",
    ["reason", "at"],
)
DISCOUNT_RELEASES = Counter("shopgraph_discount_releases", "Discount uses given back because their checkout failed.")
GUEST_CARTS = Counter(
    "shopgraph_guest_carts",
    "Guest cart events: created, merged, merge_repeat, token_refused (forged, expired or merged).",
    ["event"],
)
