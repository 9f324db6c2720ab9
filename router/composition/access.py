"""The access-control directives (@authenticated, @requiresScopes, @policy; Federation 2.5/2.6)
in composition, as `@apollo/composition` merges them (merge.ts, argumentCompositionStrategies.ts):

- an element carries one application per subgraph; different applications of @requiresScopes /
  @policy merge into the conjunction of their disjunctive normal forms (``dnf_conjunction``);
- an interface (and each interface field) also takes the requirements of its implementations
  (and of their fields), and an @interfaceObject field's reach its implementations' fields, so a
  query through the abstract type can't dodge what the concrete one asks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from graphql import ListValueNode, StringValueNode

from .subgraph import Applied, Subgraph
from .validate import is_external

ACCESS_CONTROL = ("authenticated", "requiresScopes", "policy")
# the argument holding each directive's [[String]] (OR of ANDs); @authenticated has none
ACCESS_ARG = {"requiresScopes": "scopes", "policy": "policies"}
# the spec each directive comes from, and its scalar in the supergraph
SPEC_URL = {
    "authenticated": "https://specs.apollo.dev/authenticated/v0.1",
    "requiresScopes": "https://specs.apollo.dev/requiresScopes/v0.1",
    "policy": "https://specs.apollo.dev/policy/v0.1",
}
DEFINITIONS = {
    "authenticated": "directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM",
    "requiresScopes": "directive @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) "
    "on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM",
    "policy": "directive @policy(policies: [[policy__Policy!]!]!) "
    "on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM",
}
SCALARS = {"requiresScopes": "requiresScopes__Scope", "policy": "policy__Policy"}

Dnf = list[list[str]]


def dnf_of(d: Applied) -> Dnf:
    value = d.args.get(ACCESS_ARG[d.name])
    if not isinstance(value, ListValueNode):
        return []
    return [
        [v.value for v in inner.values if isinstance(v, StringValueNode)]
        for inner in value.values
        if isinstance(inner, ListValueNode)
    ]


def dnf_conjunction(values: Sequence[Dnf]) -> Dnf:
    """Apollo's dnfConjunction: every way of taking one conjunction from each value, merged,
    sorted, deduplicated, and those implied by a shorter one dropped."""
    if not values:
        return []
    distinct: list[Dnf] = []
    for v in values:
        norm = sorted((sorted(inner) for inner in (v or [[]])), key=json.dumps)
        if norm not in distinct:
            distinct.append(norm)
    result = distinct[0]
    for current in distinct[1:]:
        acc: Dnf = []
        for left in result:
            for right in current:
                candidate = sorted([*left, *(e for e in right if e not in left)])
                if candidate not in acc:
                    acc.append(candidate)
        acc.sort(key=len)  # (stable, as Array.prototype.sort)
        kept: Dnf = []
        for c in acc:
            if not any(set(r) <= set(c) for r in kept):
                kept.append(c)
        result = kept
    return result


def merged_application(name: str, applications: Sequence[Applied]) -> str:
    """The supergraph's one application of ``name`` from its applications in the sources."""
    if name == "authenticated":
        return "@authenticated"
    values: list[Dnf] = []
    for a in applications:
        v = dnf_of(a)
        if v not in values:
            values.append(v)
    merged = values[0] if len(values) == 1 else dnf_conjunction(values)
    printed = "[" + ", ".join("[" + ", ".join(json.dumps(s) for s in inner) + "]" for inner in merged) + "]"
    return f"@{name}({ACCESS_ARG[name]}: {printed})"


def extra_sources(subs: Sequence[Subgraph], interfaces_of: dict[str, list[str]]) -> dict[str, list[list[Applied]]]:
    """The additional sources of access-control applications, by element: ``"Iface"`` for a
    type, ``"Type.field"`` for a field (accessControlAdditionalSources in merge.ts).
    ``interfaces_of``: the merged interfaces of each object type."""
    implementations: dict[str, list[str]] = {}
    for obj, itfs in interfaces_of.items():
        for i in itfs:
            implementations.setdefault(i, []).append(obj)
    out: dict[str, list[list[Applied]]] = {}

    def add(key: str, ds: list[Applied]) -> None:
        out.setdefault(key, []).append(ds)

    for s in subs:
        for t in s.types.values():
            if t.kind != "object":
                continue
            own = [d for d in t.directives if d.name in ACCESS_CONTROL]
            if own and not t.has("interfaceObject"):
                for itf in interfaces_of.get(t.name, ()):
                    add(itf, own)
            for f in t.fields.values():
                fd = [d for d in f.directives if d.name in ACCESS_CONTROL]
                if not fd or is_external(s, t, f):
                    continue
                for key in _field_targets(t.name, f.name, t.has("interfaceObject"), implementations, interfaces_of):
                    add(key, fd)
    return out


def _field_targets(
    parent: str,
    fname: str,
    interface_object: bool,
    implementations: dict[str, list[str]],
    interfaces_of: dict[str, list[str]],
) -> Iterator[str]:
    if interface_object:
        others: list[str] = []
        for impl in implementations.get(parent, ()):
            yield f"{impl}.{fname}"
            others.extend(i for i in interfaces_of.get(impl, ()) if i != parent and i not in others)
        for itf in others:
            yield f"{itf}.{fname}"
    else:
        for itf in interfaces_of.get(parent, ()):
            yield f"{itf}.{fname}"
