"""Demand control: the static cost of an operation, before any subgraph is called.

The estimate follows Apollo Router's static cost model (IBM's GraphQL cost
specification): every object (or interface/union) a field returns costs 1,
scalars and enums 0, ``@cost(weight:)`` overrides a field's or type's own cost,
and a list multiplies the cost of what is under it by its expected length —
the value of its ``@listSize(slicingArguments:)`` argument (``first``; at most the
largest page the subgraphs serve, ``demand_control.max_page_size``), else
``@listSize(assumedSize:)``, else the configured default list size. With
``sizedFields`` the length applies to those child lists (Relay connections:
``first`` sizes ``edges``). Mutation root fields cost 10 more. Both sides of
``@skip``/``@include`` and every fragment count (an upper bound).

Directives are read from the supergraph, where composition keeps them.

Introspection is costed like any field (twenty aliases of the full introspection
query returned 1.75 MB for a cost of 0): ``__schema``/``__type`` and the
introspection types count as objects, and their lists (``types``, ``fields``,
``args``, …) have the lengths this schema actually has, on average per parent.

:func:`manifest_cap` derives the default cost cap from the operations a client
ships (the storefront's persisted-query manifest): its heaviest operation, with
its variables' defaults, times a factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    InterfaceTypeDefinitionNode,
    IntValueNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationDefinitionNode,
    SchemaDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    parse,
    validate,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

COST_SPEC = "https://specs.apollo.dev/cost/v0.1"
MUTATION_COST = 10


@dataclass(frozen=True)
class ListSize:
    assumed: int | None
    slicing: tuple[str, ...]
    sized: tuple[str, ...]


@dataclass(frozen=True)
class CostModel:
    fields: dict[tuple[str, str], ListSize]
    field_weights: dict[tuple[str, str], int]
    type_weights: dict[str, int]

    @classmethod
    def from_supergraph(cls, sdl: str) -> CostModel:
        doc = parse(sdl, no_location=True)
        names = _directive_names(doc)
        fields: dict[tuple[str, str], ListSize] = {}
        field_weights: dict[tuple[str, str], int] = {}
        type_weights: dict[str, int] = {}
        for d in doc.definitions:
            if not isinstance(d, ObjectTypeDefinitionNode | ObjectTypeExtensionNode | InterfaceTypeDefinitionNode):
                continue
            for directive in d.directives or ():
                if directive.name.value == names["cost"]:
                    type_weights[d.name.value] = _int(directive, "weight") or 0
            for f in d.fields or ():
                key = (d.name.value, f.name.value)
                for directive in f.directives or ():
                    if directive.name.value == names["listSize"]:
                        fields[key] = ListSize(
                            _int(directive, "assumedSize"),
                            _strings(directive, "slicingArguments"),
                            _strings(directive, "sizedFields"),
                        )
                    elif directive.name.value == names["cost"]:
                        field_weights[key] = _int(directive, "weight") or 0
        return cls(fields, field_weights, type_weights)


def _directive_names(doc: Any) -> dict[str, str]:
    """What the supergraph calls @cost and @listSize (its cost-spec @link may rename them)."""
    names = {"cost": "cost", "listSize": "listSize"}
    for d in doc.definitions:
        if not isinstance(d, SchemaDefinitionNode):
            continue
        for link in d.directives or ():
            if link.name.value != "link":
                continue
            args = {a.name.value: a.value for a in link.arguments or ()}
            url = args.get("url")
            if not isinstance(url, StringValueNode) or not url.value.startswith(COST_SPEC.rsplit("/", 1)[0]):
                continue
            alias = args.get("as")
            prefix = alias.value if isinstance(alias, StringValueNode) else "cost"
            imported: set[str] = set()
            imports = args.get("import")
            if isinstance(imports, ListValueNode):
                imported = {v.value.lstrip("@") for v in imports.values if isinstance(v, StringValueNode)}
            for n in names:
                names[n] = n if n in imported or n == "cost" else f"{prefix}__{n}"
    return names


def _int(d: DirectiveNode, name: str) -> int | None:
    for a in d.arguments or ():
        if a.name.value == name and isinstance(a.value, IntValueNode):
            return int(a.value.value)
    return None


def _strings(d: DirectiveNode, name: str) -> tuple[str, ...]:
    for a in d.arguments or ():
        if a.name.value == name and isinstance(a.value, ListValueNode):
            return tuple(v.value for v in a.value.values if isinstance(v, StringValueNode))
    return ()


class CostEstimator:
    def __init__(
        self, schema: GraphQLSchema, model: CostModel, default_list_size: int, max_page_size: int | None = None
    ) -> None:
        self.schema = schema
        self.model = model
        self.default_list_size = default_list_size
        self.max_page_size = max_page_size  # a slicing argument above it is served (or refused) as this much
        self.introspection = introspection_sizes(schema)

    def estimate(
        self,
        op: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> float:
        root = self.schema.get_root_type(op.operation)
        if root is None:
            return 0.0
        walk = _Walk(self, fragments, variables)
        total = walk.selections(op.selection_set, root, {})
        if op.operation.value == "mutation":
            total += MUTATION_COST * sum(1 for s in op.selection_set.selections if isinstance(s, FieldNode))
        return total


class _Walk:
    def __init__(self, est: CostEstimator, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]):
        self.est = est
        self.fragments = fragments
        self.variables = variables

    def selections(self, ss: SelectionSetNode, parent: GraphQLNamedType, sized: dict[str, float]) -> float:
        total = 0.0
        for s in ss.selections:
            if isinstance(s, FieldNode):
                total += self.field(s, parent, sized)
            elif isinstance(s, InlineFragmentNode):
                cond = self.est.schema.get_type(s.type_condition.name.value) if s.type_condition else parent
                total += self.selections(s.selection_set, cond or parent, sized)
            elif isinstance(s, FragmentSpreadNode):
                frag = self.fragments.get(s.name.value)
                if frag is not None:
                    cond = self.est.schema.get_type(frag.type_condition.name.value)
                    total += self.selections(frag.selection_set, cond or parent, sized)
        return total

    def field(self, node: FieldNode, parent: GraphQLNamedType, sized: dict[str, float]) -> float:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0.0  # __typename on a union
        name = node.name.value
        definition = parent.fields.get(name)
        if definition is None and parent is self.est.schema.query_type:
            definition = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}.get(name)
        if definition is None:
            return 0.0  # __typename
        model = self.est.model
        key = (parent.name, node.name.value)
        inner, is_list = _unwrap(definition.type)
        own = model.field_weights.get(key)
        if own is None:
            composite = isinstance(inner, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)
            own = model.type_weights.get(inner.name, 1 if composite else 0)
        list_size = model.fields.get(key)
        size = self._size(node, definition, list_size)
        if list_size is None and key in self.est.introspection:
            list_size = ListSize(None, (), ())
            size = self.est.introspection[key]
        child_sized: dict[str, float] = {}
        if list_size is not None and list_size.sized:
            child_sized = dict.fromkeys(list_size.sized, size)
            size = 1.0
        children = self.selections(node.selection_set, inner, child_sized) if node.selection_set else 0.0
        if is_list:
            multiplier = sized.get(node.name.value, size if list_size is not None else self.est.default_list_size)
            return multiplier * (own + children)
        if key == ("__Type", "ofType"):
            return size * (own + children)
        return own + children

    def _size(self, node: FieldNode, definition: GraphQLField, ls: ListSize | None) -> float:
        if ls is None:
            return float(self.est.default_list_size)
        sizes = [v for v in (self._arg(node, definition, a) for a in ls.slicing) if v is not None]
        if sizes:
            size = max(sizes)
            cap = self.est.max_page_size
            return float(min(size, cap) if cap is not None else size)
        return float(ls.assumed if ls.assumed is not None else self.est.default_list_size)

    def _arg(self, node: FieldNode, definition: GraphQLField, name: str) -> int | None:
        for a in node.arguments or ():
            if a.name.value != name:
                continue
            v = a.value
            if isinstance(v, VariableNode):
                value = self.variables.get(v.name.value)
                return value if isinstance(value, int) and not isinstance(value, bool) else None
            return int(v.value) if isinstance(v, IntValueNode) else None
        arg = definition.args.get(name)
        default = arg.default_value if arg is not None else None
        return default if isinstance(default, int) and not isinstance(default, bool | BooleanValueNode) else None


def _unwrap(t: GraphQLOutputType) -> tuple[GraphQLNamedType, bool]:
    is_list = False
    while isinstance(t, GraphQLNonNull | GraphQLList):
        if isinstance(t, GraphQLList):
            is_list = True
        t = t.of_type
    return t, is_list


def introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], float]:
    """The expected length of each introspection list in ``schema``: its items over every parent
    that could have it (``fields`` of a scalar is null: it counts as 0). ``__Type.ofType`` is
    not a list, but the chain of them under a type reference is as long as its wrappers
    (``[T!]!``: 3): its "length" ``s`` makes the chain's expected cost ``s + s² + …`` equal to
    the schema's average number of wrappers."""
    types = list(schema.type_map.values())
    n = max(1, len(types))

    def per(total: int, parents: int) -> float:
        return max(1.0, total / max(1, parents))

    composite = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    fields = [f for t in composite for f in t.fields.values()]
    inputs = [t for t in types if hasattr(t, "fields") and t not in composite]
    input_fields = [f for t in inputs for f in t.fields.values()]
    enums = [t for t in types if hasattr(t, "values")]
    abstract = [t for t in types if isinstance(t, GraphQLInterfaceType | GraphQLUnionType)]
    refs = [f.type for f in fields] + [a.type for f in fields for a in f.args.values()]
    refs += [f.type for f in input_fields]
    wrappers = sum(_wrappers(t) for t in refs) / max(1, len(refs))
    return {
        ("__Schema", "types"): float(n),
        ("__Schema", "directives"): float(len(schema.directives)),
        ("__Type", "fields"): per(len(fields), n),
        ("__Type", "interfaces"): per(sum(len(t.interfaces) for t in composite), n),
        ("__Type", "possibleTypes"): per(sum(len(schema.get_possible_types(t)) for t in abstract), n),
        ("__Type", "enumValues"): per(sum(len(t.values) for t in enums), n),
        ("__Type", "inputFields"): per(len(input_fields), n),
        ("__Type", "ofType"): wrappers / (1 + wrappers),
        ("__Field", "args"): per(sum(len(f.args) for f in fields), len(fields)),
        ("__Directive", "args"): per(sum(len(d.args) for d in schema.directives), len(schema.directives)),
    }


def _wrappers(t: Any) -> int:
    n = 0
    while isinstance(t, GraphQLNonNull | GraphQLList):
        n, t = n + 1, t.of_type
    return n


def manifest_cap(estimator: CostEstimator, bodies: list[str], factor: float, page: int) -> int | None:
    """``factor`` times the estimated cost of the heaviest operation in ``bodies``, each with every
    ``Int`` variable at ``page`` (the largest page subgraphs serve: the heaviest a client of these
    operations can ask for); None when none of them validates against this schema."""
    heaviest: float | None = None
    for body in bodies:
        try:
            doc = parse(body, no_location=True)
        except Exception:
            continue
        if validate(estimator.schema, doc):
            continue
        fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
        for op in doc.definitions:
            if isinstance(op, OperationDefinitionNode):
                cost = estimator.estimate(op, fragments, _int_variables(op, page))
                heaviest = cost if heaviest is None else max(heaviest, cost)
    return None if heaviest is None else max(1, math.ceil(heaviest * factor))


def _int_variables(op: OperationDefinitionNode, value: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in op.variable_definitions or ():
        t = v.type
        while isinstance(t, NonNullTypeNode | ListTypeNode):
            t = t.type
        if isinstance(t, NamedTypeNode) and t.name.value == "Int":
            out[v.variable.name.value] = value
    return out
