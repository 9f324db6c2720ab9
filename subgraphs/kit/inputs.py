"""Helpers for mutation inputs shared by every subgraph."""

from __future__ import annotations

from typing import Any

import strawberry


def camel(snake: str) -> str:
    """Python field name → the GraphQL name a client sees (for userError paths)."""
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def sent_fields(input: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The input fields the client actually sent: UNSET ones are left out (partial updates)."""
    return {n: getattr(input, n) for n in names if getattr(input, n) is not strawberry.UNSET}


def contains_nul(value: object) -> bool:
    """True if a NUL character hides anywhere in a (JSON-like) value: PostgreSQL text cannot hold one."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_nul(v) for v in value)
    return False
