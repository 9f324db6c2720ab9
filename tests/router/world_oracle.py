"""The spec's answer to an operation over a fixture set, without any planner.

Where Apollo Gateway is wrong, the differential tests need another referee: the
operation executed by graphql-core directly over the supergraph's API schema,
every field read from the fixture world (fixtures/fed2.py) or computed by the
fixture subgraphs' own resolvers, given the whole record (so a @requires
field sees what it requires). That is the answer a correct router must give.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo, GraphQLSchema, graphql, specified_directives

from tests.router.fixtures.fed2 import FixtureSet
from tests.router.fixtures.sdl_subgraph import Json, Ref


class WorldOracle:
    def __init__(self, fs: FixtureSet, api_schema: GraphQLSchema) -> None:
        self.fs = fs
        # the same types without @defer, which graphql-core executes only experimentally
        self.schema = GraphQLSchema(
            query=api_schema.query_type,
            mutation=api_schema.mutation_type,
            types=list(api_schema.type_map.values()),
            directives=specified_directives,
        )
        self.resolvers = {k: fn for s in fs.subgraphs for k, fn in s.resolvers.items()}

    def _obj(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self._obj(x) for x in v]
        if isinstance(v, Ref):
            return self._record(v.type, v.id)
        if isinstance(v, dict) and "_type" in v and "_id" in v:
            return self._record(v["_type"], v["_id"])
        return v

    def _record(self, type_name: str, rid: str) -> Json:
        rec = self.fs.world.get(type_name, {}).get(rid, {})
        return {**rec, "__typename": type_name, "_type": type_name, "_id": rid}

    def _resolve(self, obj: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        o: Json = obj if isinstance(obj, dict) else {}
        parent = info.parent_type.name
        names = [parent, *self.fs.implements.get(o.get("_type", ""), ())]
        for t in names:
            fn = self.resolvers.get(f"{t}.{info.field_name}")
            if fn is not None:
                return self._obj(fn(o, args))
        return self._obj(o.get(info.field_name))

    async def answer(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        r = await graphql(
            self.schema,
            query,
            variable_values=variables,
            field_resolver=self._resolve,
            type_resolver=lambda v, *_: v.get("_type") if isinstance(v, dict) else None,
        )
        out: dict[str, Any] = {"data": r.data}
        if r.errors:
            out["errors"] = [e.formatted for e in r.errors]
        return out
