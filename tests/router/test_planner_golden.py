"""Pure planner tests: checked-in supergraphs in, golden plans out (no servers).

Set SHOPGRAPH_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate
planner change (then read the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import parse, validate

from router.operation import build_operation
from router.plan import QueryPlan, stages_of
from router.planner import Planner, PlanningError, plan_document
from router.supergraph import Supergraph
from tests.router.fixtures.fed2 import SETS

GOLDEN = Path(__file__).parent / "golden"

CASES: dict[str, tuple[str, str]] = {
    # 1: the concrete type and implementation fields come from the owning subgraph
    "iface_typename": ("iface", "{ topMedia { __typename id ... on Book { pages } } }"),
    # 1: @requires on an interface object
    "iface_requires": ("iface", "{ topMedia { headline } }"),
    # 1: an interface object reached through another entity (Album), its
    # implementation's type from the interface's subgraph, a field of that
    # implementation extended by a fourth subgraph
    "indirect_through_entity": ("indirect", "{ albums { cover { note ... on Photo { exif } } } }"),
    # 1: a field an interface object adds, asked under an implementation's fragment
    "indirect_under_fragment": ("indirect", "{ assets { ... on Photo { note exif } ... on Clip { note } } }"),
    # 3: upc -> id through the "ids" subgraph, then pricing
    "hop_two_keys": ("hop", "{ products { name price } }"),
    # 3: one field required with two argument sets: two representations
    "hop_requires_args": ("hop", "{ products { tax eurTax } }"),
    # 3: @requires of a nested field served by a fourth subgraph
    "hop_requires_nested": ("hop", "{ products { freight } }"),
    # 2: a conditional fragment whose fields all come from another subgraph:
    # dropped from the first request (never an empty selection set), its
    # condition kept in the second
    "shelf_condition": ("shelf", "query($a: Boolean!) { items { ... on Magazine { ... @skip(if: $a) { price } } } }"),
    # 3: @requires with fragments on a union
    "hop_requires_fragments": ("hop", "{ products { label } }"),
    # 3: @requires both ways between two subgraphs (resolvable: no cycle)
    "hop_requires_both_ways": ("hop", "{ products { slug discount } }"),
    # 4: a shareable root field split across subgraphs
    "split_root": ("split", "{ catalog { title size } }"),
    # 8: runtime types common to every subgraph serving a shareable field
    "member_common_types": ("member", "{ search { ... on Apple { name } ... on Bean { name } } named { name } }"),
    # 10: @defer: the deferred fields get entity fetches of their own, after the primary part
    "hop_defer": ("hop", '{ products { name ... @defer(label: "money") { price tax } } }'),
    # 4: a shareable root field goes where the whole plan is cheapest (@provides)
    "root_cheapest": ("root", "{ users { name email } }"),
    # 4: a keyless type's field served elsewhere: jump at the parent entity
    "root_keyless": ("root", "{ users { profile { bio age } } }"),
    # 6: ID-like fields with conflicting types in one subgraph request
    "kinds_alias": ("kinds", "{ things { ... on Book { code } ... on Movie { code } } }"),
    # 3: a field reachable only through a 3-hop key chain (k1 -> k2 -> k3); its
    # @requires of a value type's fields fetched first (Apollo Gateway 2.14
    # fetches `dims` after the fetch needing it: a null)
    "chain_requires_value_type": ("chain", "{ items { deep area } }"),
    # @override of a field with @requires
    "chain_override_requires": ("chain", "{ items { score } }"),
    # @provides on a nested field: no fetch for `handle`; a composite key for `rating`
    "chain_provides_nested": ("chain", "{ picks { owner { handle rating } } }"),
    # 7: entity fetches there only for a field under a variable @include: each
    # (the 2-hop chain's second one too) in an Include node, run only when $a is
    "hop_condition_include": ("hop", "query($a: Boolean!) { products { name price @include(if: $a) } }"),
    # 7: @skip on a fragment; a field also asked unconditionally keeps its fetch bare
    "hop_condition_skip": (
        "hop",
        "query($s: Boolean!) { products { name ... @skip(if: $s) { price tax } slug } }",
    ),
    # 7: a constant condition needs no Condition node
    "hop_condition_constant": ("hop", "{ products { name price @include(if: true) } }"),
    # issue 19, family 1: an interface (Node) whose runtime type in the serving
    # subgraph is an interface object (Media): `... on Media` there, the concrete
    # type and Book's fields from the subgraph owning Media
    "nonres_abstract_interface_object": ("nonres", "{ nodes { id ... on Book { pages } ... on Media { title } } }"),
    # family 2: Shipment.tracking's subgraph has no resolvable key for Shipment:
    # jump at the parent Order and select shipment { tracking } there
    "parent_entity_jump": ("parent", "{ orders { number shipment { carrier tracking { status } } } }"),
    # family 5: @requires crossing back (calc's tax requires base's price, base's
    # total requires calc's tax), with arguments, and with a type condition on an
    # interface, given concrete type conditions in the representation
    "requires_cross_back": ("requires", "{ items { total trend receipt } }"),
    # family 6: a @shareable field of the interface object asked under an
    # implementation's fragment, taken in the fetch already there
    "sharediface_where_it_is": ("sharediface", "{ deals { ... on Watch { price strap } } }"),
}


def test_condition_node_json_is_apollos() -> None:
    plan = plan_document(_supergraph("hop"), CASES["hop_condition_skip"][1])
    seq = plan.to_json()["node"]
    conds = [m for n in seq["nodes"] for m in n.get("nodes", [n]) if m["kind"] == "Condition"]
    assert len(conds) == 1, seq
    for c in conds:
        assert c["condition"] == "s" and c["ifClause"] is None
        assert c["elseClause"]["kind"] in ("Flatten", "Condition")
    include = plan_document(_supergraph("hop"), CASES["hop_condition_include"][1]).to_json()["node"]
    first = next(n for n in include["nodes"] if n["kind"] == "Condition")
    assert first["condition"] == "a" and first["elseClause"] is None and first["ifClause"]["kind"] == "Flatten"


def _supergraph(name: str) -> Supergraph:
    return Supergraph((GOLDEN / f"{name}.supergraph.graphql").read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_plan(case: str) -> None:
    set_name, query = CASES[case]
    printed = str(plan_document(_supergraph(set_name), query)) + "\n"
    golden = GOLDEN / f"{case}.plan"
    if os.environ.get("SHOPGRAPH_UPDATE_GOLDEN") == "1":
        golden.write_text(printed)
    assert printed == golden.read_text()


def _valid(set_name: str, query: str) -> bool:
    return not validate(_supergraph(set_name).api_schema, parse(query))


@pytest.mark.parametrize(("set_name", "query"), [(n, q) for n, (_, ops) in SETS.items() for q in ops if _valid(n, q)])
def test_no_subgraph_request_has_an_empty_selection_set(set_name: str, query: str) -> None:
    plan = plan_document(_supergraph(set_name), query)
    for f in plan.fetches:
        assert "{}" not in f.operation.replace(" ", ""), f.operation
        # every declared variable is used (subgraphs refuse unused ones)
        for v in f.variable_usages:
            assert f.operation.count("$" + v) >= 2, f.operation


def test_requires_with_distinct_arguments_are_distinct_aliases() -> None:
    plan = plan_document(_supergraph("hop"), "{ products { tax eurTax } }")
    ops = " ".join(f.operation for f in plan.fetches)
    assert 'price(currency: "EUR")' in ops
    assert sum(f.service_name == "tax" for f in plan.fetches) == 2  # one value of `price` per representation


def test_no_subgraph_for_a_field_is_a_planning_error() -> None:
    # a join__field naming no graph: the field exists in the API schema, but
    # nothing serves it; the planner must refuse, not plan a silent null
    sdl = (GOLDEN / "kinds.supergraph.graphql").read_text()
    broken = sdl.replace("latest: Book @join__field(graph: BOOKS)", "latest: Book @join__field")
    assert broken != sdl
    with pytest.raises(PlanningError):
        plan_document(Supergraph(broken), "{ latest { id } }")


def test_unreachable_field_below_root_is_a_planning_error() -> None:
    sdl = (GOLDEN / "hop.supergraph.graphql").read_text()
    broken = sdl.replace(
        "weight: Int! @join__field(graph: PRICING) @join__field(graph: TAX, external: true)",
        "weight: Int! @join__field",
    )
    assert broken != sdl
    with pytest.raises(PlanningError):
        plan_document(Supergraph(broken), "{ products { weight } }")


def _services(plan: QueryPlan) -> list[str]:
    return [f.service_name for f in plan.fetches]


def test_percent_override_plans_one_variant_per_label_state() -> None:
    sg = _supergraph("override")
    op = build_operation(parse("{ products { price } }").definitions[0], {})  # type: ignore[arg-type]
    plan = Planner(sg).plan(op)
    assert plan.percent_labels == {"percent(50)": 50.0}
    assert plan.override_variants is not None
    assert _services(plan.override_variants[frozenset()]) == ["old"]
    assert _services(plan.override_variants[frozenset({"percent(50)"})]) == ["old", "new"]
    # a field without a label: one plan, no variants
    assert Planner(sg).plan(build_operation(parse("{ products { id } }").definitions[0], {})).override_variants is None  # type: ignore[arg-type]


def test_configured_override_label() -> None:
    sg = _supergraph("override")
    op = build_operation(parse("{ products { tier } }").definitions[0], {})  # type: ignore[arg-type]
    assert _services(Planner(sg).plan(op)) == ["old"]
    assert _services(Planner(sg, frozenset({"beta"})).plan(op)) == ["old", "new"]


def test_a_root_field_deferred_alone_leaves_no_empty_fetch_behind() -> None:
    """`{ a ... @defer { b } }` with b from another subgraph: b's subgraph is called once, in
    the deferred part, never with an empty selection set in the primary one."""
    sg = Supergraph((GOLDEN / "iface.supergraph.graphql").read_text())
    plan = plan_document(sg, "{ media { id } ... @defer { featured { id } } }")
    printed = str(plan)
    assert "{}" not in printed.replace(" ", "").replace("\n", ""), printed
    primary = [f.service_name for stage in plan.stages for f in stage]
    deferred = [f.service_name for d in plan.deferred for stage in stages_of(d.node) for f in stage]
    assert primary == ["products"] and deferred[0] == "ratings", printed
