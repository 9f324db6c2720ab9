"""Errors reported by composition, with the codes `@apollo/composition` uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompositionIssue:
    code: str
    message: str
    subgraph: str | None = None
    type_name: str | None = None
    field_name: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class CompositionError(Exception):
    def __init__(self, issues: list[CompositionIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def subgraph_list(names: list[str]) -> str:
    """Apollo's `printSubgraphNames`: 'subgraph "a"' / 'subgraphs "a", "b" and "c"'."""
    quoted = [f'"{n}"' for n in names]
    if len(quoted) == 1:
        return f"subgraph {quoted[0]}"
    return "subgraphs " + ", ".join(quoted[:-1]) + " and " + quoted[-1]
