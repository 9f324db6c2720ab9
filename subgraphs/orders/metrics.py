"""The shop's business as Prometheus sees it: orders placed and their value (the business dashboard)."""

from __future__ import annotations

from prometheus_client import Counter

ORDERS_PLACED = Counter(
    "shopgraph_orders_placed", "Orders placed (written once, at checkout), by currency.", ["currency"]
)
ORDER_REVENUE = Counter(
    "shopgraph_orders_revenue_minor",
    "The totals of the orders placed, in minor units of their currency (cents), by currency.",
    ["currency"],
)
