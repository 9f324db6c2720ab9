"""A large generated Federation 2 graph and operations over it, for the planner benchmark.

Deterministic (seeded): ``subgraphs(n_graphs, n_types)`` gives SDLs where every
entity type lives in a home subgraph (keys ``id`` and ``code``), is extended by
two others (one of them keyed by ``code`` only, so reaching it may take two
jumps), references entities of other subgraphs, and shares a value type and
``@shareable`` fields. ``operation(sg, n_fields)`` walks the supergraph from a
root field, selecting fields of every subgraph until ``n_fields`` are selected.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from router.supergraph import Supergraph

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", '
    'import: ["@key", "@shareable", "@external", "@requires", "@provides"])\n'
)


@dataclass
class _Type:
    keys: dict[str, bool] = field(default_factory=dict)  # field set -> resolvable
    fields: dict[str, str] = field(default_factory=dict)  # name -> "Type" with args/directives


def subgraphs(n_graphs: int = 50, n_types: int = 1000, seed: int = 7) -> dict[str, str]:
    rnd = random.Random(seed)
    graphs: list[dict[str, _Type]] = [{} for _ in range(n_graphs)]
    roots: list[list[str]] = [[] for _ in range(n_graphs)]

    def typ(g: int, name: str) -> _Type:
        return graphs[g].setdefault(name, _Type())

    for i in range(n_types):
        name = f"T{i}"
        home = i % n_graphs
        t = typ(home, name)
        t.keys["id"] = True
        t.keys["code"] = True
        t.fields.update({"id": "ID!", "code": "String!", "name": "String! @shareable", "price": "Money", "rank": "Int"})
        for r in range(2):
            j = rnd.randrange(n_types)
            ref = f"T{j}"
            t.fields[f"ref{r}"] = ref
            if j % n_graphs != home:
                stub = typ(home, ref)
                stub.keys.setdefault("id", False)
                stub.fields.setdefault("id", "ID!")
        m = rnd.randrange(n_types)
        many = f"T{m}"
        t.fields["many"] = f"[{many}!]!"
        if m % n_graphs != home:
            stub = typ(home, many)
            stub.keys.setdefault("id", False)
            stub.fields.setdefault("id", "ID!")
        roots[home].append(f"t{i}(id: ID!): {name}")
        # two extensions: one keyed by id, one by code only
        e1, e2 = rnd.sample([g for g in range(n_graphs) if g != home], 2)
        x = typ(e1, name)
        x.keys["id"] = True
        x.fields.update({"id": "ID!", "name": "String! @shareable", f"stock{e1}": "Int", f"note{e1}": "String"})
        y = typ(e2, name)
        y.keys["code"] = True
        y.fields.update({"code": "String!", f"score{e2}": "Float", f"tags{e2}": "[String!]!"})
    out: dict[str, str] = {}
    for g in range(n_graphs):
        parts = [LINK, "type Money @shareable { amount: Int! currency: String! }\n"]
        for name, t in sorted(graphs[g].items()):
            keys = " ".join(
                f'@key(fields: "{k}"' + ("" if res else ", resolvable: false") + ")" for k, res in t.keys.items()
            )
            body = " ".join(f"{f}: {ty}" for f, ty in t.fields.items())
            parts.append(f"type {name} {keys} {{ {body} }}\n")
        root_fields = roots[g] or ["ping: Int"]
        parts.append("type Query { " + " ".join(root_fields) + " }\n")
        out[f"g{g}"] = "".join(parts)
    return out


def operation(sg: Supergraph, n_fields: int, seed: int = 1) -> str:
    """An operation selecting about `n_fields` fields, from a few root fields down."""
    rnd = random.Random(seed)
    root = sg.types["Query"]
    root_fields = sorted(f for f in root.fields if f.startswith("t"))
    count = 0
    parts: list[str] = []

    def select(type_name: str, depth: int) -> str:
        nonlocal count
        tm = sg.types[type_name]
        names = sorted(tm.fields)
        rnd.shuffle(names)
        sels: list[str] = []
        for f in names:
            if count >= n_fields:
                break
            ft = tm.fields[f].type_name
            if ft == "Money":
                sels.append(f"{f} {{ amount currency }}")
                count += 3
            elif sg.is_composite(ft):
                if depth >= 4:
                    continue
                count += 1
                sels.append(f"{f} {{ id {select(ft, depth + 1)} }}")
                count += 1
            else:
                sels.append(f)
                count += 1
        return " ".join(sels)

    n = 0
    while count < n_fields:
        rf = root_fields[rnd.randrange(len(root_fields))]
        ty = root.fields[rf].type_name
        count += 1
        parts.append(f'r{n}: {rf}(id: "1") {{ id {select(ty, 1)} }}')
        n += 1
    return "{ " + " ".join(parts) + " }"
