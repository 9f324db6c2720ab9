"""Random valid operations over an API schema, to attack the planner (issue 7).

Seeded and bounded: the same seed gives the same operations. An operation is a
query over the schema's root fields, nested down a few levels, with what trips
planners: entity jumps at every level, inline fragments on abstract types
(several at one path, on the interface itself, nested), named fragments,
aliases (also one field twice under two aliases), `__typename`,
`@include`/`@skip` on fields and fragments driven by the variables `$a`/`$b`,
and Int arguments, literal or the variable `$n`. The shapes of issue 19's
families (interface objects with non-resolvable keys, partial unions, union
members per subgraph, @requires with arguments and fragments) come from the
fixture supergraphs the operations are generated over (fixtures/families.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
    is_required_argument,
    parse,
    validate,
)

# variables the generated operations may use: every combination is run
VARIABLES = ({"a": True, "b": False}, {"a": False, "b": True}, {"a": True, "b": True})


@dataclass
class _Ctx:
    rng: random.Random
    schema: GraphQLSchema
    vars_used: set[str]
    fragments: dict[str, str]
    aliases: int = 0


def _args(ctx: _Ctx, f: GraphQLField) -> str | None:
    """Arguments for a field: required ones get a value the fixtures know; None if we can't.
    An Int argument (required, or sometimes an optional one) gets a literal or the
    variable `$n`: fields with arguments are what @requires(fields: "f(x: 1)") asks for."""
    parts = []
    for name, a in f.args.items():
        t = get_named_type(a.type)
        if not is_required_argument(a) and not (t.name == "Int" and ctx.rng.random() < 0.3):
            continue
        if t.name in ("ID", "String"):
            parts.append(f'{name}: "o1"')
        elif t.name == "Int":
            if ctx.rng.random() < 0.4:
                ctx.vars_used.add("n")
                parts.append(f"{name}: $n")
            else:
                parts.append(f"{name}: {ctx.rng.randint(1, 3)}")
        else:
            return None
    return "(" + ", ".join(parts) + ")" if parts else ""


def _cond(ctx: _Ctx) -> str:
    r = ctx.rng.random()
    if r < 0.1:
        v = ctx.rng.choice("ab")
        ctx.vars_used.add(v)
        return f" @{ctx.rng.choice(('include', 'skip'))}(if: ${v})"
    return ""


def _selection(ctx: _Ctx, t: GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType, depth: int) -> str:
    rng = ctx.rng
    items: list[str] = []
    if isinstance(t, GraphQLUnionType) or rng.random() < 0.15:
        items.append("__typename")
    if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
        fields = list(t.fields.items())
        for name, f in rng.sample(fields, min(len(fields), rng.randint(1, 3))):
            one = _field(ctx, name, f, depth)
            if one:
                items.append(one)
                if rng.random() < 0.08:  # the same field again, under an alias
                    again = _field(ctx, name, f, depth, alias=True)
                    if again:
                        items.append(again)
    if isinstance(t, GraphQLInterfaceType | GraphQLUnionType):
        possible = list(ctx.schema.get_possible_types(t))
        for p in rng.sample(possible, min(len(possible), rng.randint(0, len(possible)))):
            inner = _selection(ctx, p, depth)
            if rng.random() < 0.15:
                name = f"F{len(ctx.fragments)}"
                ctx.fragments[name] = f"fragment {name} on {p.name} {inner}"
                items.append(f"...{name}{_cond(ctx)}")
            else:
                items.append(f"... on {p.name}{_cond(ctx)} {inner}")
    if isinstance(t, GraphQLObjectType) and rng.random() < 0.1:
        # a type-less fragment (only conditions) around part of the selection
        fields = list(t.fields.items())
        name, f = rng.choice(fields)
        one = _field(ctx, name, f, depth)
        if one:
            v = rng.choice("ab")
            ctx.vars_used.add(v)
            items.append(f"... @include(if: ${v}) {{ {one} }}")
    if not items:
        items.append("__typename")
    return "{ " + " ".join(items) + " }"


def _field(ctx: _Ctx, name: str, f: GraphQLField, depth: int, alias: bool = False) -> str | None:
    args = _args(ctx, f)
    if args is None:
        return None
    head = name + args
    if alias or ctx.rng.random() < 0.1:
        ctx.aliases += 1
        head = f"x{ctx.aliases}: {head}"
    head += _cond(ctx)
    t = get_named_type(f.type)
    if is_leaf_type(t):
        return head
    if depth <= 0:
        return None
    assert isinstance(t, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)
    return f"{head} {_selection(ctx, t, depth - 1)}"


def operations(schema: GraphQLSchema, seed: int, n: int, depth: int = 3) -> list[str]:
    """`n` distinct valid query operations (fewer if the schema is too small)."""
    rng = random.Random(seed)
    query = schema.query_type
    assert query is not None
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(n * 5):
        if len(out) >= n:
            break
        ctx = _Ctx(rng, schema, set(), {})
        body = _selection(ctx, query, depth)
        defs = ", ".join(f"${v}: {'Int!' if v == 'n' else 'Boolean!'}" for v in sorted(ctx.vars_used))
        text = (f"query({defs}) " if defs else "") + body
        if ctx.fragments:
            text += " " + " ".join(ctx.fragments.values())
        if text in seen or "_entities" in text or "_service" in text:
            continue
        if validate(schema, parse(text)):
            continue  # e.g. two aliases of one field merging badly: only valid operations
        seen.add(text)
        out.append(text)
    return out


def variables_for(text: str) -> list[dict[str, bool | int]]:
    used = [v for v in ("a", "b") if f"${v}" in text]
    n: dict[str, bool | int] = {"n": 2} if "$n" in text else {}
    if not used:
        return [n]
    return [{**{k: v for k, v in vs.items() if k in used}, **n} for vs in VARIABLES]
