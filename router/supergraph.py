"""Parse an Apollo Federation 2 supergraph SDL into a routing model + API schema.

The model answers the planner's questions: which subgraphs can resolve a field,
which keys a type has in each subgraph, where @requires/@provides apply. The API
schema (join/link machinery and @inaccessible elements removed) is what clients
see, validate against and introspect.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from graphql import (
    BooleanValueNode,
    DefinitionNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    EnumValueNode,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    TypeNode,
    UnionTypeDefinitionNode,
    ValueNode,
    build_ast_schema,
    parse,
)

_SPEC_DEFAULTS = {
    "https://specs.apollo.dev/join/": "join",
    "https://specs.apollo.dev/link/": "link",
    "https://specs.apollo.dev/inaccessible/": "inaccessible",
    "https://specs.apollo.dev/tag/": "tag",
    # access control (router/authorization.py): enforced by the router, not part of the API schema
    "https://specs.apollo.dev/authenticated/": "authenticated",
    "https://specs.apollo.dev/requiresScopes/": "requiresScopes",
    "https://specs.apollo.dev/policy/": "policy",
}


class SupergraphError(ValueError):
    """The SDL is not a supergraph this router understands."""


@dataclass(frozen=True)
class Key:
    fields: str
    resolvable: bool = True

    @cached_property
    def selection(self) -> SelectionSetNode:
        return parse_field_set(self.fields)


@dataclass
class TypeInGraph:
    keys: list[Key] = field(default_factory=list)
    is_interface_object: bool = False
    extension: bool = False


@dataclass
class FieldInGraph:
    graph: str
    external: bool = False
    requires: str | None = None
    provides: str | None = None
    type: str | None = None
    used_overridden: bool = False
    override: str | None = None
    # progressive @override: with the label on, the graph naming `override`
    # serves the field; with it off, the graph it overrides does
    override_label: str | None = None


@dataclass
class FieldModel:
    name: str
    type_node: TypeNode
    # None: no join__field at all -> resolvable in every graph defining the type
    joins: dict[str, FieldInGraph] | None = None

    @property
    def type_name(self) -> str:
        return named_type(self.type_node)


@dataclass
class TypeModel:
    name: str
    kind: str  # object | interface | union | enum | input | scalar
    graphs: dict[str, TypeInGraph] = field(default_factory=dict)
    fields: dict[str, FieldModel] = field(default_factory=dict)
    # graph -> interfaces this object/interface implements in that graph
    implements: dict[str, set[str]] = field(default_factory=dict)
    # graph -> union members in that graph
    members: dict[str, set[str]] = field(default_factory=dict)
    all_members: list[str] = field(default_factory=list)
    all_interfaces: list[str] = field(default_factory=list)


@dataclass
class Graph:
    enum_value: str
    name: str
    url: str


def named_type(t: TypeNode) -> str:
    while isinstance(t, (NonNullTypeNode, ListTypeNode)):
        t = t.type
    assert isinstance(t, NamedTypeNode)
    return t.name.value


def parse_field_set(fields: str) -> SelectionSetNode:
    op = parse("{" + fields + "}", no_location=True).definitions[0]
    return op.selection_set  # type: ignore[attr-defined, no-any-return]


def _str_arg(d: DirectiveNode, name: str) -> str | None:
    for a in d.arguments or ():
        if a.name.value == name:
            v: ValueNode = a.value
            if isinstance(v, (StringValueNode, EnumValueNode)):
                return v.value
    return None


def _bool_arg(d: DirectiveNode, name: str, default: bool = False) -> bool:
    for a in d.arguments or ():
        if a.name.value == name and isinstance(a.value, BooleanValueNode):
            return a.value.value
    return default


class Supergraph:
    """Routing model of a supergraph. Immutable after construction."""

    def __init__(self, sdl: str) -> None:
        self.sdl = sdl
        try:
            self.document = parse(sdl, no_location=True)
        except Exception as e:  # graphql.GraphQLError
            raise SupergraphError(f"supergraph SDL does not parse: {e}") from e
        self._names = self._spec_names()
        self.join = self._names.get("join", "join")
        self.graphs: dict[str, Graph] = {}
        self.types: dict[str, TypeModel] = {}
        self.root_types: dict[str, str] = {
            "query": "Query",
            "mutation": "Mutation",
            "subscription": "Subscription",
        }
        self._load()
        self.api_schema: GraphQLSchema = self._build_api_schema()

    # ---- spec names (respecting @link(as:)) ----------------------------------
    def _spec_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for d in self.document.definitions:
            if isinstance(d, SchemaDefinitionNode):
                for dir_ in d.directives or ():
                    if dir_.name.value not in ("link", "core"):
                        continue
                    url = _str_arg(dir_, "url") or _str_arg(dir_, "feature") or ""
                    for prefix, default in _SPEC_DEFAULTS.items():
                        if url.startswith(prefix):
                            names[default] = _str_arg(dir_, "as") or default
        if "join" not in names:
            raise SupergraphError("not a supergraph: no @link to the join spec")
        return names

    def directive_name(self, spec: str) -> str:
        """The name a spec's directive has in this supergraph (``@link(as:)`` respected)."""
        return self._d(spec)

    def _d(self, spec: str, name: str = "") -> str:
        prefix = self._names.get(spec, spec)
        return f"{prefix}__{name}" if name else prefix

    # ---- model ---------------------------------------------------------------
    def _load(self) -> None:
        j_graph, j_type, j_field = self._d("join", "graph"), self._d("join", "type"), self._d("join", "field")
        j_impl, j_member = self._d("join", "implements"), self._d("join", "unionMember")
        graph_enum = self._d("join", "Graph")
        for d in self.document.definitions:
            if isinstance(d, SchemaDefinitionNode):
                for op in d.operation_types:
                    self.root_types[op.operation.value] = op.type.name.value
            elif isinstance(d, EnumTypeDefinitionNode) and d.name.value == graph_enum:
                for v in d.values or ():
                    for dir_ in v.directives or ():
                        if dir_.name.value == j_graph:
                            self.graphs[v.name.value] = Graph(
                                v.name.value,
                                _str_arg(dir_, "name") or v.name.value,
                                _str_arg(dir_, "url") or "",
                            )
        for d in self.document.definitions:
            kind = _KINDS.get(type(d))
            if kind is None:
                continue
            name = d.name.value  # type: ignore[attr-defined]
            if name in self.types:
                continue
            tm = TypeModel(name, kind)
            for dir_ in d.directives or ():  # type: ignore[attr-defined]
                dn = dir_.name.value
                g = _str_arg(dir_, "graph")
                if g is None:
                    continue
                if dn == j_type:
                    tig = tm.graphs.setdefault(g, TypeInGraph())
                    kf = _str_arg(dir_, "key")
                    if kf is not None:
                        tig.keys.append(Key(kf, _bool_arg(dir_, "resolvable", True)))
                    tig.is_interface_object |= _bool_arg(dir_, "isInterfaceObject")
                    tig.extension |= _bool_arg(dir_, "extension")
                elif dn == j_impl:
                    iface = _str_arg(dir_, "interface")
                    if iface:
                        tm.implements.setdefault(g, set()).add(iface)
                elif dn == j_member:
                    m = _str_arg(dir_, "member")
                    if m:
                        tm.members.setdefault(g, set()).add(m)
            if isinstance(d, UnionTypeDefinitionNode):
                tm.all_members = [t.name.value for t in d.types or ()]
            if isinstance(d, (ObjectTypeDefinitionNode, InterfaceTypeDefinitionNode)):
                tm.all_interfaces = [t.name.value for t in d.interfaces or ()]
                for f in d.fields or ():
                    fm = FieldModel(f.name.value, f.type)
                    for dir_ in f.directives or ():
                        if dir_.name.value != j_field:
                            continue
                        g = _str_arg(dir_, "graph")
                        if fm.joins is None:
                            fm.joins = {}
                        if g is None:  # join__field without graph: not resolvable anywhere
                            continue
                        fm.joins[g] = FieldInGraph(
                            g,
                            external=_bool_arg(dir_, "external"),
                            requires=_str_arg(dir_, "requires"),
                            provides=_str_arg(dir_, "provides"),
                            type=_str_arg(dir_, "type"),
                            used_overridden=_bool_arg(dir_, "usedOverridden"),
                            override=_str_arg(dir_, "override"),
                            override_label=_str_arg(dir_, "overrideLabel"),
                        )
                    tm.fields[fm.name] = fm
            self.types[name] = tm
        # Types without any join__type (e.g. old supergraphs) live in every graph.
        for tm in self.types.values():
            if not tm.graphs and not tm.name.startswith("__"):
                tm.graphs = {g: TypeInGraph() for g in self.graphs}

    # ---- queries used by the planner -----------------------------------------
    def is_abstract(self, type_name: str) -> bool:
        t = self.types.get(type_name)
        return t is not None and t.kind in ("interface", "union")

    def is_composite(self, type_name: str) -> bool:
        t = self.types.get(type_name)
        return t is not None and t.kind in ("object", "interface", "union")

    @cached_property
    def _possible(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in self.types.values():
            if t.kind == "union":
                out[t.name] = list(t.all_members)
            elif t.kind == "object":
                for i in t.all_interfaces:
                    out.setdefault(i, []).append(t.name)
        return out

    def possible_types(self, type_name: str) -> list[str]:
        """Concrete object types of an abstract (or the type itself)."""
        if not self.is_abstract(type_name):
            return [type_name]
        return self._possible.get(type_name, [])

    def possible_types_in(self, type_name: str, graph: str) -> list[str]:
        """Concrete types a subgraph may return for an abstract type."""
        t = self.types[type_name]
        if t.kind == "union":
            mem = t.members.get(graph)
            if mem is None:  # no join__unionMember: old format, assume all
                return [m for m in t.all_members if graph in self.types[m].graphs]
            return [m for m in t.all_members if m in mem]
        out = []
        for p in self.possible_types(type_name):
            pt = self.types[p]
            impls = pt.implements.get(graph)
            if graph in pt.graphs and ((impls is not None and type_name in impls) or (not pt.implements)):
                out.append(p)
        return out

    def field_graphs(self, type_name: str, field_name: str) -> list[str]:
        """Subgraphs that can resolve a field directly (not external/overridden)."""
        return self._field_graphs.get((type_name, field_name), [])

    @cached_property
    def _field_graphs(self) -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = {}
        for t in self.types.values():
            for f in t.fields.values():
                if f.joins is None:
                    gs = list(t.graphs)
                else:
                    gs = [g for g, j in f.joins.items() if not j.external and not j.used_overridden]
                # Interface fields are resolvable where the interface is an object
                out[(t.name, f.name)] = gs
        return out

    @cached_property
    def override_labels(self) -> dict[tuple[str, str], str]:
        """(type, field) -> label of its progressive @override."""
        out: dict[tuple[str, str], str] = {}
        for t in self.types.values():
            for f in t.fields.values():
                for j in (f.joins or {}).values():
                    if j.override_label:
                        out[(t.name, f.name)] = j.override_label
        return out

    def field_join(self, type_name: str, field_name: str, graph: str) -> FieldInGraph | None:
        f = self.types[type_name].fields.get(field_name)
        if f is None or f.joins is None:
            return None
        return f.joins.get(graph)

    def resolvable_keys(self, type_name: str, graph: str) -> list[Key]:
        tig = self.types[type_name].graphs.get(graph)
        return [k for k in tig.keys if k.resolvable] if tig else []

    def interface_object_graphs(self, type_name: str) -> list[str]:
        t = self.types.get(type_name)
        if t is None:
            return []
        return [g for g, tig in t.graphs.items() if tig.is_interface_object]

    # ---- API schema ----------------------------------------------------------
    def _build_api_schema(self) -> GraphQLSchema:
        doc = _ApiSchemaBuilder(self).build()
        try:
            return build_ast_schema(doc, assume_valid_sdl=True)
        except Exception as e:
            raise SupergraphError(f"cannot build the API schema: {e}") from e


_KINDS: dict[type, str] = {
    ObjectTypeDefinitionNode: "object",
    InterfaceTypeDefinitionNode: "interface",
    UnionTypeDefinitionNode: "union",
    EnumTypeDefinitionNode: "enum",
    InputObjectTypeDefinitionNode: "input",
    ScalarTypeDefinitionNode: "scalar",
}


_DEFER = "directive @defer(label: String, if: Boolean! = true) on FRAGMENT_SPREAD | INLINE_FRAGMENT"


class _ApiSchemaBuilder:
    """Strips federation machinery and @inaccessible elements from the SDL."""

    def __init__(self, sg: Supergraph) -> None:
        self.sg = sg
        self.prefixes = (*tuple(f"{p}__" for p in sg._names.values()), "core__")
        self.machinery = set(sg._names.values()) | {"core"}
        self.inaccessible = sg._names.get("inaccessible", "inaccessible")

    def _is_machinery(self, name: str) -> bool:
        return name in self.machinery or name.startswith(self.prefixes)

    def _hidden(self, node: object) -> bool:
        return any(d.name.value == self.inaccessible for d in getattr(node, "directives", None) or ())

    def _dirs(self, dirs: tuple[DirectiveNode, ...] | None) -> Any:
        return tuple(d for d in dirs or () if not self._is_machinery(d.name.value))

    def build(self) -> DocumentNode:
        defs = self.sg.document.definitions
        self.hidden_types = {
            d.name.value  # type: ignore[attr-defined]
            for d in defs
            if type(d) in _KINDS and (self._hidden(d) or self._is_machinery(d.name.value))  # type: ignore[attr-defined]
        }
        out: list[DefinitionNode] = []
        for d in defs:
            if isinstance(d, SchemaDefinitionNode):
                out.append(
                    replace(
                        d,
                        directives=(),
                        operation_types=tuple(
                            o for o in d.operation_types if o.type.name.value not in self.hidden_types
                        ),
                    )
                )
            elif isinstance(d, DirectiveDefinitionNode):
                if not self._is_machinery(d.name.value):
                    out.append(d)
            elif type(d) in _KINDS:
                if d.name.value not in self.hidden_types:  # type: ignore[attr-defined]
                    out.append(self._strip_type(d))
            elif not isinstance(d, EnumTypeExtensionNode):
                out.append(d)
        if not any(isinstance(d, DirectiveDefinitionNode) and d.name.value == "defer" for d in out):
            # the router serves @defer (incremental delivery) whatever the subgraphs do
            out.append(parse(_DEFER, no_location=True).definitions[0])
        return DocumentNode(definitions=tuple(out))

    def _strip_type(self, d: Any) -> DefinitionNode:
        changes: dict[str, Any] = {"directives": self._dirs(d.directives)}
        if isinstance(d, (ObjectTypeDefinitionNode, InterfaceTypeDefinitionNode)):
            changes["fields"] = tuple(
                replace(
                    f,
                    directives=self._dirs(f.directives),
                    arguments=tuple(self._strip_input_value(a) for a in f.arguments or () if not self._hidden(a)),
                )
                for f in d.fields or ()
                if not self._hidden(f) and named_type(f.type) not in self.hidden_types
            )
            changes["interfaces"] = tuple(i for i in d.interfaces or () if i.name.value not in self.hidden_types)
        elif isinstance(d, UnionTypeDefinitionNode):
            changes["types"] = tuple(t for t in d.types or () if t.name.value not in self.hidden_types)
        elif isinstance(d, EnumTypeDefinitionNode):
            changes["values"] = tuple(
                replace(v, directives=self._dirs(v.directives)) for v in d.values or () if not self._hidden(v)
            )
        elif isinstance(d, InputObjectTypeDefinitionNode):
            changes["fields"] = tuple(self._strip_input_value(f) for f in d.fields or () if not self._hidden(f))
        return replace(d, **changes)  # type: ignore[no-any-return]

    def _strip_input_value(self, v: Any) -> Any:
        return replace(v, directives=self._dirs(v.directives))
