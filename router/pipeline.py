"""The request pipeline, independent of HTTP: document -> validated operation ->
(cached) plan -> execution -> shaped response.

Parsing, validation, limits and planning happen once per (document, operation
name); the hot path is a cache lookup, variable coercion, the fetches and
shaping.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import httpx
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    experimental_execute_incrementally,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from router.cache import LRU, doc_hash
from router.config import Settings, subgraph_urls
from router.executor import Executor
from router.operation import Field, Operation, build_operation
from router.planner import Planner, PlanningError, QueryPlan
from router.response import Shaper
from router.supergraph import Supergraph

Json = dict[str, Any]


class RequestError(Exception):
    """A GraphQL request error (no execution): parse, validation, variables..."""

    def __init__(self, errors: list[Json], status: int = 400) -> None:
        super().__init__(errors[0]["message"] if errors else "bad request")
        self.errors = errors
        self.status = status


def _err(message: str, code: str, **extra: Any) -> Json:
    e: Json = {"message": message, "extensions": {"code": code}}
    e.update(extra)
    return e


@dataclass
class Document:
    node: DocumentNode | None
    errors: list[Json]
    fragments: dict[str, FragmentDefinitionNode]
    operations: dict[str | None, OperationDefinitionNode]


@dataclass
class Prepared:
    op: Operation
    document: DocumentNode
    plan: QueryPlan
    root: GraphQLObjectType
    introspection: bool  # has __schema/__type at the root
    only_introspection: bool
    has_vars: bool


class Pipeline:
    def __init__(self, sdl: str, settings: Settings) -> None:
        self.settings = settings
        self.supergraph = Supergraph(sdl)
        self.schema = self.supergraph.api_schema
        self.planner = Planner(self.supergraph, settings.override_labels)
        self.shaper = Shaper(self.schema)
        self.urls = subgraph_urls(self.supergraph, settings)
        self.docs: LRU[str, Document] = LRU(settings.plan_cache_size)
        self.prepared: LRU[tuple[str, str | None], Prepared] = LRU(settings.plan_cache_size)
        self.executor: Executor | None = None

    def bind(self, client: httpx.AsyncClient) -> None:
        names = {g: info.name for g, info in self.supergraph.graphs.items()}
        self.executor = Executor(self.urls, names, client, self.settings.subgraph_timeout)

    def close(self) -> None:
        """Release the executor's subgraph connections (at shutdown)."""
        if self.executor is not None:
            self.executor.close()

    # -- preparation (cached) ------------------------------------------------------
    def document(self, text: str, key: str) -> Document:
        d = self.docs.get(key)
        if d is not None:
            return d
        try:
            node = parse(text)
        except GraphQLError as e:
            d = Document(None, [_err(e.message, "GRAPHQL_PARSE_FAILED", locations=_locs(e))], {}, {})
        else:
            errs = validate(self.schema, node)
            if not errs and not self.settings.introspection:
                errs = _no_introspection(node)
            frags = {f.name.value: f for f in node.definitions if isinstance(f, FragmentDefinitionNode)}
            ops = {
                o.name.value if o.name else None: o for o in node.definitions if isinstance(o, OperationDefinitionNode)
            }
            d = Document(
                node,
                [_err(e.message, "GRAPHQL_VALIDATION_FAILED", locations=_locs(e)) for e in errs],
                frags,
                ops,
            )
            if not d.errors:
                for o in ops.values():
                    lim = self._limits(o, frags)
                    if lim:
                        d.errors = [_err(lim, "GRAPHQL_VALIDATION_FAILED")]
                        break
        self.docs.put(key, d)
        return d

    def _limits(self, op: OperationDefinitionNode, frags: dict[str, FragmentDefinitionNode]) -> str | None:
        """Depth, aliases and fields of the operation with its fragments expanded.

        Each fragment is measured once and its figures reused wherever it is spread:
        a fragment spread twice, whose fragment spreads the next one twice, and so on,
        would otherwise take exponential time and memory to walk (or to plan) — a
        one-kilobyte request could stall the router. Validation has already refused
        fragment cycles.
        """
        measured: dict[str, tuple[int, int, int]] = {}

        def measure(ss: SelectionSetNode | None) -> tuple[int, int, int]:  # (fields, depth, aliases)
            fields = depth = aliases = 0
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
                        measured[name] = measure(frag.selection_set) if frag is not None else (0, 0, 0)
                    f, d, a = measured[name]
                else:
                    continue
                fields, depth, aliases = fields + f, max(depth, d), aliases + a
            return fields, depth, aliases

        fields, depth, aliases = measure(op.selection_set)
        if depth > self.settings.max_depth:
            return f"Query depth {depth} exceeds the maximum of {self.settings.max_depth}."
        if aliases > self.settings.max_aliases:
            return f"Query uses {aliases} aliases; the maximum is {self.settings.max_aliases}."
        if fields > self.settings.max_fields:
            limit = self.settings.max_fields
            return f"Query selects {fields} fields once its fragments are expanded; the maximum is {limit}."
        return None

    def prepare(self, text: str, op_name: str | None) -> Prepared:
        key = doc_hash(text)
        p = self.prepared.get((key, op_name))
        if p is not None:
            return p
        doc = self.document(text, key)
        if doc.errors:
            raise RequestError(doc.errors)
        if op_name is None:
            if len(doc.operations) != 1:
                raise RequestError(
                    [
                        _err(
                            "Must provide operation name if query contains multiple operations.",
                            "GRAPHQL_VALIDATION_FAILED",
                        )
                    ]
                )
            node = next(iter(doc.operations.values()))
        else:
            found = doc.operations.get(op_name)
            if found is None:
                raise RequestError([_err(f'Unknown operation named "{op_name}".', "OPERATION_RESOLUTION_FAILURE")])
            node = found
        op = build_operation(node, doc.fragments)
        root = self.schema.get_root_type(node.operation)
        if root is None:
            raise RequestError([_err(f"The schema has no {op.kind} type.", "GRAPHQL_VALIDATION_FAILED")])
        root_names = {s.name for s in op.sels if isinstance(s, Field)}
        intro = bool(root_names & {"__schema", "__type"})
        try:
            plan = self.planner.plan(op)
        except PlanningError as e:
            raise RequestError([_err(str(e), "QUERY_PLANNING_FAILED")], status=400) from e
        assert doc.node is not None
        document = _introspection_doc(doc.node, node) if intro else doc.node
        p = Prepared(op, document, plan, root, intro, intro and not plan.fetches, bool(node.variable_definitions))
        self.prepared.put((key, op_name), p)
        return p

    # -- execution -------------------------------------------------------------------
    def coerce(self, p: Prepared, variables: Json | None) -> None:
        if not p.has_vars:
            return
        r = get_variable_values(self.schema, p.op.node.variable_definitions or (), variables or {})
        if isinstance(r, list):
            raise RequestError([_err(e.message, "BAD_USER_INPUT", locations=_locs(e)) for e in r])

    async def run(self, p: Prepared, variables: Json | None, headers: dict[str, str]) -> Json:
        vars_ = variables or {}
        self._add_defaults(p, vars_)
        assert self.executor is not None, "Pipeline.bind() not called"
        data: Json | None
        errors: list[Json]
        if p.plan.fetches:
            data, errors = await self.executor.execute(p.plan, vars_, headers)
        else:
            data, errors = {}, []
        if p.introspection:
            # (graphql-core's plain execute refuses a schema declaring @defer, as the API schema does)
            r = experimental_execute_incrementally(
                self.schema, p.document, operation_name=p.op.name, variable_values=vars_
            )
            data = dict(data or {})
            rd = getattr(r, "data", None) or {}
            data.update(rd)
        shaped = self.shaper.shape(p.root, p.op.sels, data, vars_, errors)
        out: Json = {}
        if errors:
            out["errors"] = errors
        out["data"] = shaped
        return out

    @staticmethod
    def _add_defaults(p: Prepared, vars_: Json) -> None:
        for vd in p.op.node.variable_definitions or ():
            name = vd.variable.name.value
            if name not in vars_ and vd.default_value is not None:
                from graphql import value_from_ast_untyped

                vars_[name] = value_from_ast_untyped(vd.default_value)


def _introspection_doc(doc: DocumentNode, op: OperationDefinitionNode) -> DocumentNode:
    """The operation reduced to its introspection root fields (run locally)."""
    sels = tuple(
        s for s in op.selection_set.selections if isinstance(s, FieldNode) and s.name.value in ("__schema", "__type")
    )
    new_op = replace(op, selection_set=SelectionSetNode(selections=sels))
    defs = [new_op] + [d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)]
    return DocumentNode(definitions=tuple(defs))


def _locs(e: GraphQLError) -> list[Json]:
    return [{"line": loc.line, "column": loc.column} for loc in e.locations or ()]


def _no_introspection(node: DocumentNode) -> list[GraphQLError]:
    for d in node.definitions:
        if isinstance(d, OperationDefinitionNode):
            for s in d.selection_set.selections:
                if isinstance(s, FieldNode) and s.name.value in ("__schema", "__type"):
                    return [GraphQLError("Introspection is disabled.")]
    return []
