"""Documents validated once and cache policies memoised, both by the document's identity
(``kit.schema.ValidatedOnce``, ``kit.cache_control.CachePolicies``): the same answers as validating
and computing afresh, for the same document and for different ones."""

from __future__ import annotations

import strawberry
from graphql import parse

from subgraphs.catalog.schema import CACHE_HINTS
from subgraphs.catalog.schema import schema as catalog
from subgraphs.kit.cache_control import CachePolicies
from subgraphs.kit.schema import ValidatedOnce, federated_schema


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str = "you") -> str:
        return f"hello {name}"


schema = federated_schema(query=Query)


def test_a_valid_document_runs_every_time() -> None:
    for _ in range(3):
        result = schema.execute_sync('{ hello(name: "a") }')
        assert result.errors is None and result.data == {"hello": "hello a"}


def test_an_invalid_document_is_refused_every_time_with_its_errors() -> None:
    for _ in range(3):
        result = schema.execute_sync("{ hello nope }")
        assert result.data is None
        assert [e.message for e in result.errors or []] == ["Cannot query field 'nope' on type 'Query'."]
    assert schema.execute_sync("{ hello }").data == {"hello": "hello you"}  # its neighbour unaffected


def test_the_memo_is_bounded() -> None:
    for i in range(ValidatedOnce.MAX_ENTRIES + 10):
        assert schema.execute_sync(f'{{ hello(name: "{i}") }}').errors is None
    assert len(ValidatedOnce._memo) <= ValidatedOnce.MAX_ENTRIES


def test_cache_policies_by_identity_match_a_fresh_computation() -> None:
    memo = CachePolicies(CACHE_HINTS)
    listing = parse("{ products(first: 3) { edges { node { name } } } }")
    single = parse('{ product(id: "x") { name } }')
    for _ in range(2):
        assert memo.of(catalog._schema, listing, None).header == "max-age=600, public"
        assert memo.of(catalog._schema, single, None).header == "no-store"
    # An equal document parsed again (another object) gets the same policy.
    again = parse("{ products(first: 3) { edges { node { name } } } }")
    assert memo.of(catalog._schema, again, None) == memo.of(catalog._schema, listing, None)
