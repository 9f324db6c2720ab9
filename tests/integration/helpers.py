"""Helpers for the users / catalog integration tests: fresh accounts and products, tokens, result checks.

Everything goes through the running subgraphs over HTTP (``tests.support.graphql.gql``);
nothing here touches a subgraph's tables except ``signing_key``, which reads the
users subgraph's private key so a test can forge an *expired* but correctly signed token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from deploy.stack import ThreadedStack
from subgraphs.kit.auth import mint_internal_token
from subgraphs.users.models import signing_keys
from tests.support.graphql import gql

STRONG_PASSWORD = "correct-horse-battery-staple"

USER_FIELDS = "id email name role createdAt"
AUTH_PAYLOAD = f"""
    user {{ {USER_FIELDS} }}
    accessToken refreshToken expiresIn
    userErrors {{ code field message }}
"""
REGISTER = f"mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_PAYLOAD} }} }}"
LOGIN = f"mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH_PAYLOAD} }} }}"
REFRESH = f"mutation($input: RefreshTokenInput!) {{ refreshToken(input: $input) {{ {AUTH_PAYLOAD} }} }}"
LOGOUT = "mutation($input: RefreshTokenInput!) { logout(input: $input) { ok userErrors { code field message } } }"
ME = f"{{ me {{ {USER_FIELDS} }} }}"

PRODUCT_FIELDS = """
    id sku name description price { amount currencyCode } stock inStock imageUrl active createdAt
    category { id slug }
"""
PRODUCT_PAYLOAD = f"product {{ {PRODUCT_FIELDS} }} userErrors {{ code field message }}"
CREATE_PRODUCT = f"mutation($input: CreateProductInput!) {{ createProduct(input: $input) {{ {PRODUCT_PAYLOAD} }} }}"
CREATE_CATEGORY = """
    mutation($input: CreateCategoryInput!) {
        createCategory(input: $input) { category { id slug name description } userErrors { code field message } }
    }
"""
PRODUCT_BY_ID = f"query($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"
PRODUCT_BY_SKU = f"query($sku: String!) {{ product(sku: $sku) {{ {PRODUCT_FIELDS} }} }}"


def unique(tag: str) -> str:
    return f"{tag}{uuid.uuid4().hex[:12]}"


def unique_email(tag: str = "shopper") -> str:
    return f"{unique(tag + '-')}@example.com"


def unique_sku(tag: str = "T") -> str:
    return unique(tag + "-").upper()


def unique_word() -> str:
    """A made-up lowercase word no seeded product contains (letters only, so full-text search keeps it whole)."""
    letters = "bcdfghjklmnpqrstvwxz"
    return "zq" + "".join(letters[b % len(letters)] for b in uuid.uuid4().bytes[:10])


# --- results -------------------------------------------------------------------------


def data(result: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of a result that must have no errors."""
    assert not result.get("errors"), result
    payload = result["data"]
    assert isinstance(payload, dict)
    return payload


def error_codes(result: dict[str, Any]) -> list[str]:
    """``extensions.code`` of every GraphQL error (``None`` -> ``"<none>"``, so a missing code fails loudly)."""
    return [str((e.get("extensions") or {}).get("code", "<none>")) for e in result.get("errors") or []]


def user_error_codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


# --- accounts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str


def _account(payload: dict[str, Any], password: str) -> Account:
    assert payload["userErrors"] == [], payload
    return Account(
        id=payload["user"]["id"],
        email=payload["user"]["email"],
        password=password,
        access_token=payload["accessToken"],
        refresh_token=payload["refreshToken"],
    )


async def register(
    stack: ThreadedStack,
    *,
    email: str | None = None,
    password: str = STRONG_PASSWORD,
    name: str = "Test Shopper",
    client: httpx.AsyncClient | None = None,
) -> Account:
    """A new customer account (unique email unless given), signed in."""
    variables = {"input": {"email": email or unique_email(), "password": password, "name": name}}
    result = await gql(stack.url("users"), REGISTER, variables, client=client)
    return _account(data(result)["register"], password)


async def login_payload(
    stack: ThreadedStack, email: str, password: str, *, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    result = await gql(stack.url("users"), LOGIN, {"input": {"email": email, "password": password}}, client=client)
    payload: dict[str, Any] = data(result)["login"]
    return payload


async def login(stack: ThreadedStack, email: str, password: str, *, client: httpx.AsyncClient | None = None) -> Account:
    return _account(await login_payload(stack, email, password, client=client), password)


_admin_tokens: dict[str, str] = {}


async def admin_token(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    """An access token of the seeded administrator (signed in once per stack)."""
    users_url = stack.url("users")
    if users_url not in _admin_tokens:
        email, password = demo_accounts["ADMIN"]
        account = await login(stack, email, password)
        _admin_tokens[users_url] = account.access_token
    return _admin_tokens[users_url]


def internal_token(
    stack: ThreadedStack, service: str = "orders", *, user_id: str | None = None, role: str | None = None
) -> str:
    """A service credential as the subgraphs and the router mint it."""
    return mint_internal_token(
        stack.settings.service_secret,
        service,
        user_id=uuid.UUID(user_id) if user_id else None,
        role=role,
    )


def signing_key(stack: ThreadedStack) -> tuple[str, str]:
    """(kid, private PEM) of the users subgraph's active signing key, read from its schema."""

    async def read() -> tuple[str, str]:
        db = stack.apps["users"].state.runtime.db
        async with db.read() as conn:
            row = (
                await conn.execute(
                    select(signing_keys.c.kid, signing_keys.c.private_pem)
                    .where(signing_keys.c.retired_at.is_(None))
                    .order_by(signing_keys.c.created_at.desc())
                    .limit(1)
                )
            ).one()
        return str(row.kid), str(row.private_pem)

    return stack.run(read())


# --- catalog ---------------------------------------------------------------------------


async def create_category(
    stack: ThreadedStack, token: str, *, slug: str | None = None, name: str = "Test Category"
) -> dict[str, Any]:
    variables = {"input": {"slug": slug or unique("test-"), "name": name}}
    payload = data(await gql(stack.url("catalog"), CREATE_CATEGORY, variables, token))["createCategory"]
    assert payload["userErrors"] == [], payload
    category: dict[str, Any] = payload["category"]
    return category


async def create_product(
    stack: ThreadedStack,
    token: str,
    *,
    sku: str | None = None,
    name: str | None = None,
    description: str = "",
    price: str = "10.00",
    stock: int = 5,
    category_id: str | None = None,
    active: bool = True,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """A new product (unique SKU unless given) created by an administrator."""
    product_input: dict[str, Any] = {
        "sku": sku or unique_sku(),
        "name": name or unique("Test Product "),
        "description": description,
        "price": price,
        "stock": stock,
        "active": active,
    }
    if category_id is not None:
        product_input["categoryId"] = category_id
    result = await gql(stack.url("catalog"), CREATE_PRODUCT, {"input": product_input}, token, client=client)
    payload = data(result)["createProduct"]
    assert payload["userErrors"] == [], payload
    product: dict[str, Any] = payload["product"]
    return product


async def stock_of(stack: ThreadedStack, admin: str, product_id: str) -> int:
    result = await gql(
        stack.url("catalog"), "query($id: ID!) { product(id: $id) { stock } }", {"id": product_id}, admin
    )
    stock: int = data(result)["product"]["stock"]
    return stock
