"""The storefront's real operations (frontend_contract) sent through a gateway, as the web client sends them.

``Storefront(url, client)`` calls one gateway by operation name; ``Shopper`` is a
signed-in customer with both the access token the storefront holds (for our
router, which verifies it) and the internal token our router would forward
for them (for Apollo Gateway, which cannot verify our JWTs and only forwards a
header to the subgraphs).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from frontend_contract.manifest import by_name
from subgraphs.kit.auth import mint_internal_token

Json = dict[str, Any]
OPERATIONS = by_name()
PASSWORD = "correct-horse-battery"
ADDRESS = {
    "name": "Robin Shopper",
    "line1": "10 Market Street",
    "city": "Leeds",
    "postalCode": "LS1 1AA",
    "country": "GB",
}


@dataclass(frozen=True)
class Shopper:
    id: str
    email: str
    role: str
    access_token: str

    def internal_token(self, service_secret: str) -> str:
        """What our router forwards for this user: an internal token carrying the verified identity."""
        return mint_internal_token(service_secret, "router", user_id=uuid.UUID(self.id), role=self.role)


def anonymous_internal_token(service_secret: str) -> str:
    """What our router forwards for an anonymous client."""
    return mint_internal_token(service_secret, "router")


class Storefront:
    """One gateway's ``/graphql``, called by operation name with the contract's documents."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client

    async def send(self, operation: str, variables: Mapping[str, Any] | None = None, token: str | None = None) -> Json:
        op = OPERATIONS[operation]
        body: Json = {"query": op.body, "operationName": op.name, "variables": dict(variables or {})}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(self.url, json=body, headers=headers)
        assert response.status_code < 500, f"{operation}: HTTP {response.status_code}: {response.text[:500]}"
        payload = response.json()
        assert isinstance(payload, dict), payload
        return payload

    async def data(self, operation: str, variables: Mapping[str, Any] | None = None, token: str | None = None) -> Json:
        """``send`` that insists on success: no errors, no userErrors in mutation payloads."""
        payload = await self.send(operation, variables, token)
        assert not payload.get("errors"), f"{operation}: {payload['errors']}"
        data = payload["data"]
        assert isinstance(data, dict)
        for value in data.values():
            if isinstance(value, dict) and "userErrors" in value:
                assert value["userErrors"] == [], f"{operation}: {value['userErrors']}"
        return data

    async def register(self, name: str = "Robin Shopper") -> Shopper:
        email = f"shopper-{secrets.token_hex(6)}@example.com"
        payload = (await self.data("Register", {"input": {"email": email, "password": PASSWORD, "name": name}}))[
            "register"
        ]
        user = payload["user"]
        return Shopper(user["id"], email, user["role"], payload["accessToken"])

    async def login(self, email: str, password: str) -> Shopper:
        payload = (await self.data("Login", {"input": {"email": email, "password": password}}))["login"]
        user = payload["user"]
        return Shopper(user["id"], email, user["role"], payload["accessToken"])


# --- normalising responses of two runs that create different objects --------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ORDER_NUMBER = re.compile(r"SG-\d+")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?")
_JWT = re.compile(r"[\w-]+\.[\w-]+\.[\w-]+")
# A payment's provider intent (its id and secret, and the pay page's URL naming both) is new per payment.
_OPAQUE = frozenset(
    {"accessToken", "refreshToken", "cursor", "endCursor", "startCursor", "clientSecret", "nextActionUrl"}
)


def normalise(value: Any, replace: Mapping[str, str] = {}) -> Any:
    """``value`` with generated values masked: ids, order numbers, timestamps, tokens, cursors,
    and the run's own values in ``replace`` (an email, a SKU) by their placeholders."""
    if isinstance(value, dict):
        return {
            k: ("<opaque>" if k in _OPAQUE and isinstance(v, str) else normalise(v, replace)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalise(v, replace) for v in value]
    if isinstance(value, str):
        for own, placeholder in replace.items():
            value = value.replace(own, placeholder)
        value = _UUID.sub("<uuid>", value)
        value = _ORDER_NUMBER.sub("<order-number>", value)
        value = _TIMESTAMP.sub("<time>", value)
        return _JWT.sub("<jwt>", value) if _JWT.fullmatch(value) else value
    return value


def comparable(payload: Json) -> str:
    """The response as one JSON text to compare: ``data`` in its own key order (field order is
    part of the spec), then the errors, every key of them, sorted (their order is not).

    Apollo Gateway reports non-null violations under ``extensions.valueCompletion``; our router
    reports them in ``errors``, as the GraphQL spec requires: both count as errors here.
    """
    extensions = dict(payload.get("extensions") or {})
    reported = [*(payload.get("errors") or ()), *extensions.pop("valueCompletion", ())]
    errors = sorted(json.dumps(e, sort_keys=True) for e in reported)
    return json.dumps({"data": payload.get("data"), "errors": errors, "extensions": extensions}, indent=1)


# --- orders written straight into the orders schema (fast set-up of long histories) -------------


async def insert_orders(database: Any, user_id: str, count: int, lines: list[list[Json]], status: str = "PAID") -> None:
    """``count`` orders for ``user_id``, newest first in insertion order; order ``i`` has the
    lines ``lines[i % len(lines)]`` (each ``{"id", "sku", "name", "price": {"amount"}}`` plus
    ``"quantity"``). ``database`` is the orders subgraph's ``kit.db.Database``; run it in the stack's loop."""
    from sqlalchemy import text  # local: only set-up code needs SQLAlchemy here

    address = json.dumps(
        {"name": "Bulk Buyer", "line1": "1 Long Road", "city": "York", "postal_code": "YO1 7HH", "country": "GB"}
    )
    async with database.transaction() as conn:
        for i in range(count):
            items = lines[i % len(lines)]
            minor = [int(Decimal(p["price"]["amount"]) * 100) for p in items]
            total = sum(m * p["quantity"] for m, p in zip(minor, items, strict=True))
            order_id = (
                await conn.execute(
                    text(
                        "INSERT INTO orders (user_id, status, idempotency_key, reservation_id, currency,"
                        " subtotal_minor, shipping_minor, total_minor, shipping_address, created_at, updated_at)"
                        " VALUES (CAST(:user AS uuid), :status, :key, gen_random_uuid(), 'USD', :total, 0, :total,"
                        " CAST(:address AS jsonb), now() - make_interval(mins => :age), now())"
                        " RETURNING id"
                    ),
                    {
                        "user": user_id,
                        "status": status,
                        "key": f"bulk-{i}-{secrets.token_hex(4)}",
                        "total": total,
                        "address": address,
                        "age": i,
                    },
                )
            ).scalar_one()
            await conn.execute(
                text(
                    # A product made without variants sells its default variant, which shares its id.
                    "INSERT INTO order_items (order_id, position, product_id, variant_id, sku, name, unit_price_minor,"
                    " quantity) VALUES (:order, :position, CAST(:product AS uuid), CAST(:product AS uuid), :sku,"
                    " :name, :price, :quantity)"
                ),
                [
                    {
                        "order": order_id,
                        "position": n,
                        "product": p["id"],
                        "sku": p["sku"],
                        "name": p["name"],
                        "price": m,
                        "quantity": p["quantity"],
                    }
                    for n, (p, m) in enumerate(zip(items, minor, strict=True))
                ],
            )


async def delete_orders(database: Any, user_id: str) -> None:
    """Remove ``user_id``'s orders (set-up data other tests should not meet), items and all."""
    from sqlalchemy import text

    async with database.transaction() as conn:
        await conn.execute(text("DELETE FROM orders WHERE user_id = CAST(:user AS uuid)"), {"user": user_id})
