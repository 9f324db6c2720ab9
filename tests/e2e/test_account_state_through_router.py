"""Through the router: tokens never outlive the account, its role or its sessions.

A deleted user's still-valid access token placed an order; a demoted admin kept
admin rights until the token expired. Now checkout, admin operations and every
other signed-in call see the account's current state at once, and password
change and reset end the other sessions.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis
from sqlalchemy import text

from deploy.stack import ThreadedStack
from subgraphs.kit.revocation import state_key
from tests.integration.helpers import (
    CREATE_PRODUCT,
    LOGIN,
    REFRESH,
    REGISTER,
    STRONG_PASSWORD,
    unique_email,
    unique_sku,
)
from tests.integration.shop_helpers import ADD_TO_CART, ADDRESS, CHECKOUT, orders_of, sql
from tests.support.graphql import gql

SET_ROLE = "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { user { role } userErrors { code } } }"
DELETE_USER = "mutation($i: DeleteUserInput!) { deleteUser(input: $i) { ok userErrors { code field } } }"
SIGN_OUT_EVERYWHERE = "mutation { signOutEverywhere { ok userErrors { code } } }"
CHANGE_PASSWORD = """mutation($i: ChangePasswordInput!) { changePassword(input: $i) {
  accessToken refreshToken userErrors { code field } } }"""
REQUEST_RESET = (
    "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) { ok userErrors { code } } }"
)
RESET = "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { ok userErrors { code field } } }"
ME = "{ me { id email role } }"
ALL_ORDERS = "{ allOrders(first: 1) { totalCount } }"
NEW_PASSWORD = "a brand new passphrase"


async def _call(router_url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
    async with httpx.AsyncClient(timeout=60) as client:
        return await gql(router_url, query, variables, token, client=client)


async def _data(router_url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
    result = await _call(router_url, query, variables, token)
    assert "errors" not in result, result
    return result["data"]


def _codes(result: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result.get("errors", [])]


async def _login(router_url: str, email: str, password: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await _data(router_url, LOGIN, {"input": {"email": email, "password": password}}))[
        "login"
    ]
    return payload


async def _register(router_url: str) -> dict[str, Any]:
    variables = {"input": {"email": unique_email("state"), "password": STRONG_PASSWORD, "name": "State"}}
    payload: dict[str, Any] = (await _data(router_url, REGISTER, variables))["register"]
    assert payload["userErrors"] == []
    return payload


async def _admin(router_url: str, demo_accounts: dict[str, tuple[str, str]]) -> str:
    token: str = (await _login(router_url, *demo_accounts["ADMIN"]))["accessToken"]
    return token


async def _product(router_url: str, admin: str) -> dict[str, Any]:
    variables = {"input": {"sku": unique_sku("STATE"), "name": "State Lamp", "price": "3.00", "stock": 10}}
    return dict(await _call(router_url, CREATE_PRODUCT, variables, admin))


def _refused(result: dict[str, Any]) -> bool:
    return "UNAUTHENTICATED" in _codes(result)


async def test_a_deleted_users_token_places_no_order(
    router_url: str, stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await _admin(router_url, demo_accounts)
    product = (await _product(router_url, admin))["data"]["createProduct"]["product"]
    shopper = await _register(router_url)
    token = shopper["accessToken"]
    add = await _data(router_url, ADD_TO_CART, {"input": {"productId": product["id"], "quantity": 1}}, token)
    assert add["addToCart"]["userErrors"] == []

    deleted = await _data(router_url, DELETE_USER, {"i": {"userId": shopper["user"]["id"]}}, admin)
    assert deleted["deleteUser"] == {"ok": True, "userErrors": []}
    variables = {"input": {"idempotencyKey": uuid.uuid4().hex, "shippingAddress": ADDRESS}}
    assert _refused(await _call(router_url, CHECKOUT, variables, token))
    assert _refused(await _call(router_url, ME, None, token))
    assert await orders_of(stack, shopper["user"]["id"]) == 0
    refreshed = await _data(router_url, REFRESH, {"input": {"refreshToken": shopper["refreshToken"]}})
    assert [e["code"] for e in refreshed["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]


async def test_a_demoted_admins_token_is_refused_at_once(
    router_url: str, stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await _admin(router_url, demo_accounts)
    account = await _register(router_url)
    user_id = account["user"]["id"]
    promoted = await _data(router_url, SET_ROLE, {"i": {"userId": user_id, "role": "ADMIN"}}, admin)
    assert promoted["setUserRole"] == {"user": {"role": "ADMIN"}, "userErrors": []}
    # Promotion too ends the old (CUSTOMER) token: the new role comes with the next token.
    assert _refused(await _call(router_url, ME, None, account["accessToken"]))
    second_admin = (await _data(router_url, REFRESH, {"input": {"refreshToken": account["refreshToken"]}}))[
        "refreshToken"
    ]
    assert "errors" not in await _call(router_url, ALL_ORDERS, None, second_admin["accessToken"])
    assert (await _product(router_url, second_admin["accessToken"]))["data"]["createProduct"]["userErrors"] == []

    demoted = await _data(router_url, SET_ROLE, {"i": {"userId": user_id, "role": "CUSTOMER"}}, admin)
    assert demoted["setUserRole"]["user"] == {"role": "CUSTOMER"}
    # Every admin operation refuses the token that still says ADMIN, on every subgraph.
    assert _refused(await _call(router_url, ALL_ORDERS, None, second_admin["accessToken"]))
    created = await _product(router_url, second_admin["accessToken"])
    assert _refused(created) and created["data"] is None
    assert _refused(
        await _call(router_url, SET_ROLE, {"i": {"userId": user_id, "role": "ADMIN"}}, second_admin["accessToken"])
    )
    # A refresh gives a token with the role the account has now.
    customer = (await _data(router_url, REFRESH, {"input": {"refreshToken": second_admin["refreshToken"]}}))[
        "refreshToken"
    ]
    # (refused by the router itself now: allOrders is @requiresScopes(role:admin))
    assert "UNAUTHORIZED_FIELD_OR_TYPE" in _codes(await _call(router_url, ALL_ORDERS, None, customer["accessToken"]))


async def test_revocations_hold_when_redis_forgets_them(router_url: str, stack: ThreadedStack) -> None:
    """The cheap path is Redis; without its key every subgraph falls back to the users table."""
    account = await _register(router_url)
    token, user_id = account["accessToken"], uuid.UUID(account["user"]["id"])
    signed_out = await _data(router_url, SIGN_OUT_EVERYWHERE, None, token)
    assert signed_out["signOutEverywhere"] == {"ok": True, "userErrors": []}
    redis = aioredis.from_url(stack.settings.redis_url)
    try:
        assert await redis.delete(state_key(stack.settings, user_id)) == 1
        variables = {"input": {"idempotencyKey": uuid.uuid4().hex, "shippingAddress": ADDRESS}}
        assert _refused(await _call(router_url, CHECKOUT, variables, token))  # orders asks users
        assert await redis.exists(state_key(stack.settings, user_id)) == 1  # ...and puts the answer back
        fresh = await _login(router_url, account["user"]["email"], STRONG_PASSWORD)
        assert (await _data(router_url, ME, None, fresh["accessToken"]))["me"]["id"] == str(user_id)
    finally:
        await redis.aclose()
    refreshed = await _data(router_url, REFRESH, {"input": {"refreshToken": account["refreshToken"]}})
    assert [e["code"] for e in refreshed["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]


async def test_change_password_needs_the_current_one_and_ends_other_sessions(router_url: str) -> None:
    account = await _register(router_url)
    email, token = account["user"]["email"], account["accessToken"]
    other_device = await _login(router_url, email, STRONG_PASSWORD)

    wrong = await _data(
        router_url, CHANGE_PASSWORD, {"i": {"currentPassword": "not it at all", "newPassword": NEW_PASSWORD}}, token
    )
    assert wrong["changePassword"]["userErrors"] == [
        {"code": "INVALID_CREDENTIALS", "field": ["input", "currentPassword"]}
    ]
    weak = await _data(
        router_url, CHANGE_PASSWORD, {"i": {"currentPassword": STRONG_PASSWORD, "newPassword": "short"}}, token
    )
    assert weak["changePassword"]["userErrors"] == [{"code": "WEAK_PASSWORD", "field": ["input", "newPassword"]}]
    changed = (
        await _data(
            router_url, CHANGE_PASSWORD, {"i": {"currentPassword": STRONG_PASSWORD, "newPassword": NEW_PASSWORD}}, token
        )
    )["changePassword"]
    assert changed["userErrors"] == [] and changed["accessToken"]
    # This device goes on with the new tokens; every older token, here and elsewhere, is refused.
    assert (await _data(router_url, ME, None, changed["accessToken"]))["me"]["email"] == email
    for old in (token, other_device["accessToken"]):
        assert _refused(await _call(router_url, ME, None, old))
    stale = await _data(router_url, REFRESH, {"input": {"refreshToken": other_device["refreshToken"]}})
    assert [e["code"] for e in stale["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]
    assert [e["code"] for e in (await _login(router_url, email, STRONG_PASSWORD))["userErrors"]] == [
        "INVALID_CREDENTIALS"
    ]
    assert (await _login(router_url, email, NEW_PASSWORD))["userErrors"] == []


async def _reset_mails(stack: ThreadedStack, email: str) -> list[str]:
    """The reset links of the account's ``account.password_reset_requested`` events (users' outbox; the
    notifications worker mails them: tests/e2e/test_password_reset_mail.py)."""
    async with sql(stack, "users") as conn:
        rows = await conn.execute(
            text(
                "SELECT payload->>'reset_url' AS link FROM outbox"
                " WHERE event_type = 'account.password_reset_requested' AND payload->>'email' = :r ORDER BY id"
            ),
            {"r": email},
        )
        return [r.link for r in rows]


def _token_in(body: str) -> str:
    link = next(line for line in body.splitlines() if "/reset-password?token=" in line)
    return link.split("token=", 1)[1].strip()


async def test_password_reset_by_a_one_time_token(router_url: str, stack: ThreadedStack) -> None:
    account = await _register(router_url)
    email = account["user"]["email"]
    known = await _call(router_url, REQUEST_RESET, {"i": {"email": email}})
    unknown = await _call(router_url, REQUEST_RESET, {"i": {"email": unique_email("nobody")}})
    assert known == unknown == {"data": {"requestPasswordReset": {"ok": True, "userErrors": []}}}

    (body,) = await _reset_mails(stack, email)
    token = _token_in(body)
    assert f"{stack.settings.public_url}/reset-password?token=" in body
    async with sql(stack, "users") as conn:
        stored = (
            await conn.execute(
                text("SELECT token_hash FROM password_resets WHERE user_id = :u"),
                {"u": uuid.UUID(account["user"]["id"])},
            )
        ).scalar_one()
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()  # only a hash is kept

    weak = await _data(router_url, RESET, {"i": {"token": token, "newPassword": "short"}})
    assert weak["resetPassword"]["userErrors"] == [{"code": "WEAK_PASSWORD", "field": ["input", "newPassword"]}]
    done = await _data(router_url, RESET, {"i": {"token": token, "newPassword": NEW_PASSWORD}})
    assert done["resetPassword"] == {"ok": True, "userErrors": []}
    # Every session ends: the access token and the refresh token of before.
    assert _refused(await _call(router_url, ME, None, account["accessToken"]))
    stale = await _data(router_url, REFRESH, {"input": {"refreshToken": account["refreshToken"]}})
    assert [e["code"] for e in stale["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]
    assert (await _login(router_url, email, NEW_PASSWORD))["userErrors"] == []
    # Single use.
    again = await _data(router_url, RESET, {"i": {"token": token, "newPassword": "yet another passphrase"}})
    assert again["resetPassword"]["userErrors"] == [{"code": "INVALID_TOKEN", "field": ["input", "token"]}]


async def test_reset_tokens_expire_after_thirty_minutes(router_url: str, stack: ThreadedStack) -> None:
    account = await _register(router_url)
    email = account["user"]["email"]
    await _data(router_url, REQUEST_RESET, {"i": {"email": email}})
    (body,) = await _reset_mails(stack, email)
    async with sql(stack, "users") as conn:
        lifetime = (
            await conn.execute(
                text("SELECT extract(epoch FROM expires_at - created_at) FROM password_resets WHERE user_id = :u"),
                {"u": uuid.UUID(account["user"]["id"])},
            )
        ).scalar_one()
        assert 1795 <= float(lifetime) <= 1805
        # Thirty minutes pass.
        await conn.execute(
            text(
                "UPDATE password_resets SET created_at = created_at - interval '31 minutes', "
                "expires_at = expires_at - interval '31 minutes' WHERE user_id = :u"
            ),
            {"u": uuid.UUID(account["user"]["id"])},
        )
    expired = await _data(router_url, RESET, {"i": {"token": _token_in(body), "newPassword": NEW_PASSWORD}})
    assert expired["resetPassword"]["userErrors"] == [{"code": "INVALID_TOKEN", "field": ["input", "token"]}]
    assert (await _login(router_url, email, STRONG_PASSWORD))["userErrors"] == []


async def test_a_deleted_users_orders_stay_listed_with_a_tombstone(
    router_url: str, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    """Deleting an account keeps its orders on record, and they still resolve their user: the
    admin's order list (which selects `user { name email }`, non-null) must not break."""
    admin = await _admin(router_url, demo_accounts)
    product = (await _product(router_url, admin))["data"]["createProduct"]["product"]
    shopper = await _register(router_url)
    token = shopper["accessToken"]
    add = await _data(router_url, ADD_TO_CART, {"input": {"productId": product["id"], "quantity": 1}}, token)
    assert add["addToCart"]["userErrors"] == []
    variables = {"input": {"idempotencyKey": uuid.uuid4().hex, "shippingAddress": ADDRESS}}
    placed = await _data(router_url, CHECKOUT, variables, token)
    number = placed["checkout"]["order"]["number"]
    deleted = await _data(router_url, DELETE_USER, {"i": {"userId": shopper["user"]["id"]}}, admin)
    assert deleted["deleteUser"] == {"ok": True, "userErrors": []}
    listed = await _call(
        router_url, "{ allOrders(first: 100) { edges { node { number user { id name email } } } } }", None, admin
    )
    edges = listed["data"]["allOrders"]["edges"]
    (index,) = [i for i, e in enumerate(edges) if e["node"]["number"] == number]
    # Only this order's entry must be whole: in a full pass the list also holds orders that
    # subgraph-level tests placed for made-up accounts (tokens minted for ids users never had).
    assert not [e for e in listed.get("errors", []) if e["path"][:3] == ["allOrders", "edges", index]], listed
    mine = [edges[index]["node"]]
    assert [(o["user"]["id"], o["user"]["name"]) for o in mine] == [(shopper["user"]["id"], "Deleted account")]
    assert mine[0]["user"]["email"].endswith("@deleted.invalid")
    # Deleting it again finds nothing: the tombstone is not an account.
    again = await _data(router_url, DELETE_USER, {"i": {"userId": shopper["user"]["id"]}}, admin)
    assert again["deleteUser"]["userErrors"] == [{"code": "NOT_FOUND", "field": ["input", "userId"]}]
