"""router/authorization.py's pure parts: what the supergraph asks, what a caller fails, how an
operation is pruned; and the request span's attributes (telemetry.note_authorization)."""

from __future__ import annotations

from collections import Counter

from graphql import parse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router import telemetry
from router.auth import Identity
from router.authorization import AccessRules, Authorizer, prune, requirements_of
from router.compose import SubgraphSource, compose
from router.operation import Field, Frag, build_operation
from router.supergraph import Supergraph

SDL = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.6",
  import: ["@key", "@authenticated", "@requiresScopes", "@policy"])
type Query { a: A @authenticated b: [B!]! }
type A { x: Int y: Int! @requiresScopes(scopes: [["s1", "s2"], ["s3"]]) }
type B @key(fields: "id") { id: ID! c: C p: Int @policy(policies: [["p1"]]) }
type C @requiresScopes(scopes: [["c"]]) { v: Int }
"""
RULES = AccessRules(Supergraph(compose([SubgraphSource("g", "http://g.example/graphql", SDL)])))


def _op(text: str) -> list[Field | Frag]:
    node = parse(text).definitions[0]
    return build_operation(node, {}).sels  # type: ignore[arg-type]


def test_requirements_come_from_fields_types_and_fragments() -> None:
    auth = ("authenticated", ())
    y = ("requiresScopes", (("s1", "s2"), ("s3",)))
    c = ("requiresScopes", (("c",),))
    p = ("policy", (("p1",),))
    assert RULES.field("Query", "a") == {auth}
    assert RULES.field("A", "y") == {y}
    assert RULES.field("B", "c") == {c}  # the type it returns
    assert RULES.field("C", "v") == {c}  # a field of a guarded type
    assert requirements_of(RULES, _op("{ a { x y } b { id c { v } p } }"), "Query") == {auth, y, c, p}
    assert requirements_of(RULES, _op("{ b { id __typename } }"), "Query") == frozenset()


async def test_a_caller_fails_what_its_token_does_not_grant() -> None:
    required = requirements_of(RULES, _op("{ a { y } b { c { v } p } }"), "Query")
    authorizer = Authorizer(lambda _i, wanted: {"p1"} & wanted)
    anonymous = await authorizer.failed(required, None)
    assert {k for k, _ in anonymous} == {"authenticated", "requiresScopes"}
    only_s1 = Identity("u", "CUSTOMER", scopes=frozenset({"s1", "c"}))
    assert await authorizer.failed(required, only_s1) == {("requiresScopes", (("s1", "s2"), ("s3",)))}
    both = Identity("u", "CUSTOMER", scopes=frozenset({"s1", "s2", "c"}))
    assert await authorizer.failed(required, both) == frozenset()
    assert await authorizer.failed(required, Identity("u", "CUSTOMER", scopes=frozenset({"s3", "c"}))) == set()


def test_pruning_keeps_what_is_allowed_and_marks_the_rest() -> None:
    sels = _op("{ a { x y } b { c { v } id } }")
    failed = RULES.field("A", "y") | RULES.field("B", "c")
    cut = prune(RULES, sels, "Query", failed)
    planned_a = cut.planned[0]
    assert isinstance(planned_a, Field) and [getattr(s, "key", None) for s in planned_a.sels or ()] == ["x"]
    shaped_a = cut.shaped[0]
    assert isinstance(shaped_a, Field) and [
        (getattr(s, "key", None), getattr(s, "denied", None)) for s in shaped_a.sels or ()
    ] == [
        ("x", False),
        ("y", True),
    ]
    assert [d.path for d in cut.denials] == [("a", "y"), ("b", "c")]
    # everything a field selects refused: the field is refused itself
    cut = prune(RULES, _op("{ a { y } }"), "Query", failed)
    assert cut.planned == [] and [d.path for d in cut.denials] == [("a",)]


def test_the_request_span_names_what_was_refused() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("POST /graphql"):
        telemetry.note_authorization(
            ["Query.a", "A.y", "A.y"], Counter({"authenticated": 1, "requiresScopes": 2}), False
        )
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["shopgraph.authorization.refused"] == ("A.y", "Query.a")
    assert span.attributes["shopgraph.authorization.directives"] == ("authenticated", "requiresScopes")
    assert span.attributes["shopgraph.authorization.action"] == "null"
