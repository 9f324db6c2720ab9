"""Request errors from any subgraph carry the code Apollo's servers use, never a stack trace."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack
from subgraphs.kit.config import SUBGRAPHS

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "syntax": ({"query": "{ __typename "}, "GRAPHQL_PARSE_FAILED"),
    "unknown-field": ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    "bad-variable": (
        {"query": "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }", "variables": {}},
        "BAD_USER_INPUT",
    ),
}


@pytest.mark.parametrize("subgraph", SUBGRAPHS)
@pytest.mark.parametrize("case", sorted(CASES))
async def test_request_errors_have_codes(
    stack: ThreadedStack, client: httpx.AsyncClient, subgraph: str, case: str
) -> None:
    body, code = CASES[case]
    response = await client.post(stack.url(subgraph), json=body)
    assert response.status_code in (200, 400)
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code], errors
    assert "Traceback" not in response.text
