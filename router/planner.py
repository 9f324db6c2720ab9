"""Operation -> query plan (router/plan.py).

The supergraph is read as a query graph: a node per type per subgraph, edges
for fields a subgraph serves, for key jumps between subgraphs (an `_entities`
fetch, possible where the target has a resolvable key whose fields the source
can give), for @requires (fields of the representation), @provides (fields
local below a field) and interface-object casts (the concrete type and the
implementations' fields from a subgraph owning the interface).

Paths are extended one field at a time: a field stays in the subgraph already
fetching its parent when it can (fewest fetches); otherwise it jumps to the
subgraph reachable through the fewest key hops (breadth-first over subgraphs,
cached per type; a key the source lacks is fetched on the way), grouping every
field needing the same jump at the same path into one fetch. Keys and
@requires are planned as fields of the source, so they may need jumps of their
own, which the jumped-to fetch then waits for. A field of a type without a key
jumps at its nearest entity ancestor (or, for a shareable root field, from
another root fetch). A shareable root field is costed by trial plans of each
candidate subgraph (fetches, then stages); Apollo's full combination search is
avoided, so planning stays near-linear in the operation's size. Where no path
exists, PlanningError. The fetch DAG is laid out as a Sequence of Parallel
stages, with @defer parts as separate sequences after the primary one.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    print_ast,
    validate,
)

from router import plan as qp
from router.operation import Field, Frag, Operation, Sel, build_operation
from router.plan import QueryPlan as QueryPlan  # the pipeline's import
from router.supergraph import Supergraph, parse_field_set

log = logging.getLogger("shopgraph.router")


class PlanningError(Exception):
    """The operation cannot be routed over this supergraph."""


# ---- subgraph selection trees (what is sent) ---------------------------------
@dataclass(eq=False)
class SgSet:
    items: dict[str, SgField | SgFrag] = field(default_factory=dict)
    # the selection of a type-less conditional fragment: always within another
    # selection at its path, which gets requirements instead
    conditional: bool = False

    def field(self, key: str, name: str, args: str = "", dirs: str = "") -> SgField:
        sig = f"{key}:{name}{args}{dirs}"
        f = self.items.get(sig)
        if f is None:
            f = self.items[sig] = SgField(key, name, args, dirs)
        assert isinstance(f, SgField)
        return f

    def frag(self, type_cond: str | None, dirs: str = "") -> SgFrag:
        sig = f"...{type_cond}{dirs}"
        f = self.items.get(sig)
        if f is None:
            f = self.items[sig] = SgFrag(type_cond, dirs)
        assert isinstance(f, SgFrag)
        return f

    def render(self) -> str:
        # a fragment left empty (everything in it fetched elsewhere) is dropped:
        # a subgraph must never get an empty selection set
        return "{" + " ".join(r for i in self.items.values() if (r := i.render())) + "}"


@dataclass(eq=False)
class SgField:
    key: str
    name: str
    args: str
    dirs: str
    children: SgSet | None = None

    def sub(self) -> SgSet:
        if self.children is None:
            self.children = SgSet()
        return self.children

    def render(self) -> str:
        head = self.name if self.key == self.name else f"{self.key}:{self.name}"
        s = head + self.args + self.dirs
        if self.children is not None:
            s += self.children.render() if self.children.items else "{__typename}"
        return s


@dataclass(eq=False)
class SgFrag:
    type_cond: str | None
    dirs: str
    children: SgSet = field(default_factory=SgSet)

    def render(self) -> str:
        inner = self.children.render()
        if inner == "{}":
            return ""
        on = f" on {self.type_cond}" if self.type_cond else ""
        return f"...{on}{self.dirs}{inner}"


# ---- plan nodes ----------------------------------------------------------------
@dataclass(eq=False)
class Fetch:
    id: int
    graph: str
    path: tuple[str, ...]
    is_entity: bool
    selection: SgSet = field(default_factory=SgSet)
    deps: set[Fetch] = field(default_factory=set)
    # entity fetch: typename in data -> selection to build the representation
    rep_sels: dict[str, list[Sel]] = field(default_factory=dict)
    # typename in data -> __typename sent in representation (interface objects)
    rep_typename: dict[str, str] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    # the fetch whose data an entity fetch jumps from (None: a root fetch)
    source: Fetch | None = None
    # every selection jumped here, with the fetch whose representation it was
    # planned for (None: asked by the operation itself)
    why: list[tuple[Sel, Fetch | None]] = field(default_factory=list)
    # planning state
    entity_sels: dict[str, list[Sel]] = field(default_factory=dict)
    entity_provided: dict[str, Any] = field(default_factory=dict)
    # every selection of objects of a type at a path (one per field occurrence:
    # `products @skip(if: $b)` and `... @include(if: $b) { products }` are two):
    # requirements of jumps from there are planned into each
    out_for_type: dict[tuple[tuple[str, ...], str], list[tuple[SgSet, Any]]] = field(default_factory=dict)

    def register(self, path: tuple[str, ...], parent: str, out: SgSet, provided: Any) -> None:
        outs = self.out_for_type.setdefault((path, parent), [])
        if not out.conditional and all(o is not out for o, _ in outs):
            outs.append((out, provided))

    # (path, response key) -> its type in the subgraph: one key with two types is aliased
    seen_types: dict[tuple[tuple[str, ...], str], str] = field(default_factory=dict)
    mutation_group: int = 0
    defer: int | None = None  # the deferred fragment it serves (None: the primary part)
    # internal aliases: (path below the fetch's, typename, alias, response key)
    renames: list[tuple[tuple[str, ...], str, str, str]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Fetch#{self.id}({self.graph} @ {'.'.join(self.path) or '<root>'})"


def plan_document(sg: Supergraph, text: str, operation_name: str | None = None) -> qp.QueryPlan:
    """Plan one operation of a document (validated against the API schema):
    for tools such as `shopgraph plan`."""
    try:
        doc = parse(text)
    except GraphQLError as e:
        raise PlanningError(f"the operation does not parse: {e.message}") from e
    errs = validate(sg.api_schema, doc)
    if errs:
        raise PlanningError("; ".join(e.message for e in errs))
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    found = [o for o in ops if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(found) != 1:
        raise PlanningError("name the operation to plan" if found else f"no operation named {operation_name!r}")
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    return Planner(sg).plan(build_operation(found[0], frags))


def _fieldset_sels(sel_set: SelectionSetNode) -> list[Sel]:
    out: list[Sel] = []
    for s in sel_set.selections:
        if isinstance(s, FieldNode):
            args = ""
            if s.arguments:
                args = "(" + ", ".join(print_ast(a) for a in s.arguments) + ")"
            # Internal alias: keys/@requires never collide with client aliases, nor
            # with each other when one field is required with distinct arguments.
            name = s.name.value
            alias = f"_fk_{name}" + (f"_{zlib.crc32(args.encode()):08x}" if args else "")
            out.append(Field(alias, name, args, sels=(_fieldset_sels(s.selection_set) if s.selection_set else None)))
        elif isinstance(s, InlineFragmentNode):
            tc = s.type_condition.name.value if s.type_condition else None
            out.append(Frag(tc, _fieldset_sels(s.selection_set)))
    return out


class Planner:
    """Plans operations over one supergraph.

    `enabled_labels`: progressive-@override labels switched on by configuration;
    a `percent(N)` label is on for N% of requests: a plan holds one variant per
    combination of the percent labels its fields use, picked per request.
    """

    def __init__(self, sg: Supergraph, enabled_labels: frozenset[str] = frozenset()) -> None:
        self.sg = sg
        self.enabled_labels = enabled_labels
        self.interface_objects = frozenset(t for t in sg.types if sg.interface_object_graphs(t))
        self._fs_cache: dict[str, list[Sel]] = {}
        self._hops: dict[tuple[str, str, str], int] = {}

    def fieldset(self, fields: str) -> list[Sel]:
        r = self._fs_cache.get(fields)
        if r is None:
            r = self._fs_cache[fields] = _fieldset_sels(parse_field_set(fields))
        return r

    def plan(self, op: Operation) -> qp.QueryPlan:
        try:
            return self._plan(op)
        except (LookupError, RecursionError) as e:
            # a supergraph this planner does not understand (or a planner bug):
            # the client gets QUERY_PLANNING_FAILED, never an HTTP 500
            log.exception("planning failed")
            raise PlanningError(f"the operation could not be planned ({type(e).__name__})") from e

    def _plan(self, op: Operation) -> qp.QueryPlan:
        percents: dict[str, float] = {}
        names = _field_names(op.sels)
        for (_, fname), label in self.sg.override_labels.items():
            pct = _percent(label)
            if fname in names and pct is not None and label not in self.enabled_labels:
                percents[label] = pct
        labels = sorted(percents)[:_MAX_PERCENT_LABELS]
        if not labels:
            return _PlanBuilder(self, op, self.enabled_labels).build()
        variants: dict[frozenset[str], qp.QueryPlan] = {}
        for mask in range(1 << len(labels)):
            on = frozenset(lb for i, lb in enumerate(labels) if mask >> i & 1)
            variants[on] = _PlanBuilder(self, op, self.enabled_labels | on).build()
        default = variants[frozenset()]
        return replace(
            default,
            override_variants=MappingProxyType(variants),
            percent_labels=MappingProxyType({lb: percents[lb] for lb in labels}),
        )

    def hops(self, type_name: str, source: str, target: str) -> int:
        """Entity jumps from `source` to `target` for one object of a type: a
        jump needs a resolvable key of the next subgraph whose fields the
        current one serves (breadth-first over subgraphs; large if none)."""
        k = (type_name, source, target)
        hit = self._hops.get(k)
        if hit is None:
            hit = self._hops[k] = self._bfs(type_name, source, target)
        return hit

    def _bfs(self, type_name: str, source: str, target: str) -> int:
        sg = self.sg
        seen = {source}
        frontier = [source]
        n = 0
        while frontier:
            if target in frontier:
                return n
            n += 1
            nxt = []
            for g in frontier:
                for h in sg.types[type_name].graphs:
                    if h in seen:
                        continue
                    if any(
                        all(
                            isinstance(f, Field) and g in sg.field_graphs(type_name, f.name)
                            for f in self.fieldset(k.fields)
                        )
                        for k in sg.resolvable_keys(type_name, h)
                    ):
                        seen.add(h)
                        nxt.append(h)
            frontier = nxt
        return 1 << 20


def _applies(sg: Supergraph, type_cond: str | None, concrete: str) -> bool:
    if type_cond is None or type_cond == concrete:
        return True
    return sg.is_abstract(type_cond) and concrete in sg.possible_types(type_cond)


def _provided_map(sels: list[Sel], concrete: str, sg: Supergraph) -> dict[str, Any]:
    """@provides field set -> {field name: nested map} for one concrete type."""
    out: dict[str, Any] = {}
    for s in sels:
        if isinstance(s, Frag):
            if _applies(sg, s.type_cond, concrete):
                out.update(_provided_map(s.sels, concrete, sg))
        else:
            out[s.name] = s.sels or []
    return out


class _PlanBuilder:
    def __init__(self, planner: Planner, op: Operation, labels: frozenset[str], forced: str | None = None) -> None:
        self.p = planner
        self.sg = planner.sg
        self.labels = labels
        self.forced = forced  # trial plans: the subgraph of the (only) root field
        self.op = op
        self.fetches: list[Fetch] = []
        # (source fetch id, path, target graph, variant) -> entity fetch; variants
        # exist when two @requires need one field with distinct arguments (a
        # representation holds one value per field name)
        self.jumps: dict[tuple[int, tuple[str, ...], str, int], Fetch] = {}
        self.touched: set[Fetch] | None = None
        # the entity fetch whose representation is being planned: it cannot serve it itself
        self.requirement_of: Fetch | None = None
        # @defer: (label, path, parent type, fragment selections) per deferred
        # fragment; `defer` is the one being planned (its fetches carry it)
        self.defers: list[tuple[str | None, tuple[str, ...], str, tuple[Sel, ...]]] = []
        self.defer: int | None = None
        # conditional fragments (@include/@skip) being planned, outermost first
        self.conditions: list[Frag] = []
        # fields being planned, outermost first: (parent type, path, out, provided, field)
        self.stack: list[tuple[str, tuple[str, ...], SgSet, dict[str, Any] | None, Field]] = []

    def field_graphs(self, type_name: str, field_name: str) -> list[str]:
        """Subgraphs serving a field, progressive @override labels applied."""
        graphs = self.sg.field_graphs(type_name, field_name)
        label = self.sg.override_labels.get((type_name, field_name))
        if label is None:
            return graphs
        on = label in self.labels
        out = []
        for g in graphs:
            j = self.sg.field_join(type_name, field_name, g)
            if j is None or j.override_label is None or bool(j.override) == on:
                out.append(g)
        return out

    def new_fetch(self, graph: str, path: tuple[str, ...], is_entity: bool) -> Fetch:
        f = Fetch(len(self.fetches), graph, path, is_entity)
        f.defer = self.defer
        self.fetches.append(f)
        return f

    # -- entry -------------------------------------------------------------------
    def build(self) -> qp.QueryPlan:
        root = self.sg.root_types.get(self.op.kind)
        if root is None or root not in self.sg.types:
            raise PlanningError(f"the schema has no {self.op.kind} type")
        fields = self.flatten(self.op.sels, root)
        groups: list[tuple[str, list[Sel]]] = []
        chosen = self.choose_root_graphs(root, fields)
        for s, g in zip(fields, chosen, strict=True):
            if g is None:
                continue
            if self.op.kind == "mutation":
                # Consecutive fields to one subgraph share a fetch; order is kept.
                if groups and groups[-1][0] == g:
                    groups[-1][1].append(s)
                else:
                    groups.append((g, [s]))
            else:
                for gg, lst in groups:
                    if gg == g:
                        lst.append(s)
                        break
                else:
                    groups.append((g, [s]))
        for i, (g, sels) in enumerate(groups):
            f = self.new_fetch(g, (), False)
            f.mutation_group = i
            self.plan_sels(f, g, root, sels, (), f.selection, None)
            self.drain(f)
        # A root fetch whose every field went into a deferred part of its own
        # (`{ a ... @defer { b } }` with b's subgraph chosen for the fragment)
        # selects nothing: a subgraph must never get an empty selection set.
        self.fetches = [f for f in self.fetches if f.is_entity or f.selection.render() != "{}"]
        self.requirement_deps()
        frozen = {f: self.freeze(f) for f in self.fetches}

        def plan_node(f: Fetch) -> qp.Fetch | qp.Flatten | qp.Condition:
            fetch = frozen[f]
            out: qp.Fetch | qp.Flatten | qp.Condition = qp.Flatten(f.path, fetch) if f.is_entity else fetch
            for is_include, var in reversed(fetch.conditions):
                out = qp.Condition(var, is_include, out)
            return out

        def sequence(members: list[Fetch]) -> qp.Sequence | None:
            if not members:
                return None
            if self.op.kind == "mutation":  # root mutations run one after another, in order
                stages: list[qp.SeqMember] = []
                for stage in self.stages(members):
                    nodes = tuple(plan_node(f) for f in stage)
                    stages.append(nodes[0] if len(nodes) == 1 else qp.Parallel(nodes))
                return qp.Sequence(tuple(stages))
            return qp.as_sequence(_layout(members, plan_node))

        deferred = []
        for i, (label, at, parent_type, frag_sels) in enumerate(self.defers):
            node = sequence([f for f in self.fetches if f.defer == i])
            if node is not None:
                deferred.append(qp.Deferred(label, at, parent_type, frag_sels, node))
        ifaces = self.p.interface_objects
        primary = sequence([f for f in self.fetches if f.defer is None])
        return qp.QueryPlan(self.op.kind, primary, ifaces, deferred=tuple(deferred))

    def freeze(self, f: Fetch) -> qp.Fetch:
        reps = None
        if f.is_entity:
            reps = MappingProxyType(
                {
                    t: qp.Representation(f.rep_typename[t], tuple(_concrete(self.sg, t, sels)))
                    for t, sels in f.rep_sels.items()
                }
            )
        return qp.Fetch(
            graph=f.graph,
            service_name=self.sg.graphs[f.graph].name,
            operation=self.render(f),
            kind="query" if f.is_entity else self.op.kind,
            variable_usages=frozenset(v for v in f.variables if v in self.op.var_defs),
            entity=f.is_entity,
            path=f.path,
            representations=reps,
            renames=tuple(qp.Rename(*r) for r in f.renames),
            conditions=tuple(sorted(self.gates(f))),
        )

    def gates(self, f: Fetch, seen: frozenset[Fetch] = frozenset()) -> set[tuple[bool, str]]:
        """Variable @include/@skip conditions an entity fetch exists only under:
        those shared by every selection it serves (one planned for another
        fetch's representation: that fetch's), plus its source fetch's (its
        objects come from that one's data, absent when that one is skipped)."""
        if not f.is_entity or f in seen:
            return set()  # (a cycle: no condition, the fetch always runs)
        seen = seen | {f}
        shared: set[tuple[bool, str]] | None = None
        for sel, req in f.why:
            mine = _sel_gates(sel) | (self.gates(req, seen) if req is not None else set())
            shared = mine if shared is None else shared & mine
        own = shared or set()
        return own | (self.gates(f.source, seen) if f.source is not None else set())

    def choose_root_graphs(self, root: str, fields: list[Sel]) -> list[str | None]:
        counts: dict[str, int] = {}
        cands: list[list[str]] = []
        for s in fields:
            gs: list[str] = []
            if isinstance(s, Field) and not s.name.startswith("__"):
                gs = self.field_graphs(root, s.name)
                if not gs:
                    raise PlanningError(f"no subgraph can resolve {root}.{s.name}")
            cands.append(gs)
            for g in gs:
                counts[g] = counts.get(g, 0) + 1
        out: list[str | None] = []
        single = {gs[0] for gs in cands if len(gs) == 1}
        for s, gs in zip(fields, cands, strict=True):
            if not gs:
                out.append(None)  # __typename / introspection; conditional fragments below
            elif len(gs) == 1 or self.forced is not None:
                out.append(self.forced or max(gs, key=lambda g: counts[g]))
            else:
                out.append(min(gs, key=lambda g: (self._root_cost(s, g, g in single), -counts[g])))
        # a conditional fragment at the root goes to a subgraph fetched anyway when it
        # can: one fetch less, and a shareable field answered as where it is unconditional
        chosen = [g for g in out if g is not None]
        for i, s in enumerate(fields):
            if isinstance(s, Frag):
                out[i] = self._frag_root_graph(root, s, chosen)
        return out

    def _root_cost(self, s: Sel, graph: str, shared: bool) -> tuple[int, int]:
        """Cost of serving a shareable root field from `graph`: the fetches and
        sequential stages of its whole plan (counting @provides and follow-up
        fetches), one fetch less when `graph` gets a root fetch anyway."""
        try:
            trial = _PlanBuilder(self.p, replace(self.op, sels=[s]), self.labels, forced=graph).build()
        except PlanningError:
            return (1 << 20, 0)
        return (len(trial.fetches) - shared, len(trial.stages))

    def _frag_root_graph(self, root: str, s: Frag, chosen: list[str]) -> str | None:
        for inner in self.flatten(s.sels, root):
            if isinstance(inner, Field) and not inner.name.startswith("__"):
                gs = self.field_graphs(root, inner.name)
                if gs:
                    return next((g for g in chosen if g in gs), gs[0])
        return None

    # -- selection flattening ------------------------------------------------------
    def flatten(self, sels: list[Sel], concrete: str) -> list[Sel]:
        """Inline fragments that apply to `concrete`; conditional ones are kept
        (type-less) so their @include/@skip still reach the subgraph."""
        out: list[Sel] = []
        for s in sels:
            if isinstance(s, Field):
                out.append(s)
            elif _applies(self.sg, s.type_cond, concrete):
                if s.defer is not None:  # flattened when planned: see plan_deferred()
                    out.append(Frag(None, s.sels, s.dirs, s.conds, s.variables, s.defer))
                elif s.dirs:
                    out.append(Frag(None, self.flatten(s.sels, concrete), s.dirs, s.conds, s.variables))
                else:
                    out.extend(self.flatten(s.sels, concrete))
        return out

    # -- core ----------------------------------------------------------------------
    def plan_sels(
        self,
        fetch: Fetch,
        graph: str,
        parent: str,
        sels: list[Sel],
        path: tuple[str, ...],
        out: SgSet,
        provided: dict[str, Any] | None,
        only: frozenset[str] | None = None,
    ) -> None:
        sg = self.sg
        tm = sg.types[parent]
        tig = tm.graphs.get(graph)
        if tm.kind in ("interface", "union") and not (tig and tig.is_interface_object):
            out.field("__typename", "__typename")
            for p in sg.possible_types_in(parent, graph):
                sub = self.flatten(sels if only is None or p in only else _direct(sels, parent), p)
                if not sub:
                    continue
                frag = out.frag(p)
                self.plan_sels(fetch, graph, p, sub, path, frag.children, provided)
            for io in self._interface_objects_in(parent, graph):
                # an interface object of this subgraph implementing the abstract type:
                # its objects come back typed as the interface object, their concrete
                # type (and implementations' fields) from a subgraph owning it
                sub = self._interface_object_sels(sels, parent, io)
                if sub:
                    self.plan_sels(fetch, graph, io, sub, path, out.frag(io).children, provided)
            return
        if tm.kind == "interface" and tig is not None and tig.is_interface_object and self.requirement_of is None:
            sels = self.split_interface_object(fetch, graph, parent, sels, path, out, provided)
        fetch.register(path, parent, out, provided)
        for s in self.flatten(sels, parent):
            if (
                isinstance(s, Frag)
                and s.defer is not None
                and self.plan_deferred(fetch, graph, parent, s, path, out, provided)
            ):
                continue
            if isinstance(s, Frag):
                frag = out.frag(None, s.dirs)
                frag.children.conditional = True
                fetch.variables |= s.variables
                # fields of it fetched by another subgraph keep its condition there
                self.conditions.append(s)
                try:
                    self.plan_sels(fetch, graph, parent, s.sels, path, frag.children, provided)
                finally:
                    self.conditions.pop()
                continue
            if s.name == "__typename":
                out.field(s.key, "__typename", "", s.dirs)
                fetch.variables |= s.variables
                continue
            fm = tm.fields.get(s.name)
            if fm is None:
                raise PlanningError(f"unknown field {parent}.{s.name}")
            local = graph in self.field_graphs(parent, s.name)
            join = sg.field_join(parent, s.name, graph)
            if provided is not None and s.name in provided:
                local = True
            elif local and join is not None and join.requires and not (fetch.is_entity and path == fetch.path):
                local = False  # @requires only works through _entities
            if local:
                self.emit_local(fetch, graph, parent, s, path, out, provided)
            elif self.stack and (not self._keyed(parent) or not self._jumpable(parent, s.name)):
                # no key to jump at this object with (none, or none where the field
                # is served): jump at the nearest ancestor entity instead
                self.jump_from_anchor(fetch, graph, parent, s)
            else:
                self.jump(fetch, graph, parent, s, path, out, provided)

    def plan_deferred(
        self,
        fetch: Fetch,
        graph: str,
        parent: str,
        s: Frag,
        path: tuple[str, ...],
        out: SgSet,
        provided: dict[str, Any] | None,
    ) -> bool:
        """A `@defer`red fragment: its fields get fetches of their own (entity
        fetches from the objects of the primary part, or another root fetch),
        run and delivered after the primary part. False when it is planned with
        the rest (a mutation, inside a representation, or on a type with no key
        below the root: the spec lets a server not defer)."""
        root = self.sg.root_types["query"]
        at_root = parent == root and self.op.kind == "query" and not fetch.is_entity and not path
        if self.requirement_of is not None or not (at_root or self._keyed(parent)):
            return False
        tig = self.sg.types[parent].graphs.get(graph)
        iface_object = tig is not None and tig.is_interface_object and not at_root
        sels = s.sels if iface_object else self.flatten(s.sels, parent)
        defer = len(self.defers)
        self.defers.append((s.defer or None, path, parent, tuple(s.sels)))
        outer = self.defer
        self.defer = defer
        try:
            if at_root:
                other = self.new_fetch(graph, (), False)
                other.mutation_group = fetch.mutation_group
                stack, conds = self.stack, self.conditions
                self.stack, self.conditions = [], []
                try:
                    self.plan_sels(other, other.graph, root, self._conditioned(sels), (), other.selection, None)
                finally:
                    self.stack, self.conditions = stack, conds
                self.drain(other)
                return True
            if iface_object:  # the concrete type's fields come from an owning subgraph
                sels = self.split_interface_object(fetch, graph, parent, sels, path, out, provided)
            for sel in sels:
                if isinstance(sel, Frag):  # a conditional fragment inside: keep it around its fields
                    for inner in sel.sels:
                        self.conditions.append(sel)
                        try:
                            self._defer_one(fetch, graph, parent, inner, path, out, provided)
                        finally:
                            self.conditions.pop()
                else:
                    self._defer_one(fetch, graph, parent, sel, path, out, provided)
        finally:
            self.defer = outer
        return True

    def _defer_one(
        self,
        fetch: Fetch,
        graph: str,
        parent: str,
        s: Sel,
        path: tuple[str, ...],
        out: SgSet,
        provided: dict[str, Any] | None,
    ) -> None:
        if isinstance(s, Frag):
            for inner in s.sels:
                self.conditions.append(s)
                try:
                    self._defer_one(fetch, graph, parent, inner, path, out, provided)
                finally:
                    self.conditions.pop()
        elif s.name == "__typename":
            out.field(s.key, "__typename", "", s.dirs)
        else:
            self.jump(fetch, graph, parent, s, path, out, provided)

    def _conditioned(self, sels: list[Sel]) -> list[Sel]:
        out: list[Sel] = []
        for sel in sels:
            moved = sel
            for c in reversed(self.conditions):
                moved = Frag(None, [moved], c.dirs, c.conds, c.variables)
            out.append(moved)
        return out

    def split_interface_object(
        self,
        fetch: Fetch,
        graph: str,
        parent: str,
        sels: list[Sel],
        path: tuple[str, ...],
        out: SgSet,
        provided: dict[str, Any] | None,
    ) -> list[Sel]:
        """An interface object knows neither the concrete type nor the
        implementations' fields: fetch `__typename` (always: the response needs
        it) and every fragment on an implementation from a subgraph owning the
        interface; return what this subgraph serves itself."""
        local: list[Sel] = []
        remote: list[Sel] = []
        signatures: dict[str, set[tuple[str, str]]] = {}
        _signatures(sels, signatures)
        for s in sels:
            if isinstance(s, Frag) and s.defer is not None:
                local.append(s)  # planned as deferred, see plan_deferred()
            elif isinstance(s, Frag):
                if s.type_cond in (None, parent):
                    inner = self.split_interface_object(fetch, graph, parent, s.sels, path, out, provided)
                    if inner:
                        local.append(Frag(None, inner, s.dirs, s.conds, s.variables))
                else:
                    # a field of the interface object asked under an implementation's
                    # fragment is taken here, where the selection already is (as
                    # Apollo's planner does): a @shareable field another subgraph
                    # also serves for that implementation is not fetched there. Only
                    # when its response key means one field at this level: asked for
                    # every object, it is shown only for the fragment's type
                    here, rest = self._hoist(graph, parent, s.type_cond, s.sels, signatures)
                    if here:
                        local.append(Frag(None, here, s.dirs, s.conds, s.variables))
                    if rest:
                        remote.append(Frag(s.type_cond, rest, s.dirs, s.conds, s.variables))
            elif s.name == "__typename":
                continue  # fetched below; the shaper prints the concrete type
            elif (provided is not None and s.name in provided) or graph in self.field_graphs(parent, s.name):
                local.append(s)
            else:
                remote.append(s)
        if remote or not (fetch.is_entity and fetch.path == path):
            # (an entity fetch at this path got its objects from a fetch that
            # already asked for the concrete type)
            tn = Field("__typename", "__typename")
            jf = self.jump(fetch, graph, parent, tn, path, out, provided, need_typename=True)
            jf.entity_sels[parent].extend(remote)
        return local

    def _interface_objects_in(self, abstract: str, graph: str) -> list[str]:
        """Interface objects of `graph` that implement `abstract` there."""
        out = []
        for name in self.p.interface_objects:
            tig = self.sg.types[name].graphs.get(graph)
            if (
                tig is not None
                and tig.is_interface_object
                and abstract in self.sg.types[name].implements.get(graph, ())
            ):
                out.append(name)
        return out

    def _interface_object_sels(self, sels: list[Sel], abstract: str, io: str) -> list[Sel]:
        """The selections that apply to objects of interface object `io` returned
        for `abstract`: fragments on either (made type-less), on `io`'s other
        interfaces or on its implementations (planned as `io`'s remote ones)."""
        tm = self.sg.types[io]
        impls = self.sg.possible_types(io)
        out: list[Sel] = []
        for s in sels:
            if isinstance(s, Field):
                out.append(s)
            elif s.type_cond in (None, abstract, io):
                inner = self._interface_object_sels(s.sels, abstract, io)
                if inner:
                    out.append(Frag(None, inner, s.dirs, s.conds, s.variables, s.defer))
            elif (
                s.type_cond in tm.all_interfaces
                or s.type_cond in impls
                or (self.sg.is_abstract(s.type_cond) and set(self.sg.possible_types(s.type_cond)) & set(impls))
            ):
                out.append(s)
        return out

    def _hoist(
        self,
        graph: str,
        parent: str,
        concrete: str | None,
        sels: list[Sel],
        signatures: dict[str, set[tuple[str, str]]],
    ) -> tuple[list[Sel], list[Sel]]:
        """Split an implementation fragment's selections into the interface
        object's own fields (served here) and the rest."""
        here: list[Sel] = []
        rest: list[Sel] = []
        for s in sels:
            if isinstance(s, Field):
                # (one with arguments may be asked with others under another type's
                # fragment merged into this fetch: those stay apart)
                if (
                    s.name != "__typename"
                    and not s.args
                    and graph in self.field_graphs(parent, s.name)
                    and len(signatures.get(s.key, ())) == 1
                ):
                    here.append(s)
                else:
                    rest.append(s)
            elif s.defer is None and s.type_cond in (None, parent, concrete):
                h, r = self._hoist(graph, parent, concrete, s.sels, signatures)
                if h:
                    here.append(Frag(None, h, s.dirs, s.conds, s.variables))
                if r:
                    rest.append(Frag(s.type_cond, r, s.dirs, s.conds, s.variables))
            else:
                rest.append(s)
        return here, rest

    def _keyed(self, type_name: str) -> bool:
        tm = self.sg.types[type_name]
        return any(self.sg.resolvable_keys(type_name, g) for g in tm.graphs) or any(
            self.sg.interface_object_graphs(i) for i in tm.all_interfaces
        )

    def _jumpable(self, type_name: str, field_name: str) -> bool:
        """Can an object of this type jump to a subgraph serving the field (a
        resolvable key there, or an interface object's)?"""
        return any(self._reachable(type_name, g) for g in self.field_graphs(type_name, field_name)) or bool(
            self._interface_object_cands(type_name, field_name)
        )

    def jump_from_anchor(self, fetch: Fetch, graph: str, parent: str, s: Field) -> None:
        """A field of a type without a key, which this subgraph cannot serve: jump
        at the nearest ancestor entity and select the path down to the field."""
        inner: Field = s
        below = parent
        for entry in reversed(self.stack):
            e_parent, e_path, e_out, e_provided, e_field = entry
            sub: list[Sel] = [inner]
            if self.sg.is_abstract(self.sg.types[e_parent].fields[e_field.name].type_name):
                sub = [Frag(below, sub)]
            inner = Field(e_field.key, e_field.name, e_field.args, e_field.dirs, e_field.conds, sub, e_field.variables)
            below = e_parent
            if self._keyed(e_parent):
                self.jump(fetch, graph, e_parent, inner, e_path, e_out, e_provided, leaf=(parent, s.name))
                return
        root = self.sg.root_types["query"]
        if self.op.kind == "query" and not fetch.is_entity and below == root:
            # a shareable root field no subgraph serves whole: another root fetch
            # for the part this one lacks (merged by response path)
            targets = [
                g for g in self.field_graphs(root, inner.name) if g != graph and g in self.field_graphs(parent, s.name)
            ]
            if targets:
                moved: Sel = inner
                for c in reversed(self.conditions):
                    moved = Frag(None, [moved], c.dirs, c.conds, c.variables)
                other = self.new_fetch(targets[0], (), False)
                other.mutation_group = fetch.mutation_group
                stack, conds = self.stack, self.conditions
                self.stack, self.conditions = [], []
                try:
                    self.plan_sels(other, other.graph, root, [moved], (), other.selection, None)
                finally:
                    self.stack, self.conditions = stack, conds
                self.drain(other)
                return
        raise PlanningError(f"cannot plan {parent}.{s.name}: no subgraph reachable from {graph!r} resolves it")

    def emit_local(
        self,
        fetch: Fetch,
        graph: str,
        parent: str,
        s: Field,
        path: tuple[str, ...],
        out: SgSet,
        provided: dict[str, Any] | None,
    ) -> None:
        fm = self.sg.types[parent].fields[s.name]
        fetch.variables |= s.variables
        join = self.sg.field_join(parent, s.name, graph)
        sub_type = join.type if join is not None and join.type else print_ast(fm.type_node)
        key = s.key
        # one response key at one path merges in the subgraph's validation even
        # across fields (`things` twice, once under a conditional fragment)
        seen = fetch.seen_types.setdefault((path, key), sub_type)
        if seen != sub_type:
            # same response key, another type in this subgraph (`... on A { id }
            # ... on B { id }` with ID! vs ID): invalid together, so alias it
            # in the request and rename it back in the response
            key = f"{s.key}__alias_{len(fetch.renames)}"
            fetch.renames.append((path[len(fetch.path) :], parent, key, s.key))
        f = out.field(key, s.name, s.args, s.dirs)
        if s.sels is None:
            return
        rt = fm.type_name
        sub_path = path + (s.key,) + ("@",) * _list_depth(fm.type_node)
        sub_provided: dict[str, Any] | None = None
        if provided is not None and s.name in provided and provided[s.name]:
            sub_provided = {"__sels": provided[s.name]}
        elif join is not None and join.provides:
            sub_provided = {"__sels": self.p.fieldset(join.provides)}
        only = None
        graphs = self.field_graphs(parent, s.name)
        if len(graphs) > 1 and self.sg.is_abstract(rt):
            # Apollo's semantics for a shareable field whose runtime types differ
            # per subgraph: only the types every subgraph may return are planned,
            # so the answer does not depend on which subgraph serves it
            only = frozenset.intersection(*(frozenset(self.sg.possible_types_in(rt, g)) for g in graphs))
        self.stack.append((parent, path, out, provided, s))
        try:
            self.plan_typed(fetch, graph, rt, s.sels, sub_path, f.sub(), sub_provided, only)
        finally:
            self.stack.pop()

    def plan_typed(
        self,
        fetch: Fetch,
        graph: str,
        type_name: str,
        sels: list[Sel],
        path: tuple[str, ...],
        out: SgSet,
        provided: dict[str, Any] | None,
        only: frozenset[str] | None = None,
    ) -> None:
        """Plan a sub-selection; @provides maps are resolved per concrete type."""
        if provided is None:
            self.plan_sels(fetch, graph, type_name, sels, path, out, None, only)
            return
        psels = provided["__sels"]
        if not self.sg.is_abstract(type_name):
            self.plan_sels(
                fetch, graph, type_name, sels, path, out, self._wrap(_provided_map(psels, type_name, self.sg))
            )
            return
        out.field("__typename", "__typename")
        for p in self.sg.possible_types_in(type_name, graph):
            sub = self.flatten(sels if only is None or p in only else _direct(sels, type_name), p)
            if sub:
                self.plan_sels(
                    fetch, graph, p, sub, path, out.frag(p).children, self._wrap(_provided_map(psels, p, self.sg))
                )

    @staticmethod
    def _wrap(m: dict[str, Any]) -> dict[str, Any]:
        # Nested provided maps use the same {"__sels": [...]} convention lazily.
        return {k: v for k, v in m.items()}

    def jump(
        self,
        fetch: Fetch,
        graph: str,
        parent: str,
        s: Field,
        path: tuple[str, ...],
        out: SgSet,
        provided: dict[str, Any] | None,
        need_typename: bool = False,
        leaf: tuple[str, str] | None = None,
    ) -> Fetch:
        sg = self.sg
        cands = [g for g in self.field_graphs(parent, s.name) if self._reachable(parent, g)]
        if leaf is not None:  # jumping for a field deeper down: the target must serve it
            cands = [g for g in cands if g != graph and g in self.field_graphs(*leaf)]
        if need_typename:
            cands = [
                g
                for g in sg.types[parent].graphs
                if g != graph and self._reachable(parent, g) and not sg.types[parent].graphs[g].is_interface_object
            ]
        if not cands:
            iface_graphs = self._interface_object_cands(parent, s.name)
            cands = iface_graphs
        if self.requirement_of is not None and self.requirement_of.path == path:
            cands = [g for g in cands if g != self.requirement_of.graph]
        if not cands:
            raise PlanningError(f"cannot plan {parent}.{s.name}: no subgraph reachable from {graph!r} resolves it")
        # fewest key hops first (a key the source lacks is fetched on the way),
        # then a jump already made at this path (one fetch for many fields)
        target = min(
            cands,
            key=lambda g: (self.p.hops(parent, graph, g), (fetch.id, path, g, 0) not in self.jumps),
        )
        jt = self._jump_type(parent, target)
        join = sg.field_join(jt, s.name, target) or sg.field_join(parent, s.name, target)
        required = self.p.fieldset(join.requires) if join is not None and join.requires else []
        defer = self.defer if self.defer is not None else fetch.defer
        # an interface-object subgraph sees every representation as the interface:
        # fields selected for one concrete type there need a fetch of their own
        # (or it would answer them, and need their @requires, for every type)
        one_type = jt != parent or bool(sg.interface_object_graphs(parent))
        variant = 0
        while True:
            jf = self.jumps.get((fetch.id, path, target, variant))
            if jf is None or (
                jf.defer == defer
                and _compatible(jf.rep_sels.get(parent, []), required)
                and not (one_type and set(jf.entity_sels) - {parent})
                # a requirement crossing back (A's field requires B's, which requires
                # A's): never from a fetch that waits for the one it is for (a cycle)
                and not (self.requirement_of is not None and _waits_for(jf, self.requirement_of))
            ):
                break
            variant += 1
        if jf is None:
            outer, self.defer = self.defer, defer
            jf = self.new_fetch(target, path, True)
            self.defer = outer
            jf.deps.add(fetch)
            jf.source = fetch
            jf.mutation_group = fetch.mutation_group
            self.jumps[(fetch.id, path, target, variant)] = jf
        if self.touched is not None:
            self.touched.add(jf)
        moved: Sel = s
        for c in reversed(self.conditions):
            moved = Frag(None, [moved], c.dirs, c.conds, c.variables)
        jf.entity_sels.setdefault(parent, []).append(moved)
        jf.why.append((moved, self.requirement_of))
        jf.rep_typename[parent] = jt
        # Requirements for the representation are planned in drain().
        need = jf.rep_sels.setdefault(parent, [])
        if sg.interface_object_graphs(parent):
            # objects typed by an interface object get their concrete type
            # meanwhile: the representation is built the same for each
            for p in sg.possible_types(parent):
                jf.rep_sels.setdefault(p, need)
                jf.rep_typename.setdefault(p, jt)
        if not need:
            key = self._choose_key(jt, target, graph, parent)
            need.append(Field("__typename", "__typename"))
            need.extend(self.p.fieldset(key))
        need.extend(required)
        if required and sg.interface_object_graphs(parent):
            # a concrete type jumped on its own before keeps its own list: it is
            # sent to this fetch too, so it needs the requirement as well
            for p in sg.possible_types(parent):
                own = jf.rep_sels[p]
                if own is not need and not any(r in own for r in required):
                    own.extend(required)
        fetch.register(path, parent, out, provided)
        return jf

    def _interface_object_cands(self, parent: str, field_name: str) -> list[str]:
        # A field defined on an interface object is resolvable for every
        # implementation of that interface.
        out: list[str] = []
        for iface in self.sg.types[parent].all_interfaces:
            for g in self.sg.interface_object_graphs(iface):
                if g in self.field_graphs(iface, field_name) and self.sg.resolvable_keys(iface, g):
                    out.append(g)
        return out

    def _jump_type(self, parent: str, target: str) -> str:
        """Type name to use in representations sent to `target`."""
        tm = self.sg.types[parent]
        if target in tm.graphs:
            return parent
        for iface in tm.all_interfaces:
            it = self.sg.types[iface].graphs.get(target)
            if it is not None and it.is_interface_object:
                return iface
        return parent

    def _reachable(self, type_name: str, graph: str) -> bool:
        return bool(self.sg.resolvable_keys(type_name, graph))

    def _choose_key(self, jt: str, target: str, source: str, parent: str) -> str:
        keys = self.sg.resolvable_keys(jt, target)
        if not keys:
            raise PlanningError(f"{jt} has no resolvable key in subgraph {target!r}")
        for k in keys:
            if all(
                isinstance(s, Field) and source in self.field_graphs(parent, s.name) for s in self.p.fieldset(k.fields)
            ):
                return k.fields
        return keys[0].fields

    def drain(self, fetch: Fetch) -> None:
        """Plan representation requirements of jumps out of `fetch`, then the
        jumped-to fetches themselves (recursively)."""
        outer, self.stack = self.stack, []
        conds, self.conditions = self.conditions, []
        try:
            self._drain(fetch)
        finally:
            self.stack = outer
            self.conditions = conds

    def _drain(self, fetch: Fetch) -> None:
        done: dict[tuple[Fetch, str], int] = {}
        progress = True
        while progress:
            progress = False
            for (fid, _, _, _), jf in list(self.jumps.items()):
                if fid != fetch.id:
                    continue
                for parent, need in list(jf.rep_sels.items()):
                    if parent not in jf.entity_sels:
                        continue  # the same requirement, listed under a concrete type
                    start = done.get((jf, parent), 0)
                    if start >= len(need):
                        continue
                    progress = True
                    done[(jf, parent)] = len(need)
                    self.touched = set()
                    self.requirement_of = jf
                    for out, provided in fetch.out_for_type[(jf.path, parent)]:
                        self.plan_sels(fetch, fetch.graph, parent, need[start:], jf.path, out, provided)
                    for other in self.touched:
                        if other is not jf:
                            jf.deps.add(other)
                    self.touched = None
                    self.requirement_of = None
        children = [jf for (fid, _, _, _), jf in self.jumps.items() if fid == fetch.id]
        for jf in children:
            if jf.selection.items:
                continue
            ent = jf.selection.field("_entities", "_entities", "(representations:$representations)")
            for parent, sels in jf.entity_sels.items():
                jt = jf.rep_typename[parent]
                frag = ent.sub().frag(jt)
                if jt != parent:
                    # interface object: the subgraph sees the interface type
                    self.plan_sels(jf, jf.graph, jt, sels, jf.path, frag.children, None)
                else:
                    self.plan_sels(jf, jf.graph, parent, sels, jf.path, frag.children, None)
            self.drain(jf)

    def requirement_deps(self) -> None:
        """A representation needs its whole requirement: an entity fetch also waits
        for the fetches that complete the data its requirement fetches returned
        (a @requires of `seller { region }` waits for the fetch of `region`)."""
        children: dict[int, list[Fetch]] = {}
        for (fid, _, _, _), jf in self.jumps.items():
            children.setdefault(fid, []).append(jf)

        def descendants(f: Fetch) -> list[Fetch]:
            out, todo = [], list(children.get(f.id, ()))
            while todo:
                c = todo.pop()
                out.append(c)
                todo.extend(children.get(c.id, ()))
            return out

        def waits_for(a: Fetch, b: Fetch) -> bool:
            return a is b or any(waits_for(d, b) for d in a.deps)

        for jf in self.fetches:
            if not jf.is_entity:
                continue
            own = set(descendants(jf))
            for d in list(jf.deps):
                if not d.is_entity or d.path[: len(jf.path)] != jf.path[: len(d.path)]:
                    continue
                for x in descendants(d):
                    if x is not jf and x not in own and x.path[: len(jf.path)] == jf.path and not waits_for(x, jf):
                        jf.deps.add(x)

    # -- output --------------------------------------------------------------------
    def render(self, f: Fetch) -> str:
        body = f.selection.render()
        # variables of dropped (empty) fragments are not declared: unused ones are invalid
        f.variables = {v for v in f.variables if v in self.op.var_defs and re.search(rf"\${v}\b", body)}
        defs = [self.op.var_defs[v] for v in sorted(f.variables)]
        if f.is_entity:
            defs.insert(0, "$representations:[_Any!]!")
            kind = "query"
        else:
            kind = self.op.kind
        head = kind + ("(" + ",".join(defs) + ")" if defs else "")
        return head + body

    def stages(self, fetches: list[Fetch]) -> list[list[Fetch]]:
        """`fetches` as a sequence of parallel stages (dependencies outside them
        have run before: a deferred part runs after the primary one)."""
        level: dict[Fetch, int] = {}
        within = set(fetches)

        def lv(f: Fetch) -> int:
            if f not in level:
                level[f] = 1 + max((lv(d) for d in f.deps if d in within), default=-1)
            return level[f]

        if self.op.kind == "mutation":
            stages: list[list[Fetch]] = []
            groups = sorted({f.mutation_group for f in fetches})
            for g in groups:
                members = [f for f in fetches if f.mutation_group == g]
                base = len(stages)
                for f in members:
                    lvl = lv(f) - min(lv(m) for m in members) + base
                    while len(stages) <= lvl:
                        stages.append([])
                    stages[lvl].append(f)
            return stages
        out: list[list[Fetch]] = []
        for f in fetches:
            lvl = lv(f)
            while len(out) <= lvl:
                out.append([])
            out[lvl].append(f)
        return out


def _layout(fetches: list[Fetch], leaf: Callable[[Fetch], qp.Leaf]) -> qp.Leaf | qp.Sequence | qp.Parallel:
    """``fetches`` as a tree that waits only where the data does (no barrier between
    independent branches): fetches that share no dependency run in Parallel branches;
    within a branch, those waiting for nothing left come first, then the rest, laid out
    again. The printed plan is this tree, and the executor runs it as printed."""
    within = set(fetches)
    order = {f: i for i, f in enumerate(fetches)}
    deps = {f: {d for d in f.deps if d in within} for f in fetches}
    branches = _branches(fetches, deps)
    if len(branches) > 1:
        nodes: list[qp.Leaf | qp.Sequence] = []
        for b in branches:
            n = _layout(b, leaf)
            nodes.extend(n.nodes if isinstance(n, qp.Parallel) else (n,))
        return qp.Parallel(tuple(nodes))
    first = [f for f in fetches if not deps[f]]
    head = leaf(first[0]) if len(first) == 1 else qp.Parallel(tuple(leaf(f) for f in first))
    rest = sorted(within - set(first), key=order.__getitem__)
    if not rest:
        return head
    tail = _layout(rest, leaf)
    return qp.Sequence((head, *(tail.nodes if isinstance(tail, qp.Sequence) else (tail,))))


def _branches(fetches: list[Fetch], deps: dict[Fetch, set[Fetch]]) -> list[list[Fetch]]:
    """``fetches`` split into groups joined by no dependency (either way), in their order."""
    group: dict[Fetch, int] = {}
    links: dict[Fetch, set[Fetch]] = {f: set(deps[f]) for f in fetches}
    for f in fetches:
        for d in deps[f]:
            links[d].add(f)
    out: list[list[Fetch]] = []
    for f in fetches:
        if f in group:
            continue
        group[f] = len(out)
        todo, members = [f], []
        while todo:
            x = todo.pop()
            members.append(x)
            for y in links[x]:
                if y not in group:
                    group[y] = group[f]
                    todo.append(y)
        out.append(members)
    index = {f: i for i, f in enumerate(fetches)}
    return [sorted(m, key=index.__getitem__) for m in out]


_MAX_PERCENT_LABELS = 6  # 64 plan variants at most; further percent labels stay off
_PERCENT = re.compile(r"percent\((\d+(?:\.\d+)?)\)")


def _percent(label: str) -> float | None:
    m = _PERCENT.fullmatch(label)
    return float(m.group(1)) if m else None


def _sel_gates(s: Sel) -> set[tuple[bool, str]]:
    """Variable conditions a selection applies under: its own, and (for a
    fragment) those shared by all it holds."""
    out = {(inc, v) for inc, v in s.conds if isinstance(v, str)}
    if isinstance(s, Frag) and s.sels:
        inner = [_sel_gates(c) for c in s.sels]
        out |= set.intersection(*inner)
    return out


def _concrete(sg: Supergraph, parent: str, sels: list[Sel]) -> list[Sel]:
    """A representation's selection with every type condition naming a concrete
    type: the executor matches a fragment by the object's `__typename`, so
    `payment { ... on Payment { id } }` (an interface) becomes one fragment per
    implementation, which would otherwise never match and leave `id` out."""
    out: list[Sel] = []
    for s in sels:
        if isinstance(s, Frag):
            tc = s.type_cond
            if tc is not None and sg.is_abstract(tc):
                within = set(sg.possible_types(parent))
                for p in sg.possible_types(tc):
                    if p in within:
                        out.append(Frag(p, _concrete(sg, p, s.sels), s.dirs, s.conds, s.variables))
            else:
                out.append(Frag(tc, _concrete(sg, tc or parent, s.sels), s.dirs, s.conds, s.variables))
        elif s.sels is not None and parent in sg.types and s.name in sg.types[parent].fields:
            sub = sg.types[parent].fields[s.name].type_name
            out.append(replace(s, sels=_concrete(sg, sub, s.sels)))
        else:
            out.append(s)
    return out


def _waits_for(a: Fetch, b: Fetch) -> bool:
    """Does fetch `a` (transitively) wait for fetch `b`?"""
    seen: set[int] = set()
    todo = [a]
    while todo:
        f = todo.pop()
        if f is b:
            return True
        if f.id not in seen:
            seen.add(f.id)
            todo.extend(f.deps)
    return False


def _signatures(sels: list[Sel], acc: dict[str, set[tuple[str, str]]]) -> None:
    """Response key -> the (field, arguments) it names at one level, fragments included."""
    for s in sels:
        if isinstance(s, Field):
            acc.setdefault(s.key, set()).add((s.name, s.args))
        else:
            _signatures(s.sels, acc)


def _field_names(sels: list[Sel]) -> set[str]:
    out: set[str] = set()
    for s in sels:
        if isinstance(s, Field):
            out.add(s.name)
        if s.sels:
            out |= _field_names(s.sels)
    return out


def _direct(sels: list[Sel], abstract: str) -> list[Sel]:
    """The selections made on the abstract type itself (no narrower type condition)."""
    return [
        s if isinstance(s, Field) else Frag(None, _direct(s.sels, abstract), s.dirs, s.conds, s.variables)
        for s in sels
        if isinstance(s, Field) or s.type_cond in (None, abstract)
    ]


def _compatible(have: list[Sel], more: list[Sel]) -> bool:
    """Can one representation carry both field sets (no name with two argument sets)?"""
    args = {s.name: s.args for s in have if isinstance(s, Field)}
    return all(not isinstance(s, Field) or args.get(s.name, s.args) == s.args for s in more)


def _list_depth(t: Any) -> int:
    from graphql import ListTypeNode, NonNullTypeNode

    n = 0
    while isinstance(t, (NonNullTypeNode, ListTypeNode)):
        if isinstance(t, ListTypeNode):
            n += 1
        t = t.type
    return n
