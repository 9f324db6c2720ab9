"""The compiled shaper (``Shaper.compiled``, made once per selection and type) answers exactly as
the general one (``_Ctx``, which walks the selection per response): same data, same errors, same
key order — and hands over to the general one for every response that needs an error (a null in
a non-null position, an enum value or ``__typename`` the schema lacks) or for fields
``@include``/``@skip`` decide, with or without subgraph errors already in the response."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from graphql import GraphQLObjectType, OperationDefinitionNode, build_schema, parse

from router.operation import build_operation
from router.response import _INVALID, Shaper, _Ctx

SCHEMA = build_schema("""
enum Color { RED GREEN }
interface Node { id: ID! }
type Book implements Node { id: ID! title: String color: Color author: Person! }
type Film implements Node { id: ID! minutes: Int! }
union Hit = Book | Film
type Person { id: ID! name: String! friends: [Person!] tags: [[String]] }
type Query { node: Node hits: [Hit] me: Person people: [Person]! color: Color! }
""")
QUERY = """
query Q($yes: Boolean = true, $no: Boolean = false) {
  color
  me { id name who: name friends { name } tags }
  people { ... on Person { id } name __typename }
  node { __typename id ... on Book { title color author { name } } ... on Film { minutes } }
  hits { ... on Book { id title } ... on Film { id minutes } }
  %s
}
"""
OK_DATA: dict[str, Any] = {
    "color": "RED",
    "me": {
        "id": "p1",
        "name": "Ann",
        "who": "Ann",
        "friends": [{"name": "Bo"}, {"name": "Cy"}],
        "tags": [["a", None], None],
    },
    "people": [{"id": "p2", "name": "Bo", "__typename": "Person"}, None],
    "node": {"__typename": "Book", "id": "b1", "title": None, "color": "GREEN", "author": {"name": "Ann"}},
    "hits": [{"__typename": "Film", "id": "f1", "minutes": 90}, None, {"__typename": "Book", "id": "b2"}],
}


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(OK_DATA)
    at: Any = data
    for k in path[:-1]:
        at = at[k]
    at[path[-1]] = value
    return data


CASES = {
    "plain": (OK_DATA, ""),
    "extra fields dropped": (_broken(["me", "email"], "x@y"), ""),
    "non-null leaf null": (_broken(["me", "friends", 1, "name"], None), ""),
    "non-null item null": (_broken(["me", "friends", 0], None), ""),
    "non-null root null": (_broken(["color"], None), ""),
    "non-null list null": (_broken(["people"], None), ""),
    "unknown enum value": (_broken(["node", "color"], "BLUE"), ""),
    "unknown typename": (_broken(["hits", 0, "__typename"], "Podcast"), ""),
    "missing typename": (_broken(["node", "__typename"], None), ""),
    "object not a dict": (_broken(["me"], "oops"), ""),
    "list not a list": (_broken(["hits"], {"x": 1}), ""),
    "non-null object field null": (_broken(["node", "author"], None), ""),
    "included": (OK_DATA, "again: me @include(if: $yes) { id } skipped: color @skip(if: $yes)"),
    "skipped first occurrence": (OK_DATA, "first: color @include(if: $no) me { id } first: color"),
}


def _general(shaper: Shaper, root: GraphQLObjectType, sels: Any, data: Any, errors: list[Any]) -> Any:
    r = _Ctx(shaper, {}, errors).obj(data, root, sels, None)
    return None if r is _INVALID or r is None else r


FAST = ("plain", "extra fields dropped", "object not a dict", "list not a list")  # no error: compiled only


@pytest.mark.parametrize("prior_error", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_compiled_shaping_matches_the_general_shaper(
    case: str, prior_error: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, extra = CASES[case]
    op = parse(QUERY % extra).definitions[0]
    assert isinstance(op, OperationDefinitionNode)
    sels = build_operation(op, {}).sels
    root = SCHEMA.query_type
    assert root is not None
    before = [{"message": "subgraph failed", "path": ["me", "friends", 1, "name"]}] if prior_error else []
    expected_errors = copy.deepcopy(before)
    expected = _general(Shaper(SCHEMA), root, sels, copy.deepcopy(data), expected_errors)
    shaper = Shaper(SCHEMA)
    if case in FAST:  # the general shaper is not used at all

        def unused(*_: Any) -> Any:
            raise AssertionError("shaped by _Ctx")

        monkeypatch.setattr(_Ctx, "obj", unused)
    for _ in range(2):  # compiled on the first response, reused on the second
        errors = copy.deepcopy(before)
        got = shaper.shape(root, sels, copy.deepcopy(data), {}, errors)
        assert json.dumps(got) == json.dumps(expected)  # key order included
        assert errors == expected_errors
    if not prior_error:  # (a null the subgraph's error explains gets no error of its own)
        assert (case in FAST) == (expected_errors == before), "every other case needs an error"
