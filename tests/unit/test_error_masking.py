"""What a subgraph lets through of an error, and what it hides (kit.schema / kit.errors)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
import strawberry
from strawberry.types import ExecutionResult

from subgraphs.kit.errors import forbidden
from subgraphs.kit.schema import federated_schema


@strawberry.type
class Query:
    @strawberry.field
    def boom(self) -> int:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    @strawberry.field
    def denied(self) -> int:
        raise forbidden()

    @strawberry.field
    def double(self, n: int) -> int:
        return 2 * n


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def explode(self) -> AsyncGenerator[int, None]:
        raise RuntimeError("password=hunter2 at db.internal:5432")
        yield 0  # pragma: no cover

    @strawberry.subscription
    async def refuse(self) -> AsyncGenerator[int, None]:
        raise forbidden()
        yield 0  # pragma: no cover


schema = federated_schema(query=Query, subscription=Subscription)


def codes(result: ExecutionResult) -> list[Any]:
    return [(e.extensions or {}).get("code") for e in result.errors or []]


async def test_an_unexpected_resolver_error_is_masked() -> None:
    result = await schema.execute("{ boom }")
    assert codes(result) == ["INTERNAL_SERVER_ERROR"]
    assert "hunter2" not in str(result.errors)


async def test_an_api_error_keeps_its_message_and_code() -> None:
    result = await schema.execute("{ denied }")
    assert codes(result) == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ double(n: 1", None, "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int!) { double(n: $n) }", {"n": "x"}, "BAD_USER_INPUT"),
        ("query($n: Int!) { double(n: $n) }", {}, "BAD_USER_INPUT"),
    ],
)
async def test_request_errors_are_shown_with_their_code(
    query: str, variables: dict[str, Any] | None, code: str
) -> None:
    result = await schema.execute(query, variable_values=variables)
    assert codes(result) == [code]
    assert result.errors and result.errors[0].message != "Internal server error."


async def _first(query: str) -> ExecutionResult:
    stream = await schema.subscribe(query)
    if isinstance(stream, ExecutionResult):  # refused before it started
        return stream
    async for result in stream:
        return result
    raise AssertionError("no result")


async def test_an_unexpected_error_in_a_subscription_is_masked() -> None:
    result = await _first("subscription { explode }")
    assert codes(result) == ["INTERNAL_SERVER_ERROR"]
    assert "hunter2" not in str(result.errors)


async def test_an_api_error_in_a_subscription_keeps_its_code() -> None:
    result = await _first("subscription { refuse }")
    assert codes(result) == ["FORBIDDEN"]
