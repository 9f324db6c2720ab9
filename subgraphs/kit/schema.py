"""The one way every subgraph builds its federated schema.

Besides sparing four copies of the same call, it installs what every subgraph
needs: masked unexpected errors, a guard against NUL characters in input
(PostgreSQL cannot store them: caught at the edge, they are a clear input error
instead of a failed statement deep in a resolver), money amounts read as plain
decimal strings only, and subscriptions that do
not leak memory per event (see ``_PerEventExecutor``). Parsing and validation
results are cached per document (most requests are the router's same few queries).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from graphql import DocumentNode, ExecutionResult, GraphQLError, StringValueNode, Visitor, parse, visit
from strawberry.extensions import SchemaExtension
from strawberry.federation import Schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.schema.types.base_scalars import DecimalDefinition, wrap_parser

from .cache_control import CacheControl, CacheHint, CachePolicies
from .errors import MaskUnexpectedErrors
from .inputs import contains_nul
from .money import parse_amount
from .telemetry import OperationTelemetry

NUL_MESSAGE = "Text cannot contain NUL (\\u0000) characters."
# The graph's Decimal (same name and description, so the SDL is unchanged) reads
# plain ASCII decimal strings only: strawberry's reads whatever Python's Decimal()
# does ("١٢" as 12, "1_000", " 1e3 "). Numbers are read as their decimal text.
STRICT_DECIMAL = dataclasses.replace(
    DecimalDefinition,
    parse_value=wrap_parser(parse_amount, "Decimal", include_error=False, accept_non_string=True),
)


class _NulLiteralFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        self.found = self.found or "\x00" in node.value


class RefuseNulCharacters(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        literal = False
        # Only an escape in the source can put a NUL into a literal: skip the walk otherwise.
        if context.graphql_document is not None and "\\u" in (context.query or ""):
            finder = _NulLiteralFinder()
            visit(context.graphql_document, finder)
            literal = finder.found
        if literal or contains_nul(context.variables):
            error = GraphQLError(NUL_MESSAGE, extensions={"code": "BAD_USER_INPUT"})
            context.result = ExecutionResult(data=None, errors=[error])
        yield


@functools.lru_cache(maxsize=1024)
def _parse(query: str, options: tuple[tuple[str, Any], ...]) -> DocumentNode:
    return parse(query, **dict(options))


class CachedParse(SchemaExtension):
    """Parse each distinct document once (graphql-core documents are never mutated).

    Unlike strawberry's ``ParserCache``, a document that does not parse is left
    to strawberry's own parse, so its syntax error is reported (and coded) as usual.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            with contextlib.suppress(GraphQLError):
                context.graphql_document = _parse(context.query, tuple(sorted(context.parse_options.items())))
        yield


class ValidatedOnce(SchemaExtension):
    """Validate each distinct document once, remembered by the document's identity.

    Strawberry's ``ValidationCache`` keys an ``lru_cache`` by the document's value, and graphql-core
    hashes a document by walking every node of it, on every request. ``CachedParse`` hands the
    same document object for the same text, so its identity is key enough; the entry keeps the
    document, so its id cannot be reused while remembered. Bounded like the parse cache."""

    MAX_ENTRIES = 1024
    _memo: ClassVar[dict[tuple[int, int, tuple[Any, ...]], tuple[DocumentNode, list[GraphQLError]]]] = {}

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            schema = context.schema._schema
            key = (id(schema), id(document), tuple(context.validation_rules))
            hit = self._memo.get(key)
            if hit is None or hit[0] is not document:
                if len(self._memo) >= self.MAX_ENTRIES:
                    self._memo.clear()
                hit = self._memo[key] = (document, validate_document(schema, document, context.validation_rules))
            context.pre_execution_errors = hit[1]
        yield


class _PerEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core 3.3's per-event executor with a memo of its own.

    Each subscription event runs on a shallow copy of the subscription's
    executor, so all events share its ``_relevant_sub_fields`` memo — keyed by
    the id of field lists built afresh for each event, which it keeps alive. A
    long-lived subscription thus grew by an entry per event (for orderEvents:
    ~10 objects per event per subscriber), bloating memory and making every
    garbage collection slower, the worst of the fan-out's latency outliers.
    """

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


class _Schema(Schema):
    """strawberry logs every error at ERROR with a traceback, an expected FORBIDDEN too. Ours are
    logged by the schema's extensions instead: OperationTelemetry (client errors, INFO) and
    MaskUnexpectedErrors (unexpected ones, once, ERROR with the traceback)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        return None


def federated_schema(
    *,
    query: type,
    mutation: type | None = None,
    subscription: type | None = None,
    types: Sequence[type] = (),
    cache_hints: Mapping[str, CacheHint] | None = None,
) -> Schema:
    """``cache_hints``: what routers and CDNs may cache (see ``kit.cache_control``); none: nothing."""
    policies = CachePolicies(cache_hints or {})
    return _Schema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        types=types,
        # Parsing and validation depend on the document only; the router sends the same few queries over and over.
        extensions=[
            OperationTelemetry,
            CachedParse,
            ValidatedOnce,
            RefuseNulCharacters,
            MaskUnexpectedErrors,
            lambda: CacheControl(policies),
        ],
        execution_context_class=_PerEventExecutor,
        scalar_overrides={Decimal: STRICT_DECIMAL},
    )
