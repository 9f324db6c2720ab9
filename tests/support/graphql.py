"""Calling a GraphQL endpoint from tests: one POST, the whole JSON response back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


def _request(
    query: str, variables: Mapping[str, Any] | None, token: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = dict(variables)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return body, headers


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        raise AssertionError(f"HTTP {response.status_code}, not JSON: {response.text[:500]}") from None
    assert isinstance(payload, dict), payload
    return payload


async def gql(
    url: str,
    query: str,
    variables: Mapping[str, Any] | None = None,
    token: str | None = None,
    *,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """POST ``query`` to ``url``; return the full response (``data``, ``errors``), whatever the status."""
    body, headers = _request(query, variables, token)
    if client is not None:
        return _json(await client.post(url, json=body, headers=headers))
    async with httpx.AsyncClient(timeout=30) as own:
        return _json(await own.post(url, json=body, headers=headers))


def gql_sync(
    url: str,
    query: str,
    variables: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """``gql`` for synchronous tests."""
    body, headers = _request(query, variables, token)
    return _json(httpx.post(url, json=body, headers=headers, timeout=30))
