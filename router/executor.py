"""Run query plans against subgraphs.

A plan runs as it prints: a Sequence's steps one after another, a Parallel's
branches at once (a slow branch holds up only what waits for its data). Entity fetches
collect representations from the merged data (deduplicated), send one
`_entities` request per plan node and merge results back in place. Identical
in-flight subgraph requests are shared. A failing subgraph yields errors that
name it; the rest of the data still comes back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import orjson

from router import session_cookie, telemetry
from router.breaker import CircuitOpen, Resilient
from router.config import Resilience
from router.entity_cache import EntityCache, Policy, note, now_ms
from router.operation import Field, Frag, Sel, conds_pass
from router.plan import (
    Deferred,
    Fetch,
    Parallel,
    PlanNode,
    QueryPlan,
    Rename,
    Representation,
    Sequence,
    fetch_of,
    objects_at,
    objects_only,
)
from router.subgraph_client import Reply, SubgraphClient, SubgraphHTTPError, SubgraphTimeout

Json = dict[str, Any]


class SubgraphFailure(Exception):
    def __init__(self, graph: str, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.graph = graph
        self.code = code
        self.status = status


class Executor:
    def __init__(
        self,
        urls: Mapping[str, str],
        names: Mapping[str, str],
        client: httpx.AsyncClient,
        timeout: float,
        resilience: Mapping[str, Resilience] | None = None,
    ) -> None:
        self.urls = urls  # graph enum value -> URL
        self.names = names  # graph enum value -> subgraph name
        self.client = client  # general-purpose client (not used for subgraph queries)
        self.http = SubgraphClient()  # pooled keep-alive connections for subgraph queries
        self.timeout = timeout
        policies = dict(resilience or {})
        self.resilient = Resilient(policies, policies.pop("default", None))  # retries, circuit breakers
        self.rng = random.Random()  # progressive @override shares (not security-relevant)
        self._inflight: dict[tuple[str, bytes, tuple[tuple[str, str], ...]], asyncio.Future[Reply]] = {}
        self.cache: EntityCache | None = None  # the entity cache (router/entity_cache.py), when on
        self._readers: dict[int, tuple[Fetch, dict[str, _Reader]]] = {}

    async def execute(
        self,
        plan: QueryPlan,
        variables: Json,
        headers: Mapping[str, dict[str, str]],
        data: Json | None = None,
        first_stage: int = 0,
        viewer: str | None = None,
    ) -> tuple[Json, list[Json]]:
        """Run the plan; a subscription event passes its data as the result of its first step
        (``first_stage`` 1: the plan's Sequence without its root fetch).
        ``viewer`` names the caller whose private cache entries may serve it (None: anonymous)."""
        plan = plan.for_request(self.rng)
        data = {} if data is None else data
        errors: list[Json] = []
        if plan.node is not None:
            node = plan.node if not first_stage else Sequence(plan.node.nodes[first_stage:])
            await self._node(plan, node, data, variables, headers, errors, viewer)
        # a transport that does not deliver incrementally gets deferred parts at once
        parts = plan.deferred
        await asyncio.gather(*(self._node(plan, d.node, data, variables, headers, errors, viewer) for d in parts))
        return data, errors

    async def execute_incremental(
        self, plan: QueryPlan, variables: Json, headers: Mapping[str, dict[str, str]], viewer: str | None = None
    ) -> AsyncIterator[tuple[Json, list[Json], Deferred | None]]:
        """Run the plan, yielding (data, new errors, None) once the primary part
        is done, then (data, new errors, part) as each deferred part finishes."""
        plan = plan.for_request(self.rng)
        data: Json = {}
        errors: list[Json] = []
        if plan.node is not None:
            await self._node(plan, plan.node, data, variables, headers, errors, viewer)
        yield data, errors, None

        async def run(d: Deferred) -> tuple[Deferred, list[Json]]:
            errs: list[Json] = []
            await self._node(plan, d.node, data, variables, headers, errs, viewer)
            return d, errs

        tasks = [asyncio.ensure_future(run(d)) for d in plan.deferred]
        try:
            for done in asyncio.as_completed(tasks):
                d, errs = await done
                yield data, errs, d
        finally:
            for t in tasks:
                t.cancel()

    async def _node(
        self,
        plan: QueryPlan,
        node: PlanNode,
        data: Json,
        variables: Json,
        headers: Mapping[str, dict[str, str]],
        errors: list[Json],
        viewer: str | None,
    ) -> None:
        if isinstance(node, Sequence):
            for n in node.nodes:
                await self._node(plan, n, data, variables, headers, errors, viewer)
        elif isinstance(node, Parallel):
            await asyncio.gather(*(self._node(plan, n, data, variables, headers, errors, viewer) for n in node.nodes))
        else:
            await self._run(plan, fetch_of(node), data, variables, headers, errors, viewer)

    async def _run(
        self,
        plan: QueryPlan,
        f: Fetch,
        data: Json,
        variables: Json,
        headers: Mapping[str, dict[str, str]],
        errors: list[Json],
        viewer: str | None,
    ) -> None:
        if f.conditions and not conds_pass(f.conditions, variables):
            return  # a skipped branch (a Condition node): no subgraph call at all
        vars_: Json = {v: variables[v] for v in f.variable_usages if v in variables}
        if not f.entity:
            if self.cache is not None:
                result = await self._cached_root(self.cache, f, vars_, headers, errors, viewer)
            else:
                result = await self._fetch(f, vars_, headers, errors)
            if result is None:
                return
            d = result.get("data")
            if isinstance(d, dict):
                _unalias(d, f.renames)
                deep_merge(data, d, plan.interface_objects)
            for e in result.get("errors") or ():
                errors.append(self._sub_error(f, e, None))
            return
        reps: list[Json] = []
        index: dict[Any, int] = {}
        targets: list[list[Json]] = []
        readers = self._readers_of(f)
        for obj in objects_only(data, f.path):
            tn = obj.get("__typename")
            reader = readers.get(tn) if isinstance(tn, str) else None
            if reader is None:
                continue
            k = reader[0](obj)
            if k is None:
                continue
            i = index.get(k)
            if i is None:
                index[k] = len(reps)
                reps.append(reader[1](obj))  # built once per distinct representation
                targets.append([obj])
            else:
                targets[i].append(obj)
        if not reps:
            return
        if self.cache is not None:
            idents = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in reps]
            await self._cached_entities(
                self.cache, plan, f, reps, idents, targets, data, vars_, headers, errors, viewer
            )
            return
        vars_["representations"] = reps
        result = await self._fetch(f, vars_, headers, errors)
        if result is None:
            return
        self._merge_entities(plan, f, result, targets, data, errors)

    def _readers_of(self, f: Fetch) -> dict[str, _Reader]:
        """Per fetch, once: typename -> how to read its representation and dedup key from an object."""
        hit = self._readers.get(id(f))
        if hit is not None and hit[0] is f:
            return hit[1]
        readers = {tn: _reader(how) for tn, how in (f.representations or {}).items()}
        self._readers[id(f)] = (f, readers)  # keep `f` alive so id() stays unique
        return readers

    def _merge_entities(
        self,
        plan: QueryPlan,
        f: Fetch,
        result: Json,
        targets: list[list[Json]],
        data: Json,
        errors: list[Json],
    ) -> list[Any] | None:
        """Merge an ``_entities`` answer into its targets; the entities (unaliased), if any."""
        d = result.get("data")
        ents = d.get("_entities") if isinstance(d, dict) else None
        if isinstance(ents, list):
            if f.renames:
                for ent in ents:
                    if isinstance(ent, dict):
                        _unalias(ent, f.renames)
            for i, ent in enumerate(ents[: len(targets)]):
                if isinstance(ent, dict):
                    for obj in targets[i]:
                        deep_merge(obj, ent, plan.interface_objects)
        for e in result.get("errors") or ():
            errors.append(self._sub_error(f, e, (targets, data)))
        return ents if isinstance(ents, list) else None

    # -- through the entity cache -------------------------------------------------------------

    async def _cached_root(
        self,
        cache: EntityCache,
        f: Fetch,
        vars_: Json,
        headers: Mapping[str, dict[str, str]],
        errors: list[Json],
        viewer: str | None,
    ) -> Json | None:
        """A root fetch through the cache: the whole answer per (operation, variables, scope)."""
        name = self.names.get(f.graph, f.graph)
        if f.kind == "mutation":
            result = await self._fetch(f, vars_, headers, errors)
            # Read-your-writes: whatever this subgraph's entries say predates the change.
            await cache.stamp(f"@write:{name}")
            return result
        ident = orjson.dumps(vars_, option=orjson.OPT_SORT_KEYS)
        scope = cache.scope(name, f.operation, viewer)
        if scope is not None:
            hit = (await cache.lookup(name, f.operation, scope[0], [ident], [None]))[0]
            if hit is not None:
                note(scope[1])
                return hit
        fetched = now_ms()
        policy: list[Policy | None] = []
        result = await self._fetch(f, vars_, headers, errors, policy)
        if result is not None and policy and not result.get("errors"):
            cache.learn(name, f.operation, policy[0])
            scope = cache.scope(name, f.operation, viewer)
            if scope is not None:
                await cache.store(name, f.operation, scope[0], scope[1], fetched, [(ident, result)])
        return result

    async def _cached_entities(
        self,
        cache: EntityCache,
        plan: QueryPlan,
        f: Fetch,
        reps: list[Json],
        idents: list[bytes],
        targets: list[list[Json]],
        data: Json,
        vars_: Json,
        headers: Mapping[str, dict[str, str]],
        errors: list[Json],
        viewer: str | None,
    ) -> None:
        """An entity fetch through the cache: hits merged at once, only the misses fetched."""
        name = self.names.get(f.graph, f.graph)
        scope = cache.scope(name, f.operation, viewer)
        hits: list[Json | None] = [None] * len(reps)
        if scope is not None:
            hits = await cache.lookup(name, f.operation, scope[0], idents, [cache.entity_tag(r) for r in reps])
            for i, hit in enumerate(hits):
                if hit is not None:
                    note(scope[1])
                    for obj in targets[i]:
                        deep_merge(obj, hit, plan.interface_objects)
        missing = [i for i, hit in enumerate(hits) if hit is None]
        if not missing:
            return
        vars_["representations"] = [reps[i] for i in missing]
        missed = [targets[i] for i in missing]
        fetched = now_ms()
        policy: list[Policy | None] = []
        result = await self._fetch(f, vars_, headers, errors, policy)
        if result is None:
            return
        ents = self._merge_entities(plan, f, result, missed, data, errors)
        if not policy or result.get("errors") or ents is None or len(ents) != len(missing):
            return
        cache.learn(name, f.operation, policy[0])
        scope = cache.scope(name, f.operation, viewer)
        if scope is not None:
            keep = [(idents[i], ent) for i, ent in zip(missing, ents, strict=True) if isinstance(ent, dict)]
            await cache.store(name, f.operation, scope[0], scope[1], fetched, keep)

    def _sub_error(self, f: Fetch, e: Any, entities: tuple[list[list[Json]], Json] | None) -> Json:
        """A subgraph's error for the client; an ``_entities`` one (``entities``: the fetch's targets
        and the response data they are in) gets the path of the first object it was fetched for."""
        if not isinstance(e, dict):
            e = {"message": str(e)}
        out: Json = {"message": e.get("message", "Subgraph error")}
        path = e.get("path")
        if isinstance(path, list):
            if entities is not None:
                targets, data = entities
                if len(path) >= 2 and path[0] == "_entities" and isinstance(path[1], int) and path[1] < len(targets):
                    first = targets[path[1]][0]
                    at = next(p for obj, p in objects_at(data, f.path) if obj is first)
                    out["path"] = at + path[2:]
            else:
                out["path"] = path
        ext = dict(e.get("extensions") or {})
        ext.setdefault("code", "DOWNSTREAM_SERVICE_ERROR")
        ext["serviceName"] = self.names.get(f.graph, f.graph)
        out["extensions"] = ext
        return out

    def _forget(self, key: tuple[str, bytes, tuple[tuple[str, str], ...]], done: asyncio.Future[Any]) -> None:
        self._inflight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here: if every waiter went away, nobody else will

    async def _fetch(
        self,
        f: Fetch,
        variables: Json,
        by_graph: Mapping[str, dict[str, str]],
        errors: list[Json],
        policy: list[Policy | None] | None = None,
    ) -> Json | None:
        """The subgraph's parsed answer; ``policy`` receives its ``Cache-Control``, parsed."""
        graph = f.graph
        headers = by_graph[graph]
        body = orjson.dumps({"query": f.operation, "variables": variables})
        try:
            if f.kind == "mutation":
                # Never shared: two identical mutations (a double click, two tabs) are two changes.
                raw = await self._post(graph, body, headers, idempotent=False)
                session_cookie.offer(self.names.get(graph, graph), raw.set_cookies)
            else:
                key = (graph, body, tuple(sorted(headers.items())))
                shared = self._inflight.get(key)
                if shared is None:
                    # A task of its own: the client that started it may go away (a closed
                    # subscription, a dropped connection) without failing the others waiting.
                    shared = asyncio.ensure_future(self._post(graph, body, headers))
                    self._inflight[key] = shared
                    shared.add_done_callback(lambda done: self._forget(key, done))
                raw = await asyncio.shield(shared)
            answered = Policy.parse(raw.cache_control) if f.kind == "query" else None
            note(answered)
            if policy is not None:
                policy.append(answered)
            # Each consumer parses its own copy: merged data is mutated in place.
            return self._parse(graph, raw.status, raw.reason, raw.body)
        except SubgraphFailure as sf:
            name = self.names.get(graph, graph)
            err: Json = {
                "message": f"HTTP fetch failed from '{name}': {sf}",
                "extensions": {"code": sf.code, "serviceName": name},
            }
            if sf.status is not None:
                err["extensions"]["http"] = {"status": sf.status}
            errors.append(err)
            return None

    async def _post(self, graph: str, body: bytes, headers: dict[str, str], idempotent: bool = True) -> Reply:
        name = self.names.get(graph, graph)
        try:
            return await self.resilient.call(name, idempotent, lambda: self._send(graph, name, body, headers))
        except CircuitOpen as e:
            raise SubgraphFailure(graph, "SUBREQUEST_HTTP_ERROR", str(e)) from e

    async def _send(self, graph: str, name: str, body: bytes, headers: dict[str, str]) -> Reply:
        url = self.urls[graph]
        try:
            return await telemetry.observed_fetch(
                name, url, headers, lambda h: self.http.send(url, body, h, self.timeout)
            )
        except SubgraphTimeout as e:
            raise SubgraphFailure(graph, "SUBREQUEST_TIMEOUT", f"timed out after {self.timeout}s") from e
        except SubgraphHTTPError as e:
            raise SubgraphFailure(graph, "SUBREQUEST_HTTP_ERROR", str(e) or repr(e)) from e

    def close(self) -> None:
        """Close the subgraph connections (at shutdown)."""
        self.http.close()

    @staticmethod
    def _parse(graph: str, status: int, reason: str, content: bytes) -> Json:
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            parsed = None
        if status >= 400 and not (isinstance(parsed, dict) and ("data" in parsed or "errors" in parsed)):
            raise SubgraphFailure(graph, "SUBREQUEST_HTTP_ERROR", f"{status}: {reason}", status)
        if not isinstance(parsed, dict):
            raise SubgraphFailure(
                graph, "SUBREQUEST_MALFORMED_RESPONSE", "subgraph response is not a GraphQL JSON object", status
            )
        return parsed


# how to read one representation from an object: (its dedup key, or None when the object lacks a
# field of it; the representation itself, asked for once per distinct key)
_Reader = tuple[Callable[[Json], Any], Callable[[Json], Json]]


def _reader(how: Representation) -> _Reader:
    """Read a representation from an object. A flat selection (plain fields: the usual key) is read
    field by field, deduplicated by its values when all are strings or integers (equal as JSON
    exactly when equal as Python values, unlike floats and booleans); else as ``_extract`` does,
    deduplicated by its JSON."""
    tn = how.typename
    sels = how.selection
    # the object's own __typename is the one its reader was chosen by: only its place matters
    lead = bool(sels) and isinstance(sels[0], Field) and sels[0].name == sels[0].key == "__typename"
    rest = sels[1:] if lead else sels
    fields = [(s.key, s.name) for s in rest if isinstance(s, Field) and s.sels is None and s.name != "__typename"]

    def extracted(obj: Json) -> Json | None:
        rep = _extract(obj, sels)
        if rep is not None:
            rep["__typename"] = tn
        return rep

    def as_json(obj: Json) -> bytes | None:
        rep = extracted(obj)
        return None if rep is None else orjson.dumps(rep, option=orjson.OPT_SORT_KEYS)

    def extracted_found(obj: Json) -> Json:  # (asked for only once its key was found)
        rep = extracted(obj)
        assert rep is not None
        return rep

    # the object's keys in the order of the representation's sorted field names
    by_name = sorted({name: key for key, name in fields}.items())
    if len(fields) < len(rest) or len(by_name) < len(fields):
        return as_json, extracted_found

    def flat(obj: Json) -> Json:
        rep: Json = {"__typename": tn} if lead else {}
        for key, name in fields:
            rep[name] = obj[key]  # representations use field names (internal aliases dropped)
        rep["__typename"] = tn
        return rep

    sig = tn + "|" + ",".join(name for name, _ in by_name)  # equal keys: equal typename, names, values
    if len(by_name) == 1:  # the usual key: one field
        [(_, only)] = by_name

        def one(obj: Json) -> Any:
            v = obj.get(only, _MISSING)
            if v is _MISSING:
                return None
            t = type(v)
            return (sig, v) if t is str or t is int else as_json(obj)

        return one, flat
    keys = [key for _, key in by_name]

    def several(obj: Json) -> Any:
        try:
            values = [obj[k] for k in keys]
        except KeyError:
            return None
        for v in values:
            t = type(v)
            if t is not str and t is not int:
                return as_json(obj)
        return (sig, *values)

    return several, flat


def _extract(obj: Json, sels: tuple[Sel, ...] | list[Sel]) -> Json | None:
    out: Json = {}
    for s in sels:
        if isinstance(s, Frag):
            tn = obj.get("__typename")
            if s.type_cond is None or s.type_cond == tn:
                sub = _extract(obj, s.sels)
                if sub is None:
                    return None
                out.update(sub)
            continue
        assert isinstance(s, Field)
        if s.key not in obj:
            return None
        v = obj[s.key]
        if s.sels is not None and v is not None:
            v = _extract_value(v, s.sels)
            if v is _MISSING:
                return None
        out[s.name] = v  # representations use field names (internal aliases dropped)
    return out


_MISSING: Any = object()


def _extract_value(v: Any, sels: list[Sel]) -> Any:
    if isinstance(v, list):
        items = [_extract_value(x, sels) if x is not None else None for x in v]
        return _MISSING if any(x is _MISSING for x in items) else items
    if isinstance(v, dict):
        r = _extract(v, sels)
        return _MISSING if r is None else r
    return v


def _unalias(value: Json, renames: tuple[Rename, ...]) -> None:
    """Give internally aliased fields their response keys back."""
    for r in renames:
        for obj in objects_only(value, r.path):
            if obj.get("__typename") == r.typename and r.alias in obj:
                obj[r.key] = obj.pop(r.alias)


def deep_merge(target: Json, src: Json, provisional: frozenset[str] = frozenset()) -> None:
    """Merge `src` into `target`. A `__typename` naming an interface object
    (`provisional`) gives way to the concrete type; a concrete one is kept."""
    for k, v in src.items():
        cur = target.get(k)
        if cur is None:
            target[k] = v
        elif k == "__typename":
            if cur in provisional:
                target[k] = v
        elif isinstance(cur, dict) and isinstance(v, dict):
            deep_merge(cur, v, provisional)
        elif isinstance(cur, list) and isinstance(v, list) and len(cur) == len(v):
            for i, (a, b) in enumerate(zip(cur, v, strict=True)):
                if isinstance(a, dict) and isinstance(b, dict):
                    deep_merge(a, b, provisional)
                elif a is None:
                    cur[i] = b
        else:
            target[k] = v
