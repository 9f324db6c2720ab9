"""Compose Federation 2 subgraph SDLs into an Apollo supergraph SDL.

The output matches what `@apollo/composition` 2.x prints for the same subgraphs
(`@link`ed core/join specs, `join__*` directives); tests/compose checks that
against the npm package itself. The rules live in router/composition/.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.composition.issues import CompositionError, CompositionIssue
from router.composition.merge import Merger
from router.composition.printer import print_supergraph
from router.composition.subgraph import Subgraph, SubgraphParseError, parse_subgraph
from router.composition.validate import validate_subgraph

__all__ = ["CompositionError", "CompositionIssue", "SubgraphSource", "compose"]


@dataclass(frozen=True)
class SubgraphSource:
    name: str
    url: str
    sdl: str


def compose(subgraphs: list[SubgraphSource]) -> str:
    """Return the supergraph SDL, or raise CompositionError listing every problem found."""
    issues: list[CompositionIssue] = []
    parsed: list[Subgraph] = []
    seen: set[str] = set()
    for src in subgraphs:
        if src.name in seen:
            issues.append(
                CompositionIssue("INVALID_SUBGRAPH_NAME", f'A subgraph named "{src.name}" is listed twice', src.name)
            )
            continue
        seen.add(src.name)
        try:
            sub = parse_subgraph(src.name, src.url, src.sdl)
        except SubgraphParseError as e:
            issues.append(CompositionIssue(e.code, e.message, src.name))
            continue
        issues += validate_subgraph(sub)
        parsed.append(sub)
    if not parsed and not issues:
        issues.append(CompositionIssue("NO_QUERIES", "No subgraphs to compose"))
    if issues:
        raise CompositionError(issues)
    merger = Merger(parsed)
    supergraph = merger.merge()
    if merger.issues:
        raise CompositionError(merger.issues)
    return print_supergraph(supergraph)
