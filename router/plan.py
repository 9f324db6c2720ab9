"""The query plan as plain frozen data, printable in Apollo's query-plan notation.

A plan holds everything the executor needs — per fetch the subgraph, the
operation text and kind, the variables it uses, and for entity fetches how to
build representations from data already fetched — so the executor infers
nothing from operation text. The planner's working state stays in planner.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from graphql import parse, print_ast

from router.operation import Field, Frag, Sel


@dataclass(frozen=True)
class Representation:
    """How to build one representation from an object of some type in the data."""

    typename: str  # the __typename sent (an interface object's name, for those)
    selection: tuple[Sel, ...]  # fields read from the data (keys, @requires)


@dataclass(frozen=True)
class Rename:
    """An internal alias (`code__alias_0`) given back its response key."""

    path: tuple[str, ...]  # below the fetch's own path; "@" = each list item
    typename: str
    alias: str
    key: str


@dataclass(frozen=True)
class Fetch:
    graph: str  # join__Graph enum value
    service_name: str
    operation: str
    kind: str  # query | mutation | subscription
    variable_usages: frozenset[str]
    entity: bool = False  # an `_entities` fetch fed with representations
    # where its results merge (also the enclosing Flatten's path): () for root
    # fetches; response keys, "@" = each list item
    path: tuple[str, ...] = ()
    # typename found in the data -> its representation (entity fetches only)
    representations: Mapping[str, Representation] | None = None
    renames: tuple[Rename, ...] = ()
    # variable @include/@skip conditions, (is_include, variable), that all of
    # its selections sit under: when one fails the fetch is not made at all
    conditions: tuple[tuple[bool, str], ...] = ()

    # names kept for the subscription transport, which reads the root fetch
    @property
    def query(self) -> str:
        return self.operation

    @property
    def variables(self) -> frozenset[str]:
        return self.variable_usages


@dataclass(frozen=True)
class Flatten:
    """Run `node` for every object at `path` (response keys; "@" = list items)."""

    path: tuple[str, ...]
    node: Fetch


@dataclass(frozen=True)
class Condition:
    """Run `node` only when `$variable` is true (`Include`) or false (`Skip`)."""

    variable: str
    include: bool
    node: Fetch | Flatten | Condition


Leaf = Fetch | Flatten | Condition


@dataclass(frozen=True)
class Parallel:
    """Branches that wait for nothing from each other: run at once."""

    nodes: tuple[Leaf | Sequence, ...]


@dataclass(frozen=True)
class Sequence:
    """Steps run one after another: each waits for the data of those before it."""

    nodes: tuple[Leaf | Parallel, ...]


SeqMember = Leaf | Parallel


def as_sequence(node: Leaf | Sequence | Parallel) -> Sequence:
    return node if isinstance(node, Sequence) else Sequence((node,))


@dataclass(frozen=True)
class Deferred:
    """A `@defer`red fragment: run after the primary part, delivered on its own."""

    label: str | None
    path: tuple[str, ...]  # response keys of the objects it completes; "@" = list items
    type_condition: str  # their type (the fragment applies to it)
    selection: tuple[Sel, ...]  # the fragment's selections, for shaping its payloads
    node: Sequence


PlanNode = Fetch | Flatten | Condition | Parallel | Sequence


@dataclass(frozen=True)
class QueryPlan:
    kind: str
    node: Sequence | None
    # interfaces some subgraph serves as @interfaceObject: a __typename naming
    # one is provisional, replaced by the concrete type when that arrives
    interface_objects: frozenset[str] = frozenset()
    # progressive @override: the plan for each set of `percent(N)` labels on
    # (this plan itself is the one with all of them off), and their shares
    override_variants: Mapping[frozenset[str], QueryPlan] | None = None
    percent_labels: Mapping[str, float] | None = None
    # @defer: parts run (and delivered, by incremental transports) after `node`
    deferred: tuple[Deferred, ...] = ()

    def for_request(self, rng: random.Random) -> QueryPlan:
        """The variant this request runs: each percent label on with its share."""
        if not self.override_variants or not self.percent_labels:
            return self
        on = frozenset(lb for lb, pct in self.percent_labels.items() if rng.random() * 100 < pct)
        return self.override_variants[on]

    @cached_property
    def stages(self) -> list[list[Fetch]]:
        """The primary part's fetches as a sequence of parallel stages."""
        return stages_of(self.node)

    @property
    def fetches(self) -> list[Fetch]:
        """Every fetch, deferred ones included."""
        out = [f for stage in self.stages for f in stage]
        for d in self.deferred:
            out.extend(f for stage in stages_of(d.node) for f in stage)
        return out

    def to_json(self) -> dict[str, Any]:
        """Apollo's JSON form of a plan (as in its `apolloQueryPlan.object`)."""
        out: dict[str, Any] = {"kind": "QueryPlan"}
        primary = _json(_single(self.node)) if self.node is not None else None
        if self.deferred:
            out["node"] = {
                "kind": "Defer",
                "primary": {"node": primary} if primary else {},
                "deferred": [
                    {
                        "depends": [],
                        "label": d.label,
                        "queryPath": list(d.path),
                        "node": _json(_single(d.node)),
                    }
                    for d in self.deferred
                ],
            }
        elif primary is not None:
            out["node"] = primary
        return out

    def __str__(self) -> str:
        lines = ["QueryPlan {"]
        if self.deferred:
            lines.append("  Defer {")
            lines.append("    Primary {")
            if self.node is not None:
                lines.extend(_print(_single(self.node), 3))
            lines.append("    }, [")
            for d in self.deferred:
                label = f', label: "{d.label}"' if d.label else ""
                lines.append(f'      Deferred(depends: [], path: "{"/".join(d.path)}"{label}) {{')
                lines.extend(_print(_single(d.node), 4))
                lines.append("      },")
            lines.append("    ]")
            lines.append("  },")
        elif self.node is not None:
            lines.extend(_print(_single(self.node), 1))
        lines.append("}")
        return "\n".join(lines)


def stages_of(node: Sequence | None) -> list[list[Fetch]]:
    """The fetches of a plan tree by depth: stage k holds those with k steps before them
    in their branch (what runs at once when every branch moves in step)."""
    return _levels(node) if node is not None else []


def _levels(node: PlanNode) -> list[list[Fetch]]:
    if isinstance(node, Sequence):
        return [stage for n in node.nodes for stage in _levels(n)]
    if isinstance(node, Parallel):
        out: list[list[Fetch]] = []
        for n in node.nodes:
            for i, stage in enumerate(_levels(n)):
                if i == len(out):
                    out.append([])
                out[i].extend(stage)
        return out
    return [[fetch_of(node)]]


def fetch_of(node: Leaf) -> Fetch:
    while isinstance(node, Condition):
        node = node.node
    return node if isinstance(node, Fetch) else node.node


def _single(node: Sequence) -> PlanNode:
    return node.nodes[0] if len(node.nodes) == 1 else node


EXPOSE_PLAN_HEADER = "apollo-expose-query-plan"


def plan_extension(plan: QueryPlan) -> dict[str, Any]:
    """The response extension carrying the plan, as Apollo's router returns it
    when configured to and asked by the `Apollo-Expose-Query-Plan: true` header."""
    return {"apolloQueryPlan": {"object": plan.to_json(), "text": str(plan)}}


def _json(node: PlanNode) -> dict[str, Any]:
    if isinstance(node, (Sequence, Parallel)):
        return {"kind": type(node).__name__, "nodes": [_json(n) for n in node.nodes]}
    if isinstance(node, Flatten):
        return {"kind": "Flatten", "path": list(node.path), "node": _json(node.node)}
    if isinstance(node, Condition):
        clause = _json(node.node)
        return {
            "kind": "Condition",
            "condition": node.variable,
            "ifClause": clause if node.include else None,
            "elseClause": None if node.include else clause,
        }
    out: dict[str, Any] = {
        "kind": "Fetch",
        "serviceName": node.service_name,
        "variableUsages": sorted(node.variable_usages),
        "operation": node.operation,
        "operationKind": node.kind,
    }
    if node.representations:
        out["requires"] = [
            {"kind": "InlineFragment", "typeCondition": rep.typename, "selections": _json_sels(rep.selection)}
            for rep in {(r.typename, _sels(r.selection)): r for r in node.representations.values()}.values()
        ]
    return out


def _json_sels(sels: tuple[Sel, ...] | list[Sel]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in sels:
        if isinstance(s, Field):
            f: dict[str, Any] = {"kind": "Field", "name": s.name}
            if s.sels is not None:
                f["selections"] = _json_sels(s.sels)
            out.append(f)
        else:
            out.append({"kind": "InlineFragment", "typeCondition": s.type_cond, "selections": _json_sels(s.sels)})
    return out


# ---- printing (Apollo's notation) ----------------------------------------------
def _print(node: PlanNode, depth: int) -> Iterator[str]:
    pad = "  " * depth
    if isinstance(node, (Sequence, Parallel)):
        yield f"{pad}{type(node).__name__} {{"
        for child in node.nodes:
            yield from _print(child, depth + 1)
        yield f"{pad}}},"
    elif isinstance(node, Flatten):
        yield f'{pad}Flatten(path: "{".".join(node.path)}") {{'
        yield from _print(node.node, depth + 1)
        yield f"{pad}}},"
    elif isinstance(node, Condition):
        yield f"{pad}{'Include' if node.include else 'Skip'}(if: ${node.variable}) {{"
        yield from _print(node.node, depth + 1)
        yield f"{pad}}},"
    else:
        yield f'{pad}Fetch(service: "{node.service_name}") {{'
        inner = "  " * (depth + 1)
        if node.entity and node.representations:
            reqs = _print_requires(node.representations)
            yield from (inner + line for line in reqs)
            yield f"{inner}}} =>"
        body = print_ast(parse(node.operation, no_location=True))
        yield from (inner + line for line in body.splitlines())
        yield f"{pad}}},"


def _print_requires(reps: Mapping[str, Representation]) -> list[str]:
    lines = ["{"]
    seen: set[str] = set()
    for rep in reps.values():
        text = _sels(rep.selection)
        if (rep.typename, text) in seen:  # type: ignore[comparison-overlap]
            continue
        seen.add((rep.typename, text))  # type: ignore[arg-type]
        lines.append(f"  ... on {rep.typename} {{{text}}}")
    return lines


def _sels(sels: tuple[Sel, ...] | list[Sel]) -> str:
    out: list[str] = []
    for s in sels:
        if isinstance(s, Field):
            out.append(s.name + s.args + ("{" + _sels(s.sels) + "}" if s.sels is not None else ""))
        elif isinstance(s, Frag):
            on = f"... on {s.type_cond} " if s.type_cond else "... "
            out.append(on + "{" + _sels(s.sels) + "}")
    return " " + " ".join(out) + " "


def objects_only(value: Any, path: tuple[str, ...]) -> list[dict[str, Any]]:
    """The objects ``objects_at`` finds, in the same order, without their paths (the executor's
    hot path: paths are wanted only for errors)."""
    level = [value]
    for seg in path:
        if seg == "@":
            level = [x for v in level if type(v) is list for x in v]
        else:
            level = [v.get(seg) for v in level if type(v) is dict]
    return [v for v in level if type(v) is dict]


def objects_at(value: Any, path: tuple[str, ...]) -> list[tuple[dict[str, Any], list[str | int]]]:
    """The objects a plan path (``"@"`` for each list level) reaches in response data, with
    their response paths: where a Flatten merges its fetch, where a deferred part lands."""
    out: list[tuple[dict[str, Any], list[str | int]]] = []

    def walk(v: Any, i: int, cur: list[str | int]) -> None:
        if v is None:
            return
        if i == len(path):
            if isinstance(v, dict):
                out.append((v, cur))
            return
        seg = path[i]
        if seg == "@":
            if isinstance(v, list):
                for j, item in enumerate(v):
                    walk(item, i + 1, [*cur, j])
        elif isinstance(v, dict):
            walk(v.get(seg), i + 1, [*cur, seg])

    walk(value, 0, [])
    return out
