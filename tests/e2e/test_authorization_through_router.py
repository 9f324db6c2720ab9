"""Through the router, over the real subgraphs: administrators' fields and mutations carry
@requiresScopes(role:admin) (subgraphs.kit.auth.ADMIN_ONLY), so the router refuses them to
anyone else before calling the subgraph that serves them: null (nulling its nearest nullable
parent) with an UNAUTHORIZED_FIELD_OR_TYPE error at its path. Subgraph calls are counted where
they arrive: the subgraphs' own operation counter (they run in this process).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack
from subgraphs.kit import metrics as subgraph_metrics
from tests.integration.helpers import admin_token, register
from tests.support.graphql import gql

ALL_ORDERS = "{ allOrders(first: 1) { totalCount } }"
ORDERS_AND_ME = "{ me { email } orders(first: 1) { totalCount } staff: allOrders(first: 1) { totalCount } }"
REFUND = "mutation($i: RefundPaymentInput!) { refundPayment(input: $i) { userErrors { code } } }"
STATUS = "mutation($i: UpdateOrderStatusInput!) { updateOrderStatus(input: $i) { userErrors { code } } }"


def _served(subgraph: str) -> float:
    """Operations ``subgraph`` has executed so far (any outcome)."""
    return sum(
        s.value
        for m in subgraph_metrics.OPERATIONS.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels.get("subgraph") == subgraph
    )


async def _call(router_url: str, query: str, variables: dict[str, Any] | None, token: str | None) -> Any:
    async with httpx.AsyncClient(timeout=60) as client:
        return await gql(router_url, query, variables, token, client=client)


def _refused_at(result: dict[str, Any]) -> list[Any]:
    errors = result.get("errors") or []
    assert all(e["extensions"]["code"] == "UNAUTHORIZED_FIELD_OR_TYPE" for e in errors), errors
    return [e["path"] for e in errors]


@pytest.fixture
async def customer(stack: ThreadedStack) -> str:
    return (await register(stack)).access_token


async def test_a_customer_asking_for_an_admin_field_gets_null_and_orders_is_not_called(
    router_url: str, customer: str
) -> None:
    before = _served("orders")
    result = await _call(router_url, ALL_ORDERS, None, customer)
    # allOrders is OrderConnection!: its null nulls data
    assert result["data"] is None and _refused_at(result) == [["allOrders"]]
    assert _served("orders") == before
    anonymous = await _call(router_url, ALL_ORDERS, None, None)
    assert anonymous["data"] is None and _refused_at(anonymous) == [["allOrders"]]
    assert _served("orders") == before


async def test_the_rest_of_the_operation_is_served(router_url: str, customer: str) -> None:
    # a nullable parent keeps its other fields: the customer's own orders and email come back
    query = "{ me { email } orders(first: 1) { totalCount } }"
    before = _served("orders")
    own = await _call(router_url, query, None, customer)
    assert "errors" not in own and own["data"]["orders"] == {"totalCount": 0}
    assert _served("orders") == before + 1
    mixed = await _call(router_url, ORDERS_AND_ME, None, customer)
    assert mixed["data"] is None and _refused_at(mixed) == [["staff"]]  # (staff: allOrders is non-null)


async def test_admin_mutations_are_refused_before_any_subgraph(router_url: str, customer: str) -> None:
    before = {g: _served(g) for g in ("orders", "payments")}
    unknown = str(uuid.uuid4())
    refund = await _call(router_url, REFUND, {"i": {"paymentId": unknown, "amount": "1.00"}}, customer)
    assert refund["data"] is None and _refused_at(refund) == [["refundPayment"]]
    status = await _call(router_url, STATUS, {"i": {"orderId": unknown, "status": "PAID"}}, customer)
    assert status["data"] is None and _refused_at(status) == [["updateOrderStatus"]]
    assert {g: _served(g) for g in ("orders", "payments")} == before


async def test_administrators_get_through_to_the_subgraphs_own_checks(
    router_url: str, stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await admin_token(stack, demo_accounts)
    before = _served("payments")
    answer = await _call(router_url, ALL_ORDERS, None, admin)
    assert "errors" not in answer and answer["data"]["allOrders"]["totalCount"] >= 0
    # the router lets an administrator's refund through: the subgraph answers (an unknown payment)
    refund = await _call(router_url, REFUND, {"i": {"paymentId": str(uuid.uuid4()), "amount": "1.00"}}, admin)
    assert refund["data"]["refundPayment"]["userErrors"], refund
    assert _served("payments") == before + 1
