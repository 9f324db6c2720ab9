"""Parse one Federation 2 subgraph SDL into a small model the merger can query.

Federation directives are resolved through the subgraph's `@link` (imports,
renames, `federation__` prefixes) to canonical names, so the rest of the code
only ever asks for "key", "external", ... whatever the subgraph called them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from graphql import (
    ConstValueNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    FieldNode,
    GraphQLError,
    InlineFragmentNode,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ObjectValueNode,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    SelectionSetNode,
    StringValueNode,
    TypeNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    parse,
)

FEDERATION_URL = re.compile(r"^https://specs\.apollo\.dev/federation/v(\d+)\.(\d+)$")
FEDERATION_DIRECTIVES = (
    "key",
    "requires",
    "provides",
    "external",
    "tag",
    "extends",
    "shareable",
    "inaccessible",
    "override",
    "composeDirective",
    "interfaceObject",
    "authenticated",
    "requiresScopes",
    "policy",
    "context",
    "fromContext",
    "cost",
    "listSize",
)
# Types and fields that federation adds to every subgraph; never merged.
NON_MERGED_TYPES = frozenset(
    {
        "_Any",
        "_Entity",
        "_Service",
        "_FieldSet",
        "FieldSet",
        "federation__FieldSet",
        "link__Import",
        "link__Purpose",
        "federation__Scope",
        "federation__Policy",
        "federation__ContextFieldValue",
    }
)
NON_MERGED_QUERY_FIELDS = frozenset({"_entities", "_service"})
BUILTIN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})
BUILTIN_DIRECTIVES = frozenset({"include", "skip", "deprecated", "specifiedBy", "oneOf"})
ROOT_KINDS = ("query", "mutation", "subscription")
DEFAULT_ROOT_NAMES = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}

EXECUTABLE_LOCATIONS = frozenset(
    {
        "QUERY",
        "MUTATION",
        "SUBSCRIPTION",
        "FIELD",
        "FRAGMENT_DEFINITION",
        "FRAGMENT_SPREAD",
        "INLINE_FRAGMENT",
        "VARIABLE_DEFINITION",
    }
)


class SubgraphParseError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Applied:
    """A directive application; `name` is canonical for federation directives."""

    name: str
    args: dict[str, ConstValueNode]
    block: int = 0  # which definition/extension block of the parent it was written in
    source_name: str = ""  # the name as written in the subgraph

    def str_arg(self, name: str) -> str | None:
        value = self.args.get(name)
        return value.value if isinstance(value, StringValueNode) else None


@dataclass
class InputValue:
    name: str
    type: TypeNode
    description: str | None
    default: ConstValueNode | None
    directives: list[Applied]


@dataclass
class Field:
    name: str
    type: TypeNode
    description: str | None
    args: dict[str, InputValue]
    directives: list[Applied]
    block: int
    default: ConstValueNode | None = None  # input fields only

    def has(self, name: str) -> bool:
        return any(d.name == name for d in self.directives)

    def get(self, name: str) -> Applied | None:
        return next((d for d in self.directives if d.name == name), None)


@dataclass
class EnumValue:
    name: str
    description: str | None
    directives: list[Applied]


@dataclass
class TypeDef:
    kind: str  # "object" | "interface" | "union" | "enum" | "input" | "scalar"
    name: str
    description: str | None = None
    fields: dict[str, Field] = field(default_factory=dict)
    interfaces: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    values: dict[str, EnumValue] = field(default_factory=dict)
    directives: list[Applied] = field(default_factory=list)
    extension_blocks: set[int] = field(default_factory=set)
    definition_blocks: set[int] = field(default_factory=set)

    def has(self, name: str) -> bool:
        return any(d.name == name for d in self.directives)

    def all(self, name: str) -> list[Applied]:
        return [d for d in self.directives if d.name == name]

    @property
    def merged_kind(self) -> str:
        """An @interfaceObject is an interface as far as the supergraph goes."""
        return "interface" if self.kind == "object" and self.has("interfaceObject") else self.kind


@dataclass
class DirectiveDef:
    name: str
    args: dict[str, InputValue]
    repeatable: bool
    locations: list[str]
    description: str | None


@dataclass
class Subgraph:
    name: str
    url: str
    fed_version: tuple[int, int]
    types: dict[str, TypeDef]
    directive_defs: dict[str, DirectiveDef]
    roots: dict[str, str]  # kind -> type name (always the default names)

    def field(self, type_name: str, field_name: str) -> Field | None:
        t = self.types.get(type_name)
        return t.fields.get(field_name) if t else None

    def implementations(self, interface: str) -> list[TypeDef]:
        return [t for t in self.types.values() if interface in t.interfaces and t.kind == "object"]


def named_type(t: TypeNode) -> str:
    while isinstance(t, NonNullTypeNode | ListTypeNode):
        t = t.type
    assert isinstance(t, NamedTypeNode)
    return t.name.value


def type_str(t: TypeNode) -> str:
    if isinstance(t, NonNullTypeNode):
        return type_str(t.type) + "!"
    if isinstance(t, ListTypeNode):
        return "[" + type_str(t.type) + "]"
    assert isinstance(t, NamedTypeNode)
    return t.name.value


def parse_field_set(fields: str) -> SelectionSetNode:
    """Parse a `FieldSet` string (raises GraphQLError on syntax errors)."""
    doc = parse("{" + fields + "}", no_location=True)
    op = doc.definitions[0]
    return op.selection_set  # type: ignore[attr-defined, no-any-return]


def field_set_selections(sel: SelectionSetNode) -> list[FieldNode | InlineFragmentNode]:
    return [s for s in sel.selections if isinstance(s, FieldNode | InlineFragmentNode)]


class _Resolver:
    """Maps directive names as written to canonical federation names."""

    def __init__(self, doc_directives: list[DirectiveNode]) -> None:
        self.names: dict[str, str] = {}
        self.version: tuple[int, int] | None = None
        for d in doc_directives:
            if d.name.value != "link":
                continue
            args = {a.name.value: a.value for a in d.arguments or ()}
            url = args.get("url")
            m = FEDERATION_URL.match(url.value) if isinstance(url, StringValueNode) else None
            if not m:
                continue
            self.version = (int(m.group(1)), int(m.group(2)))
            alias = args.get("as")
            prefix = alias.value if isinstance(alias, StringValueNode) else "federation"
            for name in FEDERATION_DIRECTIVES:
                self.names[f"{prefix}__{name}"] = name
            imports = args.get("import")
            for item in imports.values if isinstance(imports, ListValueNode) else []:
                if isinstance(item, StringValueNode):
                    original = renamed = item.value
                elif isinstance(item, ObjectValueNode):
                    obj = {f.name.value: f.value for f in item.fields}
                    n, a = obj.get("name"), obj.get("as")
                    original = n.value if isinstance(n, StringValueNode) else ""
                    renamed = a.value if isinstance(a, StringValueNode) else original
                else:
                    continue
                if original.startswith("@") and original[1:] in FEDERATION_DIRECTIVES:
                    self.names[renamed.lstrip("@")] = original[1:]

    def applied(self, nodes: tuple[DirectiveNode, ...] | None, block: int = 0) -> list[Applied]:
        out = []
        for d in nodes or ():
            raw = d.name.value
            args: dict[str, ConstValueNode] = {a.name.value: a.value for a in d.arguments or ()}  # type: ignore[misc]
            out.append(Applied(self.names.get(raw, raw), args, block, raw))
        return out


def _desc(node: object) -> str | None:
    d = getattr(node, "description", None)
    return d.value if d is not None else None


def _input_value(r: _Resolver, n: InputValueDefinitionNode) -> InputValue:
    return InputValue(n.name.value, n.type, _desc(n), n.default_value, r.applied(n.directives))


_OBJECT_NODES = (ObjectTypeDefinitionNode, ObjectTypeExtensionNode)
_INTERFACE_NODES = (InterfaceTypeDefinitionNode, InterfaceTypeExtensionNode)
_KINDS: list[tuple[tuple[type, ...], str]] = [
    (_OBJECT_NODES, "object"),
    (_INTERFACE_NODES, "interface"),
    ((UnionTypeDefinitionNode, UnionTypeExtensionNode), "union"),
    ((EnumTypeDefinitionNode, EnumTypeExtensionNode), "enum"),
    ((InputObjectTypeDefinitionNode, InputObjectTypeExtensionNode), "input"),
    ((ScalarTypeDefinitionNode, ScalarTypeExtensionNode), "scalar"),
]
_EXTENSIONS = (
    ObjectTypeExtensionNode,
    InterfaceTypeExtensionNode,
    UnionTypeExtensionNode,
    EnumTypeExtensionNode,
    InputObjectTypeExtensionNode,
    ScalarTypeExtensionNode,
)


def parse_subgraph(name: str, url: str, sdl: str) -> Subgraph:
    try:
        doc = parse(sdl, no_location=True)
    except GraphQLError as e:
        raise SubgraphParseError("INVALID_GRAPHQL", f"[{name}] {e.message}") from e
    schema_directives: list[DirectiveNode] = []
    roots: dict[str, str] = {}
    for d in doc.definitions:
        if isinstance(d, SchemaDefinitionNode | SchemaExtensionNode):
            schema_directives.extend(d.directives or ())
            for op in d.operation_types or ():
                roots[op.operation.value] = op.type.name.value
    r = _Resolver(schema_directives)
    if r.version is None:
        raise SubgraphParseError(
            "UNSUPPORTED_FEDERATION_VERSION",
            f'[{name}] Subgraph "{name}" does not @link the Federation 2 spec '
            "(https://specs.apollo.dev/federation/v2.x); Federation 1 subgraphs are not supported",
        )
    # Root types are merged under their default names, whatever the subgraph calls them.
    renames = {t: DEFAULT_ROOT_NAMES[k] for k, t in roots.items()}
    types: dict[str, TypeDef] = {}
    directive_defs: dict[str, DirectiveDef] = {}
    block = 0
    for d in doc.definitions:
        if isinstance(d, DirectiveDefinitionNode):
            dname = d.name.value
            if dname in r.names or dname in ("link", "core") or dname in BUILTIN_DIRECTIVES:
                continue
            directive_defs[dname] = DirectiveDef(
                dname,
                {a.name.value: _input_value(r, a) for a in d.arguments or ()},
                d.repeatable,
                [loc.value for loc in d.locations],
                _desc(d),
            )
            continue
        kind = next((k for classes, k in _KINDS if isinstance(d, classes)), None)
        if kind is None:
            continue
        tname: str = getattr(d, "name").value  # noqa: B009 (any type node)
        tname = renames.get(tname, tname)
        if tname in NON_MERGED_TYPES or tname.startswith("__"):
            continue
        block += 1
        t = types.get(tname)
        if t is None:
            t = types[tname] = TypeDef(kind, tname)
        elif t.kind != kind:
            raise SubgraphParseError("INVALID_GRAPHQL", f'[{name}] Type "{tname}" is defined with different kinds')
        (t.extension_blocks if isinstance(d, _EXTENSIONS) else t.definition_blocks).add(block)
        if t.description is None:
            t.description = _desc(d)
        t.directives.extend(r.applied(getattr(d, "directives", None), block))
        t.interfaces.extend(i.name.value for i in getattr(d, "interfaces", None) or ())
        t.members.extend(m.name.value for m in getattr(d, "types", None) or ())
        for v in getattr(d, "values", None) or ():
            assert isinstance(v, EnumValueDefinitionNode)
            t.values[v.name.value] = EnumValue(v.name.value, _desc(v), r.applied(v.directives))
        for f in getattr(d, "fields", None) or ():
            if tname == "Query" and f.name.value in NON_MERGED_QUERY_FIELDS:
                continue
            if isinstance(f, FieldDefinitionNode):
                args = {a.name.value: _input_value(r, a) for a in f.arguments or ()}
                t.fields[f.name.value] = Field(f.name.value, f.type, _desc(f), args, r.applied(f.directives), block)
            else:
                assert isinstance(f, InputValueDefinitionNode)
                t.fields[f.name.value] = Field(
                    f.name.value,
                    f.type,
                    _desc(f),
                    {},
                    r.applied(f.directives),
                    block,
                    f.default_value,
                )
    # Federation gives every subgraph a Query type (it hosts `_entities`/`_service`).
    types.setdefault("Query", TypeDef("object", "Query", definition_blocks={0}))
    default_roots = {k: DEFAULT_ROOT_NAMES[k] for k in ROOT_KINDS if DEFAULT_ROOT_NAMES[k] in types}
    return Subgraph(name, url, r.version, types, directive_defs, default_roots)
