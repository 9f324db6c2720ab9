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
