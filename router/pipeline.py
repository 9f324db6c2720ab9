"""The one request lifecycle, for every transport.

Transports (router/http.py, ws.py, streams.py) turn bytes into a
:class:`~router.request.GraphQLRequest` plus its :class:`~router.request.Client`
and hand them to :meth:`Pipeline.prepare`, which runs the stages in order:

1. limits — body/message size (checked by the transport while reading), then
   parser tokens, depth, aliases, fields (router/limits.py);
2. persisted-query resolution — manifest ids, APQ hashes, the safelist
   (router/persisted.py). A request may carry only a hash, so the text is
   resolved before it is parsed;
3. parse and validate (cached per document; no suggestions without introspection);
4. authenticate — the token verified, the caller and its subgraph headers
   (router/auth.py);
5. variables coerced once, cost estimated and capped (router/cost.py), rate
   limits taken (router/ratelimit.py);
6. plan (cached per document and operation name).

:meth:`Pipeline.execute` then runs the plan under the whole-request deadline
and shapes the response; subscriptions are opened by router/subscriptions.py
on the same prepared request. Every refusal is a
:class:`~router.errors.RouterError`.

The supergraph can be swapped while serving (:meth:`Pipeline.load`): a request
keeps the :class:`Schema` it was prepared on, so in-flight queries and open
subscriptions finish on the old one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

import httpx
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    experimental_execute_incrementally,
    validate,
)
from graphql.execution.values import get_variable_values
from redis.asyncio import Redis

from router import telemetry
from router.auth import Authenticator, Caller
from router.cache import LRU, KeyValue, doc_hash
from router.config import Settings, subgraph_urls
from router.cost import CostEstimator, CostModel
from router.entity_cache import EntityCache
from router.errors import RouterError, error, sanitize
from router.executor import Executor
from router.limits import Limits, check_shape, parse_limited
from router.operation import Field, Operation, build_operation, defer_variables
from router.persisted import Manifest, PersistedQueries
from router.planner import Planner, PlanningError, QueryPlan
from router.ratelimit import RateLimiter
from router.request import Client, GraphQLRequest
from router.response import Shaper
from router.supergraph import Supergraph

Json = dict[str, Any]
log = logging.getLogger("shopgraph.router")


class Schema:
    """Everything built from one supergraph; replaced as a whole on reload."""

    def __init__(self, sdl: str, settings: Settings, client: httpx.AsyncClient | None) -> None:
        self.sdl = sdl
        self.supergraph = Supergraph(sdl)
        self.api: GraphQLSchema = self.supergraph.api_schema
        self.planner = Planner(self.supergraph, frozenset(settings.override_labels))
        self.shaper = Shaper(self.api)
        self.urls = subgraph_urls(self.supergraph, settings)
        self.names = {g: info.name for g, info in self.supergraph.graphs.items()}
        self.cost = CostEstimator(self.api, CostModel.from_supergraph(sdl), settings.default_list_size)
        self.documents: LRU[str, Document] = LRU(settings.plan_cache_size)
        # by (document hash, operation name, the variables turning some `@defer(if: $v)` off)
        self.prepared: LRU[tuple[str, str | None, frozenset[str]], Prepared] = LRU(settings.plan_cache_size)
        self.executor: Executor | None = None
        if client is not None:
            self.bind(client, settings)

    def bind(self, client: httpx.AsyncClient, settings: Settings, cache: EntityCache | None = None) -> None:
        self.executor = Executor(self.urls, self.names, client, settings.subgraph_timeout)
        self.executor.cache = cache


@dataclass
class Document:
    node: DocumentNode | None
    error: RouterError | None
    fragments: dict[str, FragmentDefinitionNode]
    operations: dict[str | None, OperationDefinitionNode]


@dataclass
class Prepared:
    """A validated, planned operation (cached; shared by requests)."""

    op: Operation
    document: DocumentNode
    fragments: dict[str, FragmentDefinitionNode]
    plan: QueryPlan
    root: GraphQLObjectType
    introspection: bool  # has __schema/__type at the root
    schema: Schema
    static_cost: float | None  # when it does not depend on variables
    defer_vars: frozenset[str] = frozenset()  # of `@defer(if: $v)`: a false one takes another plan


@dataclass
class Ready:
    """A request that passed every stage: what to run, with what, for whom."""

    p: Prepared
    variables: Json
    caller: Caller
    cost: float


class Pipeline:
    def __init__(self, sdl: str, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.client: httpx.AsyncClient | None = None
        self.schema = Schema(sdl, settings, None)
        self.auth = Authenticator(settings)
        self.limits = Limits(settings.max_tokens, settings.max_depth, settings.max_aliases, settings.max_fields)
        self.allowed_extensions = frozenset(settings.error_extensions)
        prefix = settings.redis_prefix + "router:"
        manifest = Manifest.load(settings.manifest_path) if settings.manifest_path else None
        apq = KeyValue(redis, prefix + "apq:", settings.apq_cache_chars) if settings.apq else None
        self.persisted = PersistedQueries(settings.safelist, manifest, apq)
        self.rates = (
            RateLimiter(redis, prefix, settings.rate_users, settings.rate_anonymous, settings.rate_expensive)
            if settings.rate_limits
            else None
        )
        self.retired: list[Schema] = []
        self.entity_cache = (
            EntityCache(redis, prefix + "ec:", max_age=settings.entity_cache_max_age)
            if redis is not None and settings.entity_cache
            else None
        )

    def bind(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.schema.bind(client, self.settings, self.entity_cache)
        self.auth.bind(client)

    async def reload(self, sdl: str) -> None:
        """Serve a new supergraph from now on (atomic: one assignment). Raises when it is
        not a valid supergraph; the current one then stays."""
        new = await asyncio.to_thread(Schema, sdl, self.settings, None)  # built off the event loop
        if self.client is not None:
            new.bind(self.client, self.settings, self.entity_cache)
        old, self.schema = self.schema, new
        self.retired.append(old)
        loop = asyncio.get_running_loop()
        # Requests on the old schema get their whole deadline to finish before its connections close.
        loop.call_later(self.settings.request_timeout + 5, self._close_retired, old)

    def _close_retired(self, old: Schema) -> None:
        if old in self.retired:
            self.retired.remove(old)
            if old.executor is not None:
                old.executor.close()

    def close(self) -> None:
        """Release the subgraph connections (at shutdown)."""
        for s in [self.schema, *self.retired]:
            if s.executor is not None:
                s.executor.close()

    # -- stages ----------------------------------------------------------------------------
    async def prepare(self, request: GraphQLRequest, client: Client | Caller, *, streaming: bool = False) -> Ready:
        """Every stage up to the plan. ``client`` is a Caller when the transport has already
        authenticated it (a WebSocket, at connection_init)."""
        telemetry.note_operation(request.operation_name, "unknown")
        try:
            return await self._prepare(request, client, streaming)
        except RouterError as e:
            telemetry.note_outcome("unauthenticated" if e.status == 401 else "request_error")
            raise

    async def _prepare(self, request: GraphQLRequest, client: Client | Caller, streaming: bool) -> Ready:
        text = await self.persisted.resolve(request)
        schema = self.schema
        p = self._prepared(schema, text, request.operation_name)
        await self.persisted.register(request, text)
        kind = p.op.kind
        telemetry.note_operation(p.op.name, kind)
        if request.method == "GET" and kind != "query" and not (streaming and kind == "subscription"):
            raise RouterError.of(
                f"Can only perform a {kind} operation from a POST request.",
                "METHOD_NOT_ALLOWED",
                405,
                {"Allow": "POST"},
            )
        if kind == "subscription" and not streaming:
            raise RouterError.of(
                "Subscriptions need a streaming transport: WebSocket (graphql-transport-ws), "
                'Accept: text/event-stream or Accept: multipart/mixed;subscriptionSpec="1.0".',
                "OPERATION_NOT_SUPPORTED",
            )
        if kind == "subscription" and (len(p.plan.stages) == 0 or len(p.plan.stages[0]) != 1):
            raise RouterError.of("A subscription must select exactly one subgraph field.", "GRAPHQL_VALIDATION_FAILED")
        caller = client if isinstance(client, Caller) else await self.auth.caller(client)
        variables = self._coerce(p, request.variables)
        if p.defer_vars:
            off = frozenset(v for v in p.defer_vars if variables.get(v) is False)
            if off:  # planned with those fragments inline: the spec says `if: false` is not deferred
                p = self._prepared(schema, text, request.operation_name, off)
        cost = self._cost(p, variables)
        if self.rates is not None:
            user = caller.identity.uid if caller.identity is not None else None
            await self.rates.take(user, caller.address, cost >= self.settings.expensive_cost)
        return Ready(p, variables, caller, cost)

    def _document(self, schema: Schema, text: str, key: str) -> Document:
        d = schema.documents.get(key)
        if d is not None:
            return d
        try:
            node = parse_limited(text, self.limits)
            check_shape(node, self.limits)
        except RouterError as e:
            d = Document(None, e, {}, {})
        else:
            hide = not self.settings.introspection
            errs = validate(schema.api, node, hide_suggestions=hide)
            if not errs and hide:
                errs = _no_introspection(node)
            d = Document(
                node,
                RouterError([_graphql_error(e, "GRAPHQL_VALIDATION_FAILED") for e in errs]) if errs else None,
                {f.name.value: f for f in node.definitions if isinstance(f, FragmentDefinitionNode)},
                {
                    o.name.value if o.name else None: o
                    for o in node.definitions
                    if isinstance(o, OperationDefinitionNode)
                },
            )
        schema.documents.put(key, d)
        return d

    def _prepared(
        self, schema: Schema, text: str, op_name: str | None, defer_off: frozenset[str] = frozenset()
    ) -> Prepared:
        key = doc_hash(text)
        p = schema.prepared.get((key, op_name, defer_off))
        if p is not None:
            return p
        doc = self._document(schema, text, key)
        if doc.error is not None:
            raise doc.error
        if op_name is None:
            if len(doc.operations) != 1:
                raise RouterError.of(
                    "Must provide operation name if query contains multiple operations.", "GRAPHQL_VALIDATION_FAILED"
                )
            node = next(iter(doc.operations.values()))
        else:
            found = doc.operations.get(op_name)
            if found is None:
                raise RouterError.of(f'Unknown operation named "{op_name}".', "OPERATION_RESOLUTION_FAILURE")
            node = found
        op = build_operation(node, doc.fragments, defer_off)
        root = schema.api.get_root_type(node.operation)
        if root is None:
            raise RouterError.of(f"The schema has no {op.kind} type.", "GRAPHQL_VALIDATION_FAILED")
        intro = bool({s.name for s in op.sels if isinstance(s, Field)} & {"__schema", "__type"})
        try:
            with telemetry.planning(op.name):
                plan = schema.planner.plan(op)
        except PlanningError as e:
            raise RouterError.of(str(e), "QUERY_PLANNING_FAILED") from e
        assert doc.node is not None
        document = _introspection_doc(doc.node, node) if intro else doc.node
        static = None
        if not node.variable_definitions:
            static = schema.cost.estimate(node, doc.fragments, {})
        defer_vars = defer_variables(node, doc.fragments)
        p = Prepared(op, document, doc.fragments, plan, root, intro, schema, static, defer_vars)
        schema.prepared.put((key, op_name, defer_off), p)
        return p

    def _coerce(self, p: Prepared, variables: Json | None) -> Json:
        defs = p.op.node.variable_definitions
        if not defs:
            return {}
        hide = not self.settings.introspection
        r = get_variable_values(p.schema.api, defs, variables or {}, hide_suggestions=hide)
        if isinstance(r, list):
            raise RouterError([_graphql_error(e, "BAD_USER_INPUT") for e in r])
        return r.coerced

    def _cost(self, p: Prepared, variables: Json) -> float:
        cost = p.static_cost
        if cost is None:
            cost = p.schema.cost.estimate(p.op.node, p.fragments, variables)
        if self.settings.demand_control and cost > self.settings.max_cost:
            raise RouterError.of(
                f"The operation's estimated cost ({cost:,.0f}) exceeds the maximum of {self.settings.max_cost:,}.",
                "COST_ESTIMATED_TOO_EXPENSIVE",
                cost={"estimated": cost, "max": self.settings.max_cost},
            )
        return cost

    # -- execution ---------------------------------------------------------------------------
    async def execute(self, ready: Ready) -> Json:
        """A query or mutation's response, within the whole-request deadline."""
        timeout = self.settings.request_timeout
        try:
            async with asyncio.timeout(timeout):
                out = await self._run(ready)
        except TimeoutError:
            raise RouterError.of(f"Request timed out after {timeout:g}s.", "GATEWAY_TIMEOUT", 504) from None
        telemetry.note_outcome("graphql_error" if out.get("errors") else "ok")
        if self.settings.cost_report:
            out["extensions"] = {"cost": {"estimated": ready.cost, "actual": max(0, _objects(out.get("data")) - 1)}}
        return out

    async def _run(self, ready: Ready) -> Json:
        p, variables = ready.p, ready.variables
        data: Json | None
        errors: list[Json]
        if p.plan.fetches:
            executor = p.schema.executor
            assert executor is not None, "Pipeline.bind() not called"
            identity = ready.caller.identity
            viewer = f"{identity.uid}:{identity.role}" if identity is not None else None
            data, errors = await executor.execute(p.plan, variables, self.auth.headers(ready.caller), viewer=viewer)
            errors = self.sanitize(errors)
        else:
            data, errors = {}, []
        if p.introspection:
            # (graphql-core's plain execute refuses a schema declaring @defer, as the API schema does)
            r = experimental_execute_incrementally(
                p.schema.api, p.document, operation_name=p.op.name, variable_values=variables
            )
            data = dict(data or {})
            data.update(getattr(r, "data", None) or {})
        return self.shape(p, data, variables, errors)

    def shape(self, p: Prepared, data: Json | None, variables: Json, errors: list[Json]) -> Json:
        shaped = p.schema.shaper.shape(p.root, p.op.sels, data, variables, errors)
        out: Json = {}
        if errors:
            out["errors"] = errors
        out["data"] = shaped
        return out

    def sanitize(self, errors: list[Json]) -> list[Json]:
        return sanitize(errors, self.allowed_extensions) if errors else errors


def _objects(value: Any) -> int:
    """Objects in a response value: the actual counterpart of the estimate (without @cost weights)."""
    if isinstance(value, list):
        return sum(_objects(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(_objects(v) for v in value.values())
    return 0


def _graphql_error(e: GraphQLError, code: str) -> Json:
    out = error(e.message, code)
    if e.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in e.locations]
    return out


def _operations(doc: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]


def _introspection_doc(doc: DocumentNode, op: OperationDefinitionNode) -> DocumentNode:
    """The operation reduced to its introspection root fields (run locally)."""
    sels = tuple(
        s for s in op.selection_set.selections if isinstance(s, FieldNode) and s.name.value in ("__schema", "__type")
    )
    new_op = replace(op, selection_set=SelectionSetNode(selections=sels))
    defs = [new_op] + [d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)]
    return DocumentNode(definitions=tuple(defs))


def _no_introspection(node: DocumentNode) -> list[GraphQLError]:
    for d in node.definitions:
        if isinstance(d, OperationDefinitionNode):
            for s in d.selection_set.selections:
                if isinstance(s, FieldNode) and s.name.value in ("__schema", "__type"):
                    return [GraphQLError("Introspection is disabled.")]
    return []
