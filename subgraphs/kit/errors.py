"""Errors, the two kinds the API conventions name.

- Expected failures (bad password, out of stock) are ``UserError`` values in a
  mutation payload. Services raise ``UserInputError``; the resolver turns it into
  the payload (see ``payload_or_user_errors``). One shared type and code enum for the whole
  graph, so a client handles them the same way everywhere.
- Unexpected failures are GraphQL errors carrying ``extensions.code``;
  anything without a code is masked, so no stack trace ever leaves a subgraph.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from enum import Enum
from typing import TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

log = logging.getLogger("shopgraph.errors")


@strawberry.enum(description="Why a mutation's input was refused.")
class UserErrorCode(Enum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    NOT_FOUND = "NOT_FOUND"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    INVALID_TOKEN = "INVALID_TOKEN"
    TOKEN_REUSED = "TOKEN_REUSED"
    SKU_TAKEN = "SKU_TAKEN"
    SLUG_TAKEN = "SLUG_TAKEN"
    INVALID_PRICE = "INVALID_PRICE"
    STOCK_BELOW_ZERO = "STOCK_BELOW_ZERO"
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
    PRODUCT_INACTIVE = "PRODUCT_INACTIVE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    CART_EMPTY = "CART_EMPTY"
    INVALID_STATUS_TRANSITION = "INVALID_STATUS_TRANSITION"


@strawberry.federation.type(shareable=True, description="An expected failure of a mutation.")
class UserError:
    code: UserErrorCode
    field: list[str] | None = strawberry.field(description='Path to the input field at fault, e.g. ["input", "email"].')
    message: str


class UserInputError(Exception):
    """Raised by service code for an expected failure; becomes a ``UserError``."""

    def __init__(self, code: UserErrorCode, message: str, field: Sequence[str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field is not None else None

    def to_graphql(self) -> UserError:
        return UserError(code=self.code, field=self.field, message=self.message)


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
    return True


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

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if error.path is None and not (error.extensions or {}).get("code"):
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


P = TypeVar("P")


async def payload_or_user_errors(payload: type[P], action: Awaitable[P]) -> P:
    """Run a mutation; an expected failure becomes ``payload(user_errors=[...])``.

    Every payload type gives its other fields a ``None`` default, so a failed
    mutation returns them empty alongside its userErrors.
    """
    try:
        return await action
    except UserInputError as exc:
        return payload(user_errors=[exc.to_graphql()])  # type: ignore[call-arg]
