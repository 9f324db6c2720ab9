"""Shape merged subgraph data into the client's response, per the GraphQL spec.

Fields come out in requested order under their aliases; `null` in a non-null
position propagates to the nearest nullable parent; only what the client asked
for is returned (keys/requires fetched for planning are dropped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
)

from router.errors import unauthorized_error
from router.operation import Cond, Field, Frag, Sel, conds_pass
from router.plan import Deferred, objects_at

_INVALID: Any = object()  # a null that must propagate to the parent

# one occurrence of a response key: (conditions, sub-selections, position in the document)
_Variant = tuple[tuple[Cond, ...], list[Sel] | None, int]
# collected field: response key -> (field name, [variants], unauthorized in every occurrence)
Collected = list[tuple[str, str, list[_Variant], bool]]
# shaping plan entry: (key, field name, conditional variants or None, merged
# sub-selections when unconditional, field type or None for introspection fields,
# position of its first occurrence, unauthorized: null with an error)
_Entry = tuple[str, str, list[_Variant] | None, list[Sel] | None, Any, int, bool]
# response path as a linked list (parent, key), built only into a list on errors
Path = tuple[Any, str | int] | None


def _path_list(path: Path) -> list[str | int]:
    out: list[str | int] = []
    while path is not None:
        path, key = path
        out.append(key)
    out.reverse()
    return out


class Shaper:
    """Per-schema shaper; caches field collection per (selection, type)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self._collected: dict[tuple[int, str], tuple[list[Sel], Collected]] = {}
        self._plans: dict[tuple[int, str], tuple[list[Sel], list[_Entry]]] = {}
        self._primary: dict[int, tuple[list[Sel], list[Sel]]] = {}
        self._compiled: dict[tuple[int, str], tuple[list[Sel], Callable[[dict[str, Any]], dict[str, Any]]]] = {}
        self._generic: dict[int, list[Sel]] = {}  # operations only _Ctx shapes (kept alive for id())

    def plan(self, sels: list[Sel], t: GraphQLObjectType) -> list[_Entry]:
        """The collected fields of ``sels`` on ``t``, with their definitions; sub-selections
        merged ahead of time when no @include/@skip applies (the common case)."""
        k = (id(sels), t.name)
        hit = self._plans.get(k)
        if hit is not None and hit[0] is sels:
            return hit[1]
        entries: list[_Entry] = []
        for key, name, variants, denied in self.collect(sels, t.name):
            fdef = t.fields.get(name)
            static = all(not conds for conds, _, _ in variants)
            subs: list[Sel] | None = None
            if static:
                for _, sub, _ in variants:
                    if sub is not None:
                        subs = sub if subs is None else subs + sub
            ftype = None if fdef is None else fdef.type
            entries.append((key, name, None if static else variants, subs, ftype, variants[0][2], denied))
        self._plans[k] = (sels, entries)  # keep `sels` alive so id() stays unique
        return entries

    def collect(self, sels: list[Sel], type_name: str) -> Collected:
        k = (id(sels), type_name)
        hit = self._collected.get(k)
        if hit is not None and hit[0] is sels:
            return hit[1]
        order: dict[str, tuple[str, list[_Variant]]] = {}
        allowed: set[str] = set()  # keys with an authorized occurrence
        self._collect(sels, type_name, (), order, [0], allowed)
        res: Collected = [(key, name, variants, key not in allowed) for key, (name, variants) in order.items()]
        self._collected[k] = (sels, res)  # keep `sels` alive so id() stays unique
        return res

    def _collect(
        self,
        sels: list[Sel],
        type_name: str,
        conds: tuple[Cond, ...],
        order: dict[str, tuple[str, list[_Variant]]],
        seq: list[int],
        allowed: set[str],
    ) -> None:
        for s in sels:
            if isinstance(s, Field):
                entry = order.get(s.key)
                if entry is None:
                    entry = order[s.key] = (s.name, [])
                entry[1].append((conds + s.conds, s.sels, seq[0]))
                if not s.denied:
                    allowed.add(s.key)
                seq[0] += 1
            elif isinstance(s, Frag) and self._applies(s.type_cond, type_name):
                self._collect(s.sels, type_name, conds + s.conds, order, seq, allowed)

    def _applies(self, cond: str | None, type_name: str) -> bool:
        if cond is None or cond == type_name:
            return True
        t = self.schema.type_map.get(cond)
        o = self.schema.type_map.get(type_name)
        if isinstance(t, (GraphQLInterfaceType, GraphQLUnionType)) and isinstance(o, GraphQLObjectType):
            return self.schema.is_sub_type(t, o)
        return False

    def shape(
        self,
        root_type: GraphQLObjectType,
        sels: list[Sel],
        data: dict[str, Any] | None,
        variables: dict[str, Any],
        errors: list[dict[str, Any]],
    ) -> dict[str, Any] | None:
        if id(sels) not in self._generic:
            # The compiled shaper answers when nothing needs an error; on anything else (a null in
            # a non-null position, an unknown enum value or __typename, a field @include/@skip
            # decides or the caller may not see) the whole response is shaped again here.
            try:
                return self.compiled(sels, root_type)(data or {})
            except _Fallback as fb:
                if fb.always:
                    self._generic[id(sels)] = sels
        ctx = _Ctx(self, variables, errors)
        r = ctx.obj(data or {}, root_type, sels, None)
        return None if r is _INVALID or r is None else r

    def compiled(self, sels: list[Sel], t: GraphQLObjectType) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """``sels`` on ``t`` as one Python function, made once: a dict display of the fields
        (plain nullable leaves read straight from the object), each other field through a
        completer made for its type. It raises ``_Fallback`` where ``_Ctx`` would add an error."""
        k = (id(sels), t.name)
        hit = self._compiled.get(k)
        if hit is not None and hit[0] is sels:
            return hit[1]
        fn = self._compile(sels, t)
        self._compiled[k] = (sels, fn)  # keep `sels` alive so id() stays unique
        return fn

    def _compile(self, sels: list[Sel], t: GraphQLObjectType) -> Callable[[dict[str, Any]], dict[str, Any]]:
        entries = self.plan(sels, t)
        if any(variants is not None or denied for _, _, variants, _, _, _, denied in entries):

            def generic_only(_: dict[str, Any]) -> dict[str, Any]:
                raise _Fallback(always=True)

            return generic_only
        env: dict[str, Any] = {"_nn": _non_null}
        lines: list[str] = []
        items: list[str] = []
        for n, (key, name, _, subs, ftype, _, _) in enumerate(entries):
            if name == "__typename":
                items.append(f"{key!r}: {t.name!r}")
            elif ftype is None or (subs is None and _plain_leaf(ftype)):
                items.append(f"{key!r}: get({key!r})")
            else:
                lines.append(f"    v{n} = get({key!r})\n")
                items.append(f"{key!r}: {self._expr(ftype, subs, f'v{n}', env, 0)}")
        src = "def shape(value):\n    get = value.get\n" + "".join(lines) + "    return {" + ", ".join(items) + "}\n"
        exec(compile(src, f"<shape {t.name}>", "exec"), env)  # GraphQL names, repr()-quoted
        fn: Callable[[dict[str, Any]], dict[str, Any]] = env["shape"]
        return fn

    def _expr(self, t: Any, subs: list[Sel] | None, var: str, env: dict[str, Any], depth: int) -> str:
        """``_Ctx.complete`` of the value named ``var`` for one field type, as a Python expression
        (list items in comprehensions); without paths, errors fall back to ``_Ctx``."""
        if type(t) is GraphQLNonNull:
            return f"_nn({self._expr(t.of_type, subs, var, env, depth)})"
        if type(t) is GraphQLList:
            x = f"x{depth}"
            item = self._expr(t.of_type, subs, x, env, depth + 1)
            return f"([{item} for {x} in {var}] if type({var}) is list else None)"
        name = f"f{len(env)}"
        if subs is None:
            if type(t) is not GraphQLEnumType:
                return var
            env[name] = _enum_check(t.values)
            return f"{name}({var})"
        if type(t) is GraphQLObjectType:
            env[name] = self.compiled(subs, t)  # a smaller selection: compiling ends
            return f"({name}({var}) if type({var}) is dict else None)"
        env[name] = self._abstract(subs)
        return f"{name}({var})"

    def _abstract(self, subs: list[Sel]) -> Callable[[Any], Any]:
        type_map = self.schema.type_map
        by_type: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

        def abstract(v: Any) -> Any:
            if type(v) is not dict:
                return None
            tn = v.get("__typename")
            shape = by_type.get(tn) if isinstance(tn, str) else None
            if shape is None:
                found = type_map.get(tn) if isinstance(tn, str) else None
                if not isinstance(found, GraphQLObjectType):
                    raise _Fallback(always=False)
                shape = by_type[found.name] = self.compiled(subs, found)
            return shape(v)

        return abstract

    def primary(self, sels: list[Sel]) -> list[Sel]:
        """`sels` without their @defer fragments (shaped when those arrive)."""
        hit = self._primary.get(id(sels))
        if hit is not None and hit[0] is sels:
            return hit[1]
        out = _without_deferred(sels)
        self._primary[id(sels)] = (sels, out)  # keep `sels` alive so id() stays unique
        return out

    def shape_deferred(
        self, part: Deferred, data: dict[str, Any], variables: dict[str, Any], errors: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Incremental items of a finished deferred part: one per object at its
        path, with the errors under that object's path."""
        sels = self.primary(list(part.selection))
        items: list[dict[str, Any]] = []
        for obj, path in objects_at(data, part.path):
            typename = obj.get("__typename")
            tn: str = typename if isinstance(typename, str) else part.type_condition
            ot = self.schema.type_map.get(tn)
            if not isinstance(ot, GraphQLObjectType) or not self._applies(part.type_condition, ot.name):
                continue
            n = len(path)
            mine = [e for e in errors if list(e.get("path") or ())[:n] == path]
            ctx = _Ctx(self, variables, mine)
            linked: Path = None
            for k in path:
                linked = (linked, k)
            r = ctx.obj(obj, ot, sels, linked)
            item: dict[str, Any] = {"data": None if r is _INVALID else r, "path": path}
            if part.label:
                item["label"] = part.label
            if mine:
                item["errors"] = mine
            items.append(item)
        return items


class _Fallback(Exception):
    """The compiled shaper met what needs an error; ``always``: it will for every response."""

    def __init__(self, always: bool) -> None:
        super().__init__()
        self.always = always


def _non_null(r: Any) -> Any:
    if r is None:
        raise _Fallback(always=False)
    return r


def _enum_check(values: Any) -> Callable[[Any], Any]:
    def enum(v: Any) -> Any:
        if v is not None and v not in values:
            raise _Fallback(always=False)
        return v

    return enum


def _plain_leaf(t: Any) -> bool:
    """A nullable scalar: what the subgraph sent is the answer."""
    return type(t) is not GraphQLNonNull and type(t) is not GraphQLList and type(t) is not GraphQLEnumType


def _without_deferred(sels: list[Sel]) -> list[Sel]:
    out: list[Sel] = []
    for s in sels:
        if isinstance(s, Frag):
            if s.defer is None:
                out.append(Frag(s.type_cond, _without_deferred(s.sels), s.dirs, s.conds, s.variables))
        elif s.sels is not None:
            out.append(Field(s.key, s.name, s.args, s.dirs, s.conds, _without_deferred(s.sels), s.variables))
        else:
            out.append(s)
    return out


class _Ctx:
    __slots__ = ("error_paths", "errors", "shaper", "variables")

    def __init__(self, shaper: Shaper, variables: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        self.shaper = shaper
        self.variables = variables
        self.errors = errors
        self.error_paths = [tuple(e["path"]) for e in errors if e.get("path")]

    def obj(self, value: dict[str, Any], t: GraphQLObjectType, sels: list[Sel], path: Path) -> Any:
        out: dict[str, Any] = {}
        variables = self.variables
        # a key whose first occurrence is skipped comes where its first included one is
        # (CollectFields): positions of the keys, kept only when one moved
        moved: dict[str, int] | None = None
        entries = self.shaper.plan(sels, t)
        for key, name, variants, subs, ftype, first, denied in entries:
            if variants is not None:  # conditional: @include/@skip decide per request
                at = -1
                for conds, s, pos in variants:
                    if not conds or conds_pass(conds, variables):
                        if at < 0:
                            at = pos
                        if s is not None:
                            subs = s if subs is None else subs + s
                if at < 0:
                    continue
                if at != first:
                    if moved is None:
                        moved = {e[0]: e[5] for e in entries if e[0] in out}
                    moved[key] = at
            if moved is not None:
                moved.setdefault(key, first)
            if name == "__typename":
                out[key] = t.name
                continue
            if ftype is None:  # introspection fields are merged in by http.py
                out[key] = value.get(key)
                continue
            if denied:  # never fetched: null, and why (router/authorization.py)
                self.unauthorized(_path_list((path, key)))
                if type(ftype) is GraphQLNonNull:
                    return _INVALID
                out[key] = None
                continue
            r = self.complete(value.get(key), ftype, subs, path, key, t.name, name)
            if r is _INVALID:
                return _INVALID
            out[key] = r
        if moved is not None:
            return {k: out[k] for k in sorted(out, key=moved.__getitem__)}
        return out

    def complete(
        self, v: Any, t: Any, subs: list[Sel] | None, parent_path: Path, key: str | int, parent_type: str, fname: str
    ) -> Any:
        if type(t) is GraphQLNonNull:
            r = self.complete(v, t.of_type, subs, parent_path, key, parent_type, fname)
            if r is None or r is _INVALID:
                if r is None:
                    self.null_error(_path_list((parent_path, key)), parent_type, fname)
                return _INVALID
            return r
        if v is None:
            return None
        if type(t) is GraphQLList:
            if type(v) is not list:
                return None
            p = (parent_path, key)
            out = []
            inner = t.of_type
            for i, item in enumerate(v):
                r = self.complete(item, inner, subs, p, i, parent_type, fname)
                if r is _INVALID:
                    return None
                out.append(r)
            return out
        if subs is None:
            # leaf: subgraphs already serialized scalars and enums; an enum value the
            # API schema lacks (@inaccessible, or unknown) must not reach the client
            if type(t) is GraphQLEnumType and v not in t.values:
                self.invalid_value(_path_list((parent_path, key)), parent_type, fname)
                return None
            return v
        if type(v) is not dict:
            return None
        if type(t) is GraphQLObjectType:
            ot = t
        else:
            tn = v.get("__typename")
            found = self.shaper.schema.type_map.get(tn) if isinstance(tn, str) else None
            if not isinstance(found, GraphQLObjectType):
                # a type the client can't see (@inaccessible, unknown to the
                # supergraph, or never resolved): null, and say so
                self.unresolved_type(_path_list((parent_path, key)), parent_type, fname)
                return None
            ot = found
        r = self.obj(v, ot, subs, (parent_path, key))
        return None if r is _INVALID else r

    def unauthorized(self, path: list[str | int]) -> None:
        self.errors.append(unauthorized_error(path))
        self.error_paths.append(tuple(path))

    def invalid_value(self, path: list[str | int], parent_type: str, fname: str) -> None:
        self.errors.append(
            {
                "message": f"Invalid value found for field {parent_type}.{fname}.",
                "path": path,
                "extensions": {"code": "INVALID_GRAPHQL"},
            }
        )
        self.error_paths.append(tuple(path))

    def unresolved_type(self, path: list[str | int], parent_type: str, fname: str) -> None:
        tp = tuple(path)
        n = len(tp)
        if any(ep[:n] == tp or tp[: len(ep)] == ep for ep in self.error_paths):
            return  # a subgraph already explained why this object is missing
        self.errors.append(
            {
                "message": f"Invalid __typename found for object at field {parent_type}.{fname}.",
                "path": path,
                "extensions": {"code": "INVALID_GRAPHQL"},
            }
        )
        self.error_paths.append(tp)

    def null_error(self, path: list[str | int], parent_type: str, fname: str) -> None:
        tp = tuple(path)
        n = len(tp)
        for ep in self.error_paths:
            if ep[:n] == tp or tp[: len(ep)] == ep:
                return  # a subgraph already explained this null
        self.errors.append(
            {
                "message": f"Cannot return null for non-nullable field {parent_type}.{fname}.",
                "path": path,
                "extensions": {"code": "INVALID_GRAPHQL"},
            }
        )
        self.error_paths.append(tp)
