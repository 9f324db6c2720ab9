"""The one request lifecycle, for every transport.

Transports (router/http.py, ws.py, streams.py) turn bytes into a
:class:`~router.request.GraphQLRequest` plus its :class:`~router.request.Client`
and hand them to :meth:`Pipeline.prepare`, which runs the stages in order:

1. authenticate — the token verified, the caller and its subgraph headers
   (router/auth.py); then the caller's rate budget is drawn (router/ratelimit.py):
   every request, valid or not, pays before any parsing;
2. persisted-query resolution — manifest ids, APQ hashes, the safelist
   (router/persisted.py). A request may carry only a hash, so the text is
   resolved before it is parsed;
3. admission (router/admission.py) — the text's bytes and its strings' bytes;
4. parse (token limit), shape limits (router/limits.py), the field-merging count
   (admission), validate (no suggestions without introspection), plan — for a document
   and operation not in the caches, in the one worker thread (router/offloop.py), off
   the event loop. Only documents that validated are cached (bounded in bytes);
5. variables coerced once, cost estimated and capped (router/cost.py; the cap derived
   from the storefront's manifest), expensive operations draw their cost from the
   caller's expensive budget (router/cost_budget.py);
6. an APQ text sent with its hash is stored, now that its request passed everything.

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
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    experimental_execute_incrementally,
    validate,
)
from graphql.execution.values import get_variable_values
from redis.asyncio import Redis

from router import telemetry
from router.admission import check_overlap, check_text, note_refusal
from router.auth import Authenticator, Caller
from router.authorization import (
    AccessRules,
    Authorizer,
    Denial,
    PolicyHookError,
    Requirement,
    denial_errors,
    load_policy_hook,
    prune,
    requirements_of,
)
from router.cache import LRU, KeyValue, doc_hash
from router.config import ConfigError, Settings, subgraph_urls
from router.cost import CostEstimator, CostModel, manifest_cap
from router.cost_budget import CostBudget
from router.docpool import shared as shared_pool
from router.docworker import dumps, loads
from router.entity_cache import EntityCache
from router.errors import RouterError, error, sanitize
from router.executor import Executor
from router.limits import Limits, check_shape, parse_limited
from router.offloop import Worker
from router.operation import Field, Operation, build_operation, defer_variables
from router.persisted import Manifest, PersistedQueries
from router.plan import QueryPlan
from router.planner import Planner, PlanningError
from router.ratelimit import RateLimiter
from router.request import Client, GraphQLRequest
from router.response import Shaper
from router.supergraph import Supergraph

Json = dict[str, Any]
log = logging.getLogger("shopgraph.router")

# The cost cap when neither demand_control.max_cost nor a manifest for this supergraph says.
FALLBACK_MAX_COST = 10_000
STOREFRONT_MANIFEST = Path(__file__).resolve().parents[1] / "frontend_contract" / "manifest.json"
# Estimated bytes a cached document weighs per character of its text (its syntax tree without
# locations; measured with tracemalloc on dense 30 KB documents: 37), and a prepared operation
# (the normalised operation and its plan: 66).
DOCUMENT_BYTES_PER_CHAR = 40
PREPARED_BYTES_PER_CHAR = 70
# Pruned plans an operation keeps, one per combination of requirements its callers failed.
MAX_AUTHORIZED_VARIANTS = 16


class Schema:
    """Everything built from one supergraph; replaced as a whole on reload."""

    def __init__(self, sdl: str, settings: Settings, client: httpx.AsyncClient | None) -> None:
        self.sdl = sdl
        self.settings = settings
        self.limits = Limits(settings.max_tokens, settings.max_depth, settings.max_aliases, settings.max_fields)
        # names this supergraph (and the settings preparation reads) to the document workers
        self.key = hashlib.sha256(sdl.encode() + repr(settings).encode()).hexdigest()[:24]
        self.supergraph = Supergraph(sdl)
        self.api: GraphQLSchema = self.supergraph.api_schema
        self.planner = Planner(self.supergraph, frozenset(settings.override_labels))
        self.shaper = Shaper(self.api)
        rules = AccessRules(self.supergraph) if settings.authorization_directives else None
        self.access = rules if rules else None  # (None: the supergraph asks nothing)
        self.urls = subgraph_urls(self.supergraph, settings)
        self.names = {g: info.name for g, info in self.supergraph.graphs.items()}
        model = CostModel.from_supergraph(sdl)
        self.cost = CostEstimator(self.api, model, settings.default_list_size, settings.max_page_size)
        self.max_cost = settings.max_cost if settings.max_cost is not None else _derived_max_cost(settings, self.cost)
        # Validated documents only (a failed one is refused again, after drawing from its caller's budget):
        # as objects with a worker thread, as the workers' pickles with worker processes (sent back to them
        # to plan the document's other operations without validating it again).
        self.documents: LRU[str, Document] = LRU(settings.plan_cache_size, settings.document_cache_bytes)
        self.document_blobs: LRU[str, bytes] = LRU(settings.plan_cache_size, settings.document_cache_bytes)
        # by (document hash, operation name, the variables turning some `@defer(if: $v)` off)
        self.prepared: LRU[tuple[str, str | None, frozenset[str]], Prepared] = LRU(
            settings.plan_cache_size, settings.document_cache_bytes
        )
        self.executor: Executor | None = None
        if client is not None:
            self.bind(client, settings)

    def bind(self, client: httpx.AsyncClient, settings: Settings, cache: EntityCache | None = None) -> None:
        self.executor = Executor(self.urls, self.names, client, settings.subgraph_timeout, settings.subgraph_resilience)
        self.executor.cache = cache


@dataclass
class Document:
    """A document that validated."""

    node: DocumentNode
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
    # what it was prepared from: (text, requested operation name, defer_off), for the worker processes
    source: tuple[str, str | None, frozenset[str]] = ("", None, frozenset())
    required: Requirement = frozenset()  # what its fields ask of the caller (router/authorization.py)
    # the operation pruned for callers failing some of ``required``: by what they failed
    authorized: dict[Requirement, tuple[Prepared, list[Denial]]] = field(default_factory=dict)


@dataclass
class Ready:
    """A request that passed every stage: what to run, with what, for whom."""

    p: Prepared
    variables: Json
    caller: Caller
    cost: float


# -- preparation: in the document workers (router/docworker.py), or a thread ----------------------------


def document(schema: Schema, text: str) -> Document:
    """Parse, limits, validate. Raises the RouterError of a document that fails."""
    settings = schema.settings
    node = parse_limited(text, schema.limits)
    check_shape(node, schema.limits)
    check_overlap(node, settings.max_overlap_pairs)
    hide = not settings.introspection
    errs = validate(schema.api, node, hide_suggestions=hide)
    if not errs and hide:
        errs = _no_introspection(node)
    if errs:
        raise RouterError([_graphql_error(e, "GRAPHQL_VALIDATION_FAILED") for e in errs])
    _drop_locations(node)  # their token chain weighs more than the tree itself
    return Document(
        node,
        {f.name.value: f for f in node.definitions if isinstance(f, FragmentDefinitionNode)},
        {o.name.value if o.name else None: o for o in node.definitions if isinstance(o, OperationDefinitionNode)},
    )


def prepare_new(
    schema: Schema, text: str, op_name: str | None, defer_off: frozenset[str], doc: Document | None
) -> tuple[Prepared, Document | None]:
    """A new operation, validated and planned; and its document if new."""
    new_doc = None
    if doc is None:
        doc = new_doc = document(schema, text)
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
    doc_node = _introspection_doc(doc.node, node) if intro else doc.node
    static = None
    if not node.variable_definitions:
        static = schema.cost.estimate(node, doc.fragments, {})
    defer_vars = defer_variables(node, doc.fragments)
    required = requirements_of(schema.access, op.sels, root.name) if schema.access is not None else frozenset()
    source = (text, op_name, defer_off)
    p = Prepared(op, doc_node, doc.fragments, plan, root, intro, schema, static, defer_vars, source, required)
    return p, new_doc


def pruned(p: Prepared, failed: Requirement) -> tuple[Prepared, list[Denial]]:
    """``p`` without what ``failed`` refuses: planned again on what is left."""
    assert p.schema.access is not None  # (p.required is empty without rules)
    cut = prune(p.schema.access, p.op.sels, p.root.name, failed)
    plan = QueryPlan(p.op.kind, None)  # nothing left to fetch
    if cut.planned:
        try:
            with telemetry.planning(p.op.name):
                plan = p.schema.planner.plan(replace(p.op, sels=cut.planned))
        except PlanningError as e:
            raise RouterError.of(str(e), "QUERY_PLANNING_FAILED") from e
    op = replace(p.op, sels=cut.shaped)
    return replace(p, op=op, plan=plan, required=frozenset(), authorized={}), cut.denials


def introspect(p: Prepared, variables: Json) -> Json:
    """The data of ``p``'s introspection fields (graphql-core's plain execute refuses a schema
    declaring @defer, as the API schema does)."""
    api, name = p.schema.api, p.op.name
    r = experimental_execute_incrementally(api, p.document, operation_name=name, variable_values=variables)
    return dict(getattr(r, "data", None) or {})


def payload(p: Prepared) -> bytes:
    """``p`` as a worker process sends it back: without its schema (the router has its own)."""
    return dumps(
        (p.op, p.document, p.fragments, p.plan, p.root.name, p.introspection, p.static_cost, p.defer_vars, p.required)
    )


def from_payload(blob: bytes, schema: Schema, source: tuple[str, str | None, frozenset[str]]) -> Prepared:
    op, document_node, fragments, plan, root, intro, static, defer_vars, required = loads(blob)
    root_type = schema.api.get_type(root)
    assert isinstance(root_type, GraphQLObjectType)
    return Prepared(op, document_node, fragments, plan, root_type, intro, schema, static, defer_vars, source, required)


class Pipeline:
    def __init__(self, sdl: str, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.client: httpx.AsyncClient | None = None
        self.schema = Schema(sdl, settings, None)
        self.auth = Authenticator(settings)
        try:
            hook = load_policy_hook(settings.policy_hook) if settings.policy_hook else None
        except PolicyHookError as e:
            raise ConfigError(str(e)) from e
        self.authorizer = Authorizer(hook, reject=settings.reject_unauthorized)
        self.limits = Limits(settings.max_tokens, settings.max_depth, settings.max_aliases, settings.max_fields)
        self.allowed_extensions = frozenset(settings.error_extensions)
        prefix = settings.redis_prefix + "router:"
        manifest = Manifest.load(settings.manifest_path) if settings.manifest_path else None
        apq = (
            KeyValue(redis, prefix + "apq:", settings.apq_cache_chars, max_total=settings.apq_max_total_bytes)
            if settings.apq
            else None
        )
        self.persisted = PersistedQueries(settings.safelist, manifest, apq, settings.apq_max_entry_bytes)
        self.rates = (
            RateLimiter(
                redis,
                prefix,
                settings.rate_users,
                settings.rate_anonymous,
                settings.rate_expensive,
                settings.redis_timeout,
            )
            if settings.rate_limits
            else None
        )
        self.budget = CostBudget(redis, prefix, settings.rate_expensive) if settings.rate_limits else None
        # New documents are prepared in worker processes (router/docpool.py), or with document_workers: 0 in a
        # thread of this one.
        workers = settings.document_workers
        self.pool = shared_pool(workers, settings.prepare_timeout, settings.document_worker_nice) if workers else None
        self.worker = Worker(
            settings.max_pending_documents, settings.prepare_seconds if settings.rate_limits else None, self.pool
        )
        if self.pool is not None:
            self.pool.register(self.schema.key, sdl, settings)
        self.closed = False
        self.retired: list[Schema] = []
        self.entity_cache = (
            EntityCache(redis, prefix + "ec:", max_age=settings.entity_cache_max_age)
            if redis is not None and settings.entity_cache
            else None
        )

    def start(self) -> None:
        """Start the document workers (else the first new document does)."""
        if self.pool is not None:
            if self.closed:  # (served again after a shutdown)
                self.pool.register(self.schema.key, self.schema.sdl, self.settings)
            self.pool.start()
        self.closed = False

    async def ready(self, wait: float = 60.0) -> None:
        """Start the document workers and wait (without holding the loop) until one has loaded the
        supergraph: a router that answers /health can prepare documents (a worker's start is about a
        second of CPU, much more on a loaded machine). Past ``wait`` seconds, a WARNING; requests then wait."""
        self.start()
        if self.pool is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self.pool.loaded(self.schema.key):
            if loop.time() > deadline:
                log.warning("no document worker ready after %gs; new documents wait for one", wait)
                return
            await asyncio.sleep(0.02)

    def bind(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.schema.bind(client, self.settings, self.entity_cache)
        self.auth.bind(client)

    async def reload(self, sdl: str) -> None:
        """Serve a new supergraph from now on (atomic: one assignment). Raises when it is
        not a valid supergraph; the current one then stays."""
        new = await asyncio.to_thread(Schema, sdl, self.settings, None)  # built off the event loop
        if self.pool is not None:
            self.pool.register(new.key, sdl, self.settings)  # idle workers load it at once
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
            if self.pool is not None:
                self.pool.unregister(old.key)

    def close(self) -> None:
        """Release the subgraph connections and the supergraphs the workers hold (at shutdown)."""
        if self.closed:
            return
        self.closed = True
        for s in [self.schema, *self.retired]:
            if s.executor is not None:
                s.executor.close()
            if self.pool is not None:
                self.pool.unregister(s.key)
        self.retired.clear()
        self.worker.close()

    # -- stages ----------------------------------------------------------------------------
    async def prepare(self, request: GraphQLRequest, client: Client | Caller, *, streaming: bool = False) -> Ready:
        """Every stage up to the plan. ``client`` is a Caller when the transport has already
        authenticated it (a WebSocket, at connection_init)."""
        telemetry.note_operation(request.operation_name, "unknown")
        try:
            return await self._prepare(request, client, streaming)
        except RouterError as e:
            note_refusal(e)
            telemetry.note_outcome("unauthenticated" if e.status == 401 else "request_error")
            raise

    async def _prepare(self, request: GraphQLRequest, client: Client | Caller, streaming: bool) -> Ready:
        caller = client if isinstance(client, Caller) else await self.auth.caller(client)
        user = caller.identity.uid if caller.identity is not None else None
        if self.rates is not None:  # before any parsing: an invalid or refused document pays too
            await self.rates.take(user, caller.address, False)
        text = await self.persisted.resolve(request)
        settings = self.settings
        check_text(text, settings.max_document_bytes, settings.max_token_bytes)
        schema = self.schema
        who = f"u:{user}" if user is not None else f"a:{caller.address}"
        p = await self._prepared(schema, text, request.operation_name, who=who)
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
        variables = self._coerce(p, request.variables)
        if p.defer_vars:
            off = frozenset(v for v in p.defer_vars if variables.get(v) is False)
            if off:  # planned with those fragments inline: the spec says `if: false` is not deferred
                p = await self._prepared(schema, text, request.operation_name, off, who=who)
        if p.required:
            p = await self._authorize(p, caller, who)
        cost = self._estimate(p, variables)
        cap = p.schema.max_cost
        over = settings.demand_control and cost > cap
        if self.budget is not None:
            # Every anonymous operation draws its cost, a user's from expensive_cost on; one over the cap
            # empties the bucket by the cap (refused anyway: that refusal stays its answer), so over- and
            # near-cap documents sent back to back are not free.
            if over:
                await self.budget.charge(user, caller.address, cap)
            elif user is None or cost >= settings.expensive_cost:
                await self.budget.take(user, caller.address, cost)
        if over:
            raise RouterError.of(
                f"The operation's estimated cost ({cost:,.0f}) exceeds the maximum of {cap:,}.",
                "COST_ESTIMATED_TOO_EXPENSIVE",
                cost={"estimated": cost, "max": cap},
            )
        await self.persisted.register(request, text)  # only now: a refused request stores nothing
        return Ready(p, variables, caller, cost)

    async def _authorize(self, p: Prepared, caller: Caller, who: str) -> Prepared:
        """``p`` as ``caller`` may run it: itself, or pruned of the fields the caller may not see
        (planned again, in the worker; kept per combination of failed requirements). Refused
        as a whole (403) with authorization.reject_unauthorized, and for a subscription."""
        failed = await self.authorizer.failed(p.required, caller.identity)
        if not failed:
            return p
        hit = p.authorized.get(failed)
        if hit is None:
            if self.pool is None:
                hit = await self.worker.run((id(p), failed), pruned, p, failed, caller=who)
            else:

                def unpack(value: tuple[bytes, list[Denial]]) -> tuple[Prepared, list[Denial]]:
                    return from_payload(value[0], p.schema, p.source), value[1]

                with telemetry.planning(p.op.name):
                    message = ("prune", *self._source(p), failed)
                    hit = await self.worker.call((id(p), failed), message, p.schema.key, unpack, caller=who)
            if len(p.authorized) < MAX_AUTHORIZED_VARIANTS:
                p.authorized[failed] = hit
        allowed, denials = hit
        reject = self.authorizer.reject or p.op.kind == "subscription"
        by_directive = Counter(d for den in denials for d in den.directives or ("selection",))
        telemetry.note_authorization([den.coordinate for den in denials], by_directive, reject)
        log.info(
            "authorization: %s %s for %s (%s)",
            "refused the request asking for" if reject else "nulled",
            ", ".join(sorted({den.coordinate for den in denials})),
            who,
            ", ".join(sorted(by_directive)),
        )
        if reject:
            raise RouterError(denial_errors(denials), 403)
        return allowed

    def _source(self, p: Prepared) -> tuple[str, str, str | None, frozenset[str], bytes | None]:
        """What a worker process needs to find (or prepare again) ``p``."""
        text, op_name, defer_off = p.source
        return p.schema.key, text, op_name, defer_off, p.schema.document_blobs.get(doc_hash(text))

    async def _prepared(
        self,
        schema: Schema,
        text: str,
        op_name: str | None,
        defer_off: frozenset[str] = frozenset(),
        who: str | None = None,
    ) -> Prepared:
        key = doc_hash(text)
        hit = schema.prepared.get((key, op_name, defer_off))
        if hit is not None:
            return hit
        run = (id(schema), key, op_name, defer_off)
        if self.pool is None:
            doc = schema.documents.get(key)
            p, new_doc = await self.worker.run(run, prepare_new, schema, text, op_name, defer_off, doc, caller=who)
            if new_doc is not None:
                schema.documents.put(key, new_doc, len(text) * DOCUMENT_BYTES_PER_CHAR)
        else:
            message = ("prepare", schema.key, text, op_name, defer_off, schema.document_blobs.get(key))

            def unpack(value: tuple[bytes, bytes | None]) -> tuple[Prepared, bytes | None]:
                return from_payload(value[0], schema, (text, op_name, defer_off)), value[1]

            with telemetry.planning(op_name):
                p, doc_blob = await self.worker.call(run, message, schema.key, unpack, caller=who)
            if doc_blob is not None:
                schema.document_blobs.put(key, doc_blob, len(doc_blob))
        schema.prepared.put((key, op_name, defer_off), p, len(text) * PREPARED_BYTES_PER_CHAR)
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

    def _estimate(self, p: Prepared, variables: Json) -> float:
        cost = p.static_cost
        if cost is None:
            cost = p.schema.cost.estimate(p.op.node, p.fragments, variables)
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
            headers = self.auth.headers(ready.caller)
            data, errors = await executor.execute(p.plan, variables, headers, viewer=ready.caller.viewer)
            errors = self.sanitize(errors)
        else:
            data, errors = {}, []
        if p.introspection:
            # in the worker: the full introspection query takes tens of milliseconds
            if self.pool is None:
                answer = await self.worker.run(object(), introspect, p, variables)
            else:
                message = ("introspect", *self._source(p), variables)
                answer = await self.worker.call(object(), message, p.schema.key, dict)
            data = dict(data or {})
            data.update(answer)
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


def _drop_locations(doc: DocumentNode) -> None:
    """Forget the source locations of a validated document (nothing after validation needs them)."""
    stack: list[Node] = [doc]
    while stack:
        n = stack.pop()
        object.__setattr__(n, "loc", None)  # (nodes are frozen dataclasses)
        for k in n.keys:
            v = getattr(n, k, None)
            if isinstance(v, Node):
                stack.append(v)
            elif isinstance(v, tuple | list):
                stack.extend(x for x in v if isinstance(x, Node))


def _derived_max_cost(settings: Settings, estimator: CostEstimator) -> int:
    """demand_control.manifest_factor x the heaviest operation of the cost manifest (the configured
    persisted-query manifest, else the storefront's), or FALLBACK_MAX_COST."""
    path = settings.cost_manifest or settings.manifest_path
    source = Path(path) if path else STOREFRONT_MANIFEST
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        bodies = [str(op["body"]) for op in data.get("operations", [])]
    except (OSError, ValueError, KeyError, TypeError):
        bodies = []
    factor, page = settings.cost_manifest_factor, settings.max_page_size
    cap = manifest_cap(estimator, bodies, factor, page) if bodies else None
    if cap is None:
        log.info("no operation manifest for this supergraph: demand_control.max_cost is %d", FALLBACK_MAX_COST)
        return FALLBACK_MAX_COST
    log.info("demand_control.max_cost derived from %s: %d", source, cap)
    return cap


def _no_introspection(node: DocumentNode) -> list[GraphQLError]:
    for d in node.definitions:
        if isinstance(d, OperationDefinitionNode):
            for s in d.selection_set.selections:
                if isinstance(s, FieldNode) and s.name.value in ("__schema", "__type"):
                    return [GraphQLError("Introspection is disabled.")]
    return []
