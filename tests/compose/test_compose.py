"""router.compose against @apollo/composition (npm) on the same subgraph sets.

Valid sets: every directory under fixtures/ (except errors/) and, once present,
the product's own subgraph SDLs in schema/. Adding a set = adding a directory
of `<subgraph>.graphql` files. Invalid sets: fixtures/errors/<case>/ with an
expected.json naming the Apollo error code, subgraph, type and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import pytest
from graphql import DocumentNode, parse, print_ast

from router.compose import CompositionError, SubgraphSource, compose

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


class Oracle(Protocol):
    def compose(self, subgraphs: list[SubgraphSource]) -> dict[str, Any]: ...


def load_set(directory: Path) -> list[SubgraphSource]:
    """One subgraph per `<name>.graphql` file; the URL is derived from the name."""
    return [
        SubgraphSource(p.stem, f"http://{p.stem}.example/graphql", p.read_text())
        for p in sorted(directory.glob("*.graphql"))
    ]


def _valid_sets() -> list[Any]:
    sets: list[Any] = [
        pytest.param(d, id=d.name) for d in sorted(FIXTURES.iterdir()) if d.is_dir() and d.name != "errors"
    ]
    product = REPO / "schema"
    if any(p.name != "supergraph.graphql" for p in product.glob("*.graphql")):
        sets.append(pytest.param(product, id="product-schema"))
    return sets


def _load(directory: Path) -> list[SubgraphSource]:
    return [s for s in load_set(directory) if s.name != "supergraph"]


def normalise(sdl: str) -> dict[str, Any]:
    """Order-insensitive view of a supergraph: each definition printed on its own,
    keyed by name, with fields/values and directive applications sorted."""
    doc: DocumentNode = parse(sdl, no_location=True)
    out: dict[str, Any] = {}
    for d in doc.definitions:
        name = getattr(getattr(d, "name", None), "value", "schema")
        children = getattr(d, "fields", None) or getattr(d, "values", None) or ()
        out[name] = {
            "kind": d.kind,
            "directives": sorted(print_ast(x) for x in getattr(d, "directives", None) or ()),
            "children": {
                c.name.value: (
                    print_ast(getattr(c, "type", c.name)),
                    sorted(print_ast(a) for a in getattr(c, "arguments", None) or ()),
                    sorted(print_ast(x) for x in c.directives or ()),
                )
                for c in children
            },
            "text": print_ast(d) if not children else None,
        }
    return out


@pytest.mark.parametrize("directory", _valid_sets())
def test_supergraph_matches_apollo(directory: Path, oracle: Oracle) -> None:
    subgraphs = _load(directory)
    expected = oracle.compose(subgraphs)
    assert "supergraph" in expected, f"@apollo/composition rejected the set: {expected}"
    ours = compose(subgraphs)
    # Same schema (order-insensitive) first, for a readable diff when it is not ...
    assert normalise(ours) == normalise(expected["supergraph"])
    # ... and, since we print the way Apollo does, the very same text.
    assert ours == expected["supergraph"]


def _error_cases() -> list[Any]:
    return [pytest.param(d, id=d.name) for d in sorted((FIXTURES / "errors").iterdir()) if d.is_dir()]


@pytest.mark.parametrize("directory", _error_cases())
def test_invalid_set_fails_like_apollo(directory: Path, oracle: Oracle) -> None:
    want = json.loads((directory / "expected.json").read_text())
    subgraphs = _load(directory)
    theirs = oracle.compose(subgraphs)
    assert want["code"] in [e["code"] for e in theirs.get("errors", [])], theirs

    with pytest.raises(CompositionError) as info:
        compose(subgraphs)
    issue = next((i for i in info.value.issues if i.code == want["code"]), None)
    assert issue is not None, info.value.issues
    assert (want["subgraph"] in (issue.subgraph or "") and f'"{want["subgraph"]}' in issue.message) or (
        f"[{want['subgraph']}]" in issue.message
    ), issue
    assert issue.type_name == want["type"] and want["type"] in issue.message, issue
    if want["field"]:
        assert want["field"] in issue.message, issue


def test_same_error_message_as_apollo_for_field_type_mismatch(oracle: Oracle) -> None:
    subgraphs = _load(FIXTURES / "errors" / "field_type_mismatch")
    theirs = [e["message"] for e in oracle.compose(subgraphs)["errors"]]
    with pytest.raises(CompositionError) as info:
        compose(subgraphs)
    assert [i.message for i in info.value.issues] == theirs


def test_federation_1_subgraph_is_rejected_clearly() -> None:
    with pytest.raises(CompositionError) as info:
        compose([SubgraphSource("legacy", "http://legacy", "type Query { a: Int }")])
    assert info.value.issues[0].subgraph == "legacy"
    assert "Federation 2" in info.value.issues[0].message


def test_syntax_error_names_subgraph() -> None:
    with pytest.raises(CompositionError) as info:
        compose([SubgraphSource("broken", "http://broken", "type Query {")])
    assert info.value.issues[0].message.startswith("[broken]")
