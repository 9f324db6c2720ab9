"""Expected client errors are logged once at INFO without a traceback; an unexpected error
once at ERROR with its traceback; every line is JSON with the request's id."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
import strawberry

from deploy.logs import JsonFormatter
from subgraphs.kit.errors import bad_input, forbidden
from subgraphs.kit.schema import federated_schema


@strawberry.type
class Query:
    @strawberry.field
    def secret(self) -> str:
        raise forbidden("Administrators only.")

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("the database said something private")

    @strawberry.field
    def picky(self, n: int) -> int:
        raise bad_input(f"{n} is not a nice number.")


schema = federated_schema(query=Query)


def _logged(query: str) -> list[dict[str, Any]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        result = schema.execute_sync(query)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert result.errors
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("query", "code"),
    [("query Secret { secret }", "FORBIDDEN"), ("query Picky { picky(n: 3) }", "BAD_USER_INPUT")],
)
def test_an_expected_client_error_is_one_info_line_without_a_traceback(query: str, code: str) -> None:
    logged = _logged(query)
    assert [(line["level"], line["logger"], line.get("code")) for line in logged] == [
        ("INFO", "shopgraph.requests", code)
    ]
    assert "exception" not in logged[0]
    assert logged[0]["operation"] == query.split()[1]


def test_a_validation_error_is_logged_at_info_too() -> None:
    logged = _logged("{ nosuchfield }")
    assert [(line["level"], line.get("code")) for line in logged] == [("INFO", "GRAPHQL_VALIDATION_FAILED")]


def test_an_unexpected_error_is_one_error_line_with_its_traceback_and_hidden_from_the_client() -> None:
    result = schema.execute_sync("{ broken }")
    assert result.errors and result.errors[0].message == "Internal server error."
    logged = _logged("{ broken }")
    assert [line["level"] for line in logged] == ["ERROR"]
    assert "RuntimeError: the database said something private" in logged[0]["exception"]
