"""Issue 18, finding 16: refresh-token reuse revokes the access tokens minted from the family too.

Attack (black box, through the router): a thief spends a stolen refresh token
first and gets an access token; the victim's client then replays the same
refresh token (reuse detected, the family revoked). Before the fix the thief's
access token kept working through the router for up to 15 minutes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack
from tests.integration.helpers import REFRESH, register

pytestmark = pytest.mark.asyncio(loop_scope="session")

ME = "{ me { id } }"


async def _me(client: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    return await client.post(url, json={"query": ME}, headers={"Authorization": f"Bearer {token}"})


async def _refresh(client: httpx.AsyncClient, url: str, token: str) -> dict[str, Any]:
    r = await client.post(url, json={"query": REFRESH, "variables": {"input": {"refreshToken": token}}})
    assert r.status_code == 200, r.text
    payload: dict[str, Any] = r.json()["data"]["refreshToken"]
    return payload


async def test_reuse_revokes_the_thiefs_access_token(stack: ThreadedStack, router_url: str) -> None:
    victim = await register(stack)
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        stolen = await _refresh(client, router_url, victim.refresh_token)  # the thief is first
        thief_token = str(stolen["accessToken"])
        assert (await _me(client, router_url, thief_token)).json()["data"]["me"]["id"] == victim.id
        reused = await _refresh(client, router_url, victim.refresh_token)  # the victim's client, later
        assert [e["code"] for e in reused["userErrors"]] == ["TOKEN_REUSED"]
        for token in (thief_token, victim.access_token):
            r = await _me(client, router_url, token)
            body = r.json()
            assert r.status_code == 401 or body.get("data", {}).get("me") is None, body
            assert "UNAUTHENTICATED" in r.text, body
        # The thief's refresh token is dead as well.
        again = await _refresh(client, router_url, str(stolen["refreshToken"]))
        assert [e["code"] for e in again["userErrors"]] == ["INVALID_TOKEN"]
