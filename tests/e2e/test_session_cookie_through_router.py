"""Issue 20: the storefront's refresh token is an HttpOnly cookie, set by the graph through the router.

The router relays one cookie (``session_cookie``: ``shopgraph_refresh``, set by users) and nothing
else: the storefront's own operations (frontend_contract) never carry the refresh token in a body;
a reload signs in again by spending the cookie; rotation, reuse detection, sign-out and sign-out
everywhere work on the cookie as on body tokens; the cookie cannot be spent by a request a browser
sends cross-site without a preflight (CSRF), nor with its value smuggling a second header.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from frontend_contract.manifest import by_name
from tests.integration.helpers import unique_email

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPS = by_name()
NAME = "shopgraph_refresh"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # No cookie jar: each request carries exactly the cookie the test gives it.
    async with httpx.AsyncClient(timeout=30, trust_env=False, cookies=None) as c:
        yield c


async def _send(
    client: httpx.AsyncClient,
    url: str,
    operation: str,
    variables: dict[str, Any],
    *,
    cookie: str | None = None,
    token: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    headers = {"content-type": "application/json"}
    if cookie is not None:
        headers["cookie"] = cookie
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    op = OPS[operation]
    r = await client.post(
        url, json={"query": op.body, "operationName": op.name, "variables": variables}, headers=headers
    )
    client.cookies.clear()
    assert r.status_code == 200, r.text
    return r.json(), r.headers.get_list("set-cookie")


def _attributes(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = [p.strip() for p in header.split(";")]
    name, _, value = first.partition("=")
    assert name == NAME, header
    attrs = {k.lower(): v for k, _, v in (p.partition("=") for p in rest)}
    return value, attrs


def _session_of(set_cookies: list[str]) -> str:
    (header,) = set_cookies
    value, attrs = _attributes(header)
    assert value
    # What keeps it from scripts and from other sites: HttpOnly, SameSite, Secure (127.0.0.1 counts as
    # a secure context for browsers, so the dev stack's plain http keeps the attribute), /graphql only.
    assert attrs.keys() >= {"httponly", "secure", "samesite", "path", "max-age"}, header
    assert attrs["samesite"] == "Strict" and attrs["path"] == "/graphql" and int(attrs["max-age"]) > 86400
    return f"{NAME}={value}"


def _cleared(set_cookies: list[str]) -> bool:
    return len(set_cookies) == 1 and _attributes(set_cookies[0])[1].get("max-age") == "0"


async def _register(client: httpx.AsyncClient, url: str) -> tuple[dict[str, Any], str]:
    email = unique_email("cookie")
    body, cookies = await _send(
        client, url, "Register", {"input": {"email": email, "password": "a cookie passphrase", "name": "Cy"}}
    )
    payload = body["data"]["register"]
    assert payload["userErrors"] == [] and payload["accessToken"]
    assert "refreshToken" not in payload  # the storefront never asks for it
    return payload, _session_of(cookies)


async def test_sign_in_sets_the_cookie_and_a_reload_refreshes_with_it(
    router_url: str, client: httpx.AsyncClient
) -> None:
    registered, first = await _register(client, router_url)
    body, cookies = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=first)
    refreshed = body["data"]["refreshToken"]
    assert refreshed["userErrors"] == [] and refreshed["accessToken"]
    assert refreshed["user"] == registered["user"]  # who is signed in, for the reloaded page
    second = _session_of(cookies)
    assert second != first  # rotated

    # The old cookie again (a stolen copy): reuse is detected, the family revoked, the cookie cleared.
    body, cookies = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=first)
    assert [e["code"] for e in body["data"]["refreshToken"]["userErrors"]] == ["TOKEN_REUSED"]
    assert _cleared(cookies)
    body, cookies = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=second)
    assert [e["code"] for e in body["data"]["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]
    assert _cleared(cookies)

    # No cookie at all: no session (and nothing to clear beyond the answer's own).
    body, _ = await _send(client, router_url, "RefreshSession", {"input": {}})
    assert [e["code"] for e in body["data"]["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]


async def test_sign_out_and_sign_out_everywhere_clear_and_revoke(router_url: str, client: httpx.AsyncClient) -> None:
    _, cookie = await _register(client, router_url)
    body, cookies = await _send(client, router_url, "Logout", {"input": {}}, cookie=cookie)
    assert body["data"]["logout"] == {"ok": True, "userErrors": []} and _cleared(cookies)
    body, _ = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=cookie)
    assert [e["code"] for e in body["data"]["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]

    payload, here = await _register(client, router_url)
    email = payload["user"]["email"]
    body, cookies = await _send(
        client, router_url, "Login", {"input": {"email": email, "password": "a cookie passphrase"}}
    )
    elsewhere = _session_of(cookies)
    body, cookies = await _send(client, router_url, "SignOutEverywhere", {}, token=payload["accessToken"])
    assert body["data"]["signOutEverywhere"] == {"ok": True, "userErrors": []} and _cleared(cookies)
    for session in (here, elsewhere):
        body, _ = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=session)
        assert [e["code"] for e in body["data"]["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]


async def test_change_password_keeps_this_session_in_the_cookie(router_url: str, client: httpx.AsyncClient) -> None:
    payload, before = await _register(client, router_url)
    body, cookies = await _send(
        client,
        router_url,
        "ChangePassword",
        {"input": {"currentPassword": "a cookie passphrase", "newPassword": "another cookie passphrase"}},
        token=payload["accessToken"],
    )
    changed = body["data"]["changePassword"]
    assert changed["userErrors"] == [] and changed["accessToken"]
    after = _session_of(cookies)
    body, _ = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=before)
    assert [e["code"] for e in body["data"]["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]
    body, _ = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=after)
    assert body["data"]["refreshToken"]["accessToken"]


async def test_only_a_preflighted_request_can_spend_the_cookie(router_url: str, client: httpx.AsyncClient) -> None:
    _, cookie = await _register(client, router_url)
    query = OPS["RefreshSession"].body
    # What a form or a no-cors fetch on another site could send: a simple content type, no custom header.
    r = await client.post(
        router_url,
        content=json.dumps({"query": query, "variables": {"input": {}}}),
        headers={"content-type": "text/plain", "cookie": cookie},
    )
    client.cookies.clear()
    assert r.status_code == 400 and "CSRF" in r.text and "set-cookie" not in r.headers
    # A GET cannot run a mutation, so cannot spend it either.
    r = await client.get(
        router_url,
        params={"query": query, "variables": '{"input":{}}'},
        headers={"cookie": cookie, "apollo-require-preflight": "1"},
    )
    client.cookies.clear()
    assert "set-cookie" not in r.headers and "accessToken" not in r.text
    # The cookie is still good: nothing above spent it.
    body, _ = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=cookie)
    assert body["data"]["refreshToken"]["accessToken"]


async def test_only_the_session_cookie_passes_and_only_as_a_plain_token(
    router_url: str, client: httpx.AsyncClient
) -> None:
    _, cookie = await _register(client, router_url)
    value = cookie.split("=", 1)[1]
    # A quoted value that would decode to a line break (a second header on the subgraph request) is
    # not a session cookie: it is not relayed, so there is no session.
    smuggled = f'{NAME}="{value}\\012x-injected: 1"'
    body, _ = await _send(client, router_url, "RefreshSession", {"input": {}}, cookie=smuggled)
    assert [e["code"] for e in body["data"]["refreshToken"]["userErrors"]] == ["INVALID_TOKEN"]
    # Among other cookies, the session cookie is found; queries are never answered with a cookie.
    body, cookies = await _send(
        client, router_url, "RefreshSession", {"input": {}}, cookie=f"theme=dark; {cookie}; a=b"
    )
    assert body["data"]["refreshToken"]["accessToken"] and len(cookies) == 1
    body, cookies = await _send(client, router_url, "Me", {}, token=body["data"]["refreshToken"]["accessToken"])
    assert body["data"]["me"] and cookies == []
