"""Parser limits: what a document may cost before the router does any work on it.

:func:`parse_limited` stops the parser after ``max_tokens`` tokens (a megabyte
of repeated directives is refused after reading a few kilobytes), then
:func:`check_shape` measures depth, aliases and fields of every operation with
its fragments expanded, before validation or planning can be asked to do
anything expensive. Validation's overlapping-fields rule compares every pair of
fields sharing a response key in a selection set (1,000 copies of one field take
~0.4 s), so a key may appear at most :data:`MAX_SAME_KEY` times in one.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)

from router.errors import RouterError, error

MAX_SAME_KEY = 20


@dataclass(frozen=True)
class Limits:
    max_tokens: int
    max_depth: int
    max_aliases: int
    max_fields: int


def parse_limited(text: str, limits: Limits) -> DocumentNode:
    try:
        return parse(text, max_tokens=limits.max_tokens)
    except GraphQLError as e:
        locations = [{"line": loc.line, "column": loc.column} for loc in e.locations or ()]
        extra = {"locations": locations} if locations else {}
        raise RouterError([{**error(e.message, "GRAPHQL_PARSE_FAILED"), **extra}]) from e


def check_shape(doc: DocumentNode, limits: Limits) -> None:
    """Depth, aliases and fields of each operation, fragments expanded.

    Each fragment is measured once and its figures reused wherever it is spread:
    a fragment spread twice, whose fragment spreads the next one twice, and so on,
    would otherwise take exponential time to walk. A fragment cycle (which
    validation refuses afterwards) counts as empty here.
    """
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    measured: dict[str, tuple[int, int, int]] = {}
    walking: set[str] = set()

    def repeats(ss: SelectionSetNode, seen: dict[str, int]) -> None:
        for s in ss.selections:
            if isinstance(s, FieldNode):
                key = (s.alias or s.name).value
                seen[key] = n = seen.get(key, 0) + 1
                if n > MAX_SAME_KEY:
                    _refuse(
                        f"Field '{key}' is selected more than {MAX_SAME_KEY} times in one selection set.", "REPEATS"
                    )
            elif isinstance(s, InlineFragmentNode):
                repeats(s.selection_set, seen)

    def measure(ss: SelectionSetNode | None) -> tuple[int, int, int]:  # (fields, depth, aliases)
        fields = depth = aliases = 0
        if ss is not None:
            repeats(ss, {})
        for s in ss.selections if ss is not None else ():
            if isinstance(s, FieldNode):
                f, d, a = measure(s.selection_set)
                fields, aliases = fields + 1 + f, aliases + a + (s.alias is not None)
                if s.selection_set is not None:
                    depth = max(depth, d + 1)
                continue
            if isinstance(s, InlineFragmentNode):
                f, d, a = measure(s.selection_set)
            elif isinstance(s, FragmentSpreadNode):
                name = s.name.value
                if name not in measured:
                    frag = frags.get(name)
                    if frag is None or name in walking:
                        measured[name] = (0, 0, 0)
                    else:
                        walking.add(name)
                        measured[name] = measure(frag.selection_set)
                        walking.discard(name)
                f, d, a = measured[name]
            else:
                continue
            fields, depth, aliases = fields + f, max(depth, d), aliases + a
        return fields, depth, aliases

    for op in doc.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        fields, depth, aliases = measure(op.selection_set)
        if depth > limits.max_depth:
            _refuse(f"Query depth {depth} exceeds the maximum of {limits.max_depth}.", "MAX_DEPTH_LIMIT")
        if aliases > limits.max_aliases:
            _refuse(f"Query uses {aliases} aliases; the maximum is {limits.max_aliases}.", "MAX_ALIASES_LIMIT")
        if fields > limits.max_fields:
            _refuse(
                f"Query selects {fields} fields once its fragments are expanded; the maximum is {limits.max_fields}.",
                "MAX_FIELDS_LIMIT",
            )


def _refuse(message: str, limit: str) -> None:
    raise RouterError([error(message, "GRAPHQL_VALIDATION_FAILED", limit=limit)])
