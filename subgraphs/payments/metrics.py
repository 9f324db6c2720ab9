"""Prometheus metrics of the payments subgraph (saga steps and repairs are kit.metrics')."""

from __future__ import annotations

from prometheus_client import Counter

PAYMENTS = Counter(
    "shopgraph_payments",
    "Payment outcomes, by provider and outcome (authorised, failed, captured, refunded, cancelled).",
    ["provider", "outcome"],
)
WEBHOOKS = Counter(
    "shopgraph_payment_webhooks",
    "Provider webhooks received, by provider and result (applied, duplicate, ignored, invalid, unknown).",
    ["provider", "result"],
)
PROVIDER_CALLS = Counter(
    "shopgraph_payment_provider_calls",
    "Calls to the payment provider, by provider, call and outcome (ok, retry, failed).",
    ["provider", "call", "outcome"],
)
