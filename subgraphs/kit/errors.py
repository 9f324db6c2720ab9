"""Errors, the two kinds the API conventions name.

- Expected failures (bad password, out of stock) are ``UserError`` values in a
  mutation payload. Services raise ``kit.domain.DomainError``; the one mutation
  base (``kit.mutations``) turns it into the payload. One shared type and code
  enum for the whole graph, so a client handles them the same way everywhere.
- Unexpected failures are GraphQL errors carrying ``extensions.code``;
  anything without a code is masked, so no stack trace ever leaves a subgraph.
"""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from .domain import DomainError, ErrorCode, InvalidArgument, Unavailable

log = logging.getLogger("shopgraph.errors")


# The domain's plain enum is the graph's UserErrorCode (strawberry marks the class itself).
strawberry.enum(ErrorCode, name="UserErrorCode", description="Why a mutation's input was refused.")


@strawberry.federation.type(shareable=True, description="An expected failure of a mutation.")
class UserError:
    code: ErrorCode
    field: list[str] | None = strawberry.field(description='Path to the input field at fault, e.g. ["input", "email"].')
    message: str


def user_error(error: DomainError) -> UserError:
    return UserError(code=error.code, field=error.field, message=error.message)


class ApiError(GraphQLError):
    """A GraphQL error that is safe to show: it carries ``extensions.code``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def unauthenticated(message: str = "Sign in to do this.") -> ApiError:
    return ApiError(message, "UNAUTHENTICATED")


def forbidden(message: str = "You are not allowed to do this.") -> ApiError:
    return ApiError(message, "FORBIDDEN")


def bad_input(message: str) -> ApiError:
    return ApiError(message, "BAD_USER_INPUT")


def _is_unexpected(error: GraphQLError) -> bool:
    # Validation/parse errors and our own ApiErrors are meant for the client;
    # anything raised from deeper (a bug, a driver error) is masked.
    original = error.original_error
    if original is None:  # syntax and validation errors
        return False
    if error.path is None and error.message.startswith("Variable '$"):  # variable coercion
        return False
    if isinstance(original, GraphQLError):
        return not (original.extensions or {}).get("code")
    return not isinstance(original, InvalidArgument | Unavailable)


def _domain_code(error: GraphQLError) -> str | None:
    """The code of a plain domain exception that reached the top (services raise no GraphQL errors)."""
    if isinstance(error.original_error, InvalidArgument):
        return "BAD_USER_INPUT"
    if isinstance(error.original_error, Unavailable):
        return "SERVICE_UNAVAILABLE"
    return None


def _request_error_code(error: GraphQLError) -> str:
    """The code Apollo's servers give a request error, so clients branch on codes, not text."""
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


class MaskUnexpectedErrors(MaskErrors):
    """Hide internals of unexpected errors but keep a machine-readable code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected, error_message="Internal server error.")

    def _process_result(self, result: object) -> None:
        # As strawberry's, without its check against a runtime-checkable Protocol (~10 µs on every
        # request, most of them without errors): the result has errors or it has not.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            code = _domain_code(error)
            if code is not None:
                error.extensions = {**(error.extensions or {}), "code": code}
            elif error.path is None and not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": _request_error_code(error)}
        return processed

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        log.error("unexpected error at %s", error.path, exc_info=error.original_error)
        return GraphQLError(
            message=self.error_message,
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR"},
        )
