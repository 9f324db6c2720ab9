"""Cache hints: what a subgraph lets the router (and CDNs) cache, sent as ``Cache-Control``.

A subgraph declares hints per type (``"Product"``) and per field
(``"Query.products"``): a max age in seconds and a scope, ``PUBLIC`` (the same
for every caller) or ``PRIVATE`` (only for the caller who asked). The policy of
one response follows Apollo Server's cache-control rules, computed from the
operation alone (so once per distinct document):

- a root field, or a field returning an object, interface or union, counts
  with its field hint, else its type's hint, else max age 0 (not cacheable);
  ``inherit`` hints (connections, edges, money) add no limit of their own;
- a leaf field counts only if it has a field hint of its own;
- inside an abstract field (``_entities``), each inline fragment's type counts
  with its type hint: an ``_entities`` fetch of products is as cacheable as
  ``Product`` says;
- the response's max age is the smallest counted, its scope ``PRIVATE`` if any
  counted hint is. Mutations, subscriptions and responses with errors are never
  cacheable;
- a resolver whose answer depends on the caller (``context.answer_depends_on_caller()``,
  e.g. catalog's admin-only ``includeArchived``) makes the response ``private``,
  whatever the hints say: a shared cache never serves it to another caller.

The router reads the header to decide what its entity cache may keep and for
whom (``router/entity_cache.py``); hints only ever allow caching, domain events
invalidate what changed (``catalog`` writes them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    is_object_type,
)
from starlette.datastructures import MutableHeaders
from strawberry.extensions import SchemaExtension

NO_STORE = "no-store"


class Scope(Enum):
    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True)
class CacheHint:
    max_age: int = 0
    scope: Scope = Scope.PUBLIC
    inherit: bool = False  # no limit of its own: the enclosing field's policy applies


INHERIT = CacheHint(inherit=True)


@dataclass(frozen=True)
class CachePolicy:
    max_age: int
    scope: Scope

    @property
    def header(self) -> str:
        return NO_STORE if self.max_age <= 0 else f"max-age={self.max_age}, {self.scope.value}"


UNCACHEABLE = CachePolicy(0, Scope.PUBLIC)


class _Walk:
    """The policy of one operation: the smallest max age met, and whether any hint was private."""

    def __init__(self, schema: GraphQLSchema, hints: Mapping[str, CacheHint], document: DocumentNode) -> None:
        self.schema = schema
        self.hints = hints
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.max_age: int | None = None
        self.private = False

    def count(self, hint: CacheHint | None) -> None:
        if hint is None:
            self.max_age = 0
            return
        if hint.scope is Scope.PRIVATE:
            self.private = True
        if not hint.inherit:
            self.max_age = hint.max_age if self.max_age is None else min(self.max_age, hint.max_age)

    def selections(self, node: SelectionSetNode, parent: GraphQLObjectType, root: bool, abstract: bool) -> None:
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent, root)
            else:
                if isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    body = selection.selection_set
                else:
                    assert isinstance(selection, FragmentSpreadNode)
                    fragment = self.fragments[selection.name.value]
                    condition, body = fragment.type_condition, fragment.selection_set
                target = self.schema.get_type(condition.name.value) if condition else parent
                if abstract and condition is not None:
                    self.count(self.hints.get(condition.name.value))
                if is_object_type(target):
                    assert isinstance(target, GraphQLObjectType)
                    self.selections(body, target, root, False)
                else:  # a fragment on an interface or union inside one: same parent object
                    self.selections(body, parent, root, abstract)

    def field(self, node: FieldNode, parent: GraphQLObjectType, root: bool) -> None:
        name = node.name.value
        if name.startswith("__"):
            return
        definition = parent.fields.get(name)
        if definition is None:
            return  # validation has refused it already
        returned = get_named_type(definition.type)
        own = self.hints.get(f"{parent.name}.{name}")
        if own is not None:
            self.count(own)
        elif is_abstract_type(returned):
            # Counted per concrete type at its fragments, unless the abstract type has a hint.
            if returned.name in self.hints:
                self.count(self.hints[returned.name])
        elif is_composite_type(returned) or root:
            self.count(self.hints.get(returned.name))
        if node.selection_set is not None:
            if is_object_type(returned):
                assert isinstance(returned, GraphQLObjectType)
                self.selections(node.selection_set, returned, False, False)
            elif is_abstract_type(returned):
                abstract_parent = self._any_object(returned.name)
                if abstract_parent is not None:
                    self.selections(node.selection_set, abstract_parent, False, own is None)

    def _any_object(self, abstract: str) -> GraphQLObjectType | None:
        # Fields selected directly on an interface exist on every implementation: any one serves for lookups.
        types = self.schema.get_possible_types(self.schema.get_type(abstract))  # type: ignore[arg-type]
        return types[0] if types else None


class CachePolicies:
    """One schema's hints, and the policy of each distinct operation (memoised).

    Memoised by the document's identity, not its value: graphql-core hashes a document by walking
    every node (a third of a millisecond for a router's query, on every request), and the same
    query text gives the same document object (``kit.schema.CachedParse``). The entry keeps its
    document, so an id is never reused while it is remembered."""

    MAX_ENTRIES = 1024

    def __init__(self, hints: Mapping[str, CacheHint]) -> None:
        self.hints = dict(hints)
        self._memo: dict[tuple[int, int, str | None], tuple[DocumentNode, CachePolicy]] = {}

    def of(self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> CachePolicy:
        key = (id(schema), id(document), operation_name)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is document:
            return hit[1]
        policy = self._compute(schema, document, operation_name)
        if len(self._memo) >= self.MAX_ENTRIES:
            self._memo.clear()
        self._memo[key] = (document, policy)
        return policy

    def _compute(self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> CachePolicy:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
        if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY or schema.query_type is None:
            return UNCACHEABLE
        walk = _Walk(schema, self.hints, document)
        walk.selections(chosen[0].selection_set, schema.query_type, True, False)
        if not walk.max_age:
            return UNCACHEABLE
        return CachePolicy(walk.max_age, Scope.PRIVATE if walk.private else Scope.PUBLIC)


class CacheControl(SchemaExtension):
    """Sets ``Cache-Control`` on every HTTP response from the schema's cache hints."""

    def __init__(self, policies: CachePolicies) -> None:
        super().__init__()
        self.policies = policies

    def on_execute(self) -> Iterator[None]:
        yield
        context = self.execution_context
        headers: MutableHeaders | None = getattr(context.context, "response_headers", None)
        if headers is None:
            return
        result = context.result
        document = context.graphql_document
        if document is None or result is None or getattr(result, "errors", None) or context.pre_execution_errors:
            headers["cache-control"] = NO_STORE
            return
        policy = self.policies.of(context.schema._schema, document, context.operation_name)
        if getattr(context.context, "answer_is_private", False) and policy.scope is Scope.PUBLIC:
            policy = CachePolicy(policy.max_age, Scope.PRIVATE)  # a resolver said: not the same for everyone
        headers["cache-control"] = policy.header
