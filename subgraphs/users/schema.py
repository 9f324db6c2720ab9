"""The users subgraph's graph surface: accounts, sessions, addresses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from subgraphs.kit.address import ADDRESS_FIELDS
from subgraphs.kit.auth import ADMIN_ONLY, Identity
from subgraphs.kit.context import RequestContext
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.errors import UserError
from subgraphs.kit.inputs import sent_fields
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.mutations import admin, anyone, mutate, signed_in
from subgraphs.kit.outbox_replay import replayed_as
from subgraphs.kit.schema import federated_schema

from . import cookie
from .keys import KeyStore
from .loaders import Loaders
from .models import outbox
from .service import Accounts, Session


@dataclass
class UsersContext(RequestContext):
    keys: KeyStore | None = None

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db)

    @cached_property
    def accounts(self) -> Accounts:
        assert self.keys is not None
        return Accounts(self.runtime, self.keys)


UsersInfo = Info[UsersContext, None]


@strawberry.enum
class Role(Enum):
    CUSTOMER = "CUSTOMER"
    ADMIN = "ADMIN"


@strawberry.type(description="A postal address saved on an account.")
class Address:
    id: strawberry.ID
    name: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    phone: str | None
    is_default: bool

    @classmethod
    def from_row(cls, row: Row[Any]) -> Address:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            line1=row.line1,
            line2=row.line2,
            city=row.city,
            region=row.region,
            postal_code=row.postal_code,
            country=row.country,
            phone=row.phone,
            is_default=row.is_default,
        )


@strawberry.federation.type(keys=["id"], description="A shopper or an administrator.")
class User:
    id: strawberry.ID
    name: str
    role: Role
    created_at: datetime
    uuid: strawberry.Private[uuid.UUID]
    email_address: strawberry.Private[str]
    order_update_emails: bool = strawberry.field(
        description="Whether shipping and delivery updates are mailed to this account (order confirmations, "
        "payment and cancellation notices and password resets always are)."
    )

    @strawberry.field
    def email(self, info: UsersInfo) -> str:
        return self.email_address

    @strawberry.field
    async def addresses(self, info: UsersInfo) -> list[Address]:
        rows = await info.context.loaders.addresses.load(self.uuid)
        return [Address.from_row(r) for r in rows]

    @strawberry.field
    async def default_address(self, info: UsersInfo) -> Address | None:
        rows = await info.context.loaders.addresses.load(self.uuid)
        return next((Address.from_row(r) for r in rows if r.is_default), None)

    @classmethod
    def from_row(cls, row: Row[Any]) -> User:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            role=Role(row.role),
            created_at=row.created_at,
            uuid=row.id,
            email_address=row.email,
            order_update_emails=row.order_update_emails,
        )

    @classmethod
    async def resolve_reference(cls, info: UsersInfo, id: strawberry.ID) -> User | None:
        return await load_user(info, parse_uuid(id))


def _refresh_token_of(input: RefreshTokenInput, info: UsersInfo) -> str:
    """The token named in the input, else the session cookie's; none at all is an invalid token."""
    token = input.refresh_token or cookie.sent_token(info.context)
    if not token:
        raise DomainError(Code.INVALID_TOKEN, "No refresh token: sign in again.", ["input", "refreshToken"])
    return token


async def load_user(info: UsersInfo, user_id: uuid.UUID | None) -> User | None:
    """A user, if the caller may see it: themself, an admin, or another subgraph."""
    if user_id is None or not info.context.identity.can_see_user(user_id):
        return None
    row = await info.context.loaders.user.load(user_id)
    return User.from_row(row) if row else None


@strawberry.type
class AuthPayload:
    user: User | None = None
    access_token: str | None = strawberry.field(default=None, description="ES256 JWT, short-lived.")
    refresh_token: str | None = strawberry.field(
        default=None, description="Opaque; single use: each refresh returns the next one."
    )
    expires_in: int | None = strawberry.field(default=None, description="Access token lifetime, seconds.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, session: Session, info: UsersInfo) -> AuthPayload:
        cookie.set_session(info.context, session.refresh_token)
        return cls(
            user=User.from_row(session.user),
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            expires_in=session.expires_in,
        )


@strawberry.type
class UserPayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddressPayload:
    address: Address | None = None
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LogoutPayload:
    ok: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RegisterInput:
    email: str
    password: str
    name: str


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class RefreshTokenInput:
    refresh_token: str | None = strawberry.field(
        default=None, description="Omitted: the one the browser's session cookie carries (subgraphs/users/cookie.py)."
    )


@strawberry.input
class UpdateProfileInput:
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET


@strawberry.input
class UpdateMailPreferencesInput:
    order_update_emails: bool = strawberry.field(description="Mail shipping and delivery updates.")


@strawberry.input
class AddAddressInput:
    name: str
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str
    phone: str | None = None
    is_default: bool = False


@strawberry.input
class UpdateAddressInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    line1: str | None = strawberry.UNSET
    line2: str | None = strawberry.UNSET
    city: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET
    postal_code: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    is_default: bool = False


@strawberry.input
class DeleteAddressInput:
    id: strawberry.ID


@strawberry.input
class SetUserRoleInput:
    user_id: strawberry.ID
    role: Role


@strawberry.input
class DeleteUserInput:
    user_id: strawberry.ID


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class RequestPasswordResetInput:
    email: str


@strawberry.input
class ResetPasswordInput:
    token: str = strawberry.field(description="From the reset link mailed to the account.")
    new_password: str


@strawberry.type
class OkPayload:
    ok: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.federation.type(inaccessible=True, description="Internal: whether an account's tokens still count.")
class AccountState:
    exists: bool
    sessions_valid_after: float | None = strawberry.field(
        description="Seconds since the epoch: access tokens issued before it are refused."
    )


@strawberry.federation.type(inaccessible=True, description="Internal: one account event as its outbox row holds it.")
class AccountOutboxEvent:
    id: str = strawberry.field(description="The outbox id (the stream entry's id), a decimal string.")
    type: str
    aggregate: strawberry.ID
    payload: str = strawberry.field(description="The event's JSON payload, as published.")
    created: str = strawberry.field(description="ISO 8601, as published.")


@strawberry.federation.type(inaccessible=True, description="Internal: where to mail an account, and what.")
class MailRecipient:
    email: str
    name: str
    order_update_emails: bool


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user, or null when anonymous.")
    async def me(self, info: UsersInfo) -> User | None:
        return await load_user(info, info.context.identity.user_id)

    @strawberry.field(description="Any user by id (administrators only).")
    async def user(self, info: UsersInfo, id: strawberry.ID) -> User | None:
        info.context.identity.require_admin()
        return await load_user(info, parse_uuid(id))

    @strawberry.federation.field(inaccessible=True, description="Internal: other subgraphs check tokens against it.")
    async def account_state(self, info: UsersInfo, user_id: strawberry.ID) -> AccountState:
        info.context.identity.require_service("cart", "catalog", "orders")
        key = parse_uuid(user_id)
        valid_after = await info.context.accounts.account_state(key) if key else None
        return AccountState(exists=valid_after is not None, sessions_valid_after=valid_after)

    @strawberry.federation.field(inaccessible=True, description="Internal: the notifications worker's recipient.")
    async def mail_recipient(self, info: UsersInfo, user_id: strawberry.ID) -> MailRecipient | None:
        info.context.identity.require_service("notifications")
        key = parse_uuid(user_id)
        row = await info.context.accounts.mail_recipient(key) if key else None
        if row is None:
            return None
        return MailRecipient(email=row.email, name=row.name, order_update_emails=row.order_update_emails)

    @strawberry.federation.field(
        inaccessible=True,
        description="Internal: account events with after < id <= upto, oldest first, at most 500 (the "
        "notifications worker's recovery of stream entries it never got).",
    )
    async def account_events_between(self, info: UsersInfo, after: str, upto: str) -> list[AccountOutboxEvent]:
        info.context.identity.require_service("notifications")
        return await replayed_as(AccountOutboxEvent, info.context.runtime.db, outbox, after, upto)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a customer account and sign in.")
    async def register(self, info: UsersInfo, input: RegisterInput) -> AuthPayload:
        async def perform(_: Identity) -> AuthPayload:
            return AuthPayload.of(await info.context.accounts.register(input.email, input.password, input.name), info)

        return await mutate(info, AuthPayload, perform, allow=anyone)

    @strawberry.mutation(description="Sign in with email and password.")
    async def login(self, info: UsersInfo, input: LoginInput) -> AuthPayload:
        async def perform(_: Identity) -> AuthPayload:
            accounts = info.context.accounts
            return AuthPayload.of(await accounts.login(input.email, input.password, info.context.client_address), info)

        return await mutate(info, AuthPayload, perform, allow=anyone)

    @strawberry.mutation(description="Exchange a refresh token for a new access and refresh token.")
    async def refresh_token(self, info: UsersInfo, input: RefreshTokenInput) -> AuthPayload:
        async def perform(_: Identity) -> AuthPayload:
            try:
                return AuthPayload.of(await info.context.accounts.refresh(_refresh_token_of(input, info)), info)
            except DomainError:
                cookie.clear_session(info.context)  # a spent or revoked cookie is worth nothing: forget it
                raise

        return await mutate(info, AuthPayload, perform, allow=anyone)

    @strawberry.mutation(description="Sign out: revoke the refresh token and its whole family.")
    async def logout(self, info: UsersInfo, input: RefreshTokenInput) -> LogoutPayload:
        async def perform(_: Identity) -> LogoutPayload:
            cookie.clear_session(info.context)
            await info.context.accounts.logout(_refresh_token_of(input, info))
            return LogoutPayload(ok=True)

        return await mutate(info, LogoutPayload, perform, allow=anyone)

    @strawberry.mutation(description="Sign out every session of your account, this one included, at once.")
    async def sign_out_everywhere(self, info: UsersInfo) -> OkPayload:
        async def perform(user_id: uuid.UUID) -> OkPayload:
            await info.context.accounts.sign_out_everywhere(user_id)
            cookie.clear_session(info.context)
            return OkPayload(ok=True)

        return await mutate(info, OkPayload, perform, allow=signed_in)

    @strawberry.mutation(
        description="Change your password (the current one is required). Every other session is signed out; "
        "the new tokens returned keep this one signed in."
    )
    async def change_password(self, info: UsersInfo, input: ChangePasswordInput) -> AuthPayload:
        async def perform(user_id: uuid.UUID) -> AuthPayload:
            session = await info.context.accounts.change_password(
                user_id, input.current_password, input.new_password, info.context.client_address
            )
            return AuthPayload.of(session, info)

        return await mutate(info, AuthPayload, perform, allow=signed_in)

    @strawberry.mutation(
        description="Mail a one-time password reset link (valid 30 minutes) to this address if it has an "
        "account. The answer is the same whether or not it has one."
    )
    async def request_password_reset(self, info: UsersInfo, input: RequestPasswordResetInput) -> OkPayload:
        async def perform(_: Identity) -> OkPayload:
            await info.context.accounts.request_password_reset(input.email)
            return OkPayload(ok=True)

        return await mutate(info, OkPayload, perform, allow=anyone)

    @strawberry.mutation(description="Choose a new password with a reset link's token; every session is signed out.")
    async def reset_password(self, info: UsersInfo, input: ResetPasswordInput) -> OkPayload:
        async def perform(_: Identity) -> OkPayload:
            await info.context.accounts.reset_password(input.token, input.new_password)
            return OkPayload(ok=True)

        return await mutate(info, OkPayload, perform, allow=anyone)

    @strawberry.mutation
    async def update_profile(self, info: UsersInfo, input: UpdateProfileInput) -> UserPayload:
        async def perform(user_id: uuid.UUID) -> UserPayload:
            sent = sent_fields(input, ("name", "email"))
            for key, value in sent.items():
                if value is None:
                    raise DomainError(Code.REQUIRED, f"{key} cannot be null.", ["input", key])
            row = await info.context.accounts.update_profile(user_id, name=sent.get("name"), email=sent.get("email"))
            return UserPayload(user=User.from_row(row))

        return await mutate(info, UserPayload, perform, allow=signed_in)

    @strawberry.mutation(description="Choose which non-transactional mail your account receives.")
    async def update_mail_preferences(self, info: UsersInfo, input: UpdateMailPreferencesInput) -> UserPayload:
        async def perform(user_id: uuid.UUID) -> UserPayload:
            row = await info.context.accounts.set_mail_preferences(user_id, order_updates=input.order_update_emails)
            return UserPayload(user=User.from_row(row))

        return await mutate(info, UserPayload, perform, allow=signed_in)

    @strawberry.mutation
    async def add_address(self, info: UsersInfo, input: AddAddressInput) -> AddressPayload:
        async def perform(user_id: uuid.UUID) -> AddressPayload:
            row = await info.context.accounts.add_address(user_id, sent_fields(input, ADDRESS_FIELDS), input.is_default)
            return AddressPayload(address=Address.from_row(row), user=await load_user(info, user_id))

        return await mutate(info, AddressPayload, perform, allow=signed_in)

    @strawberry.mutation
    async def update_address(self, info: UsersInfo, input: UpdateAddressInput) -> AddressPayload:
        async def perform(user_id: uuid.UUID) -> AddressPayload:
            row = await info.context.accounts.update_address(
                user_id, parse_uuid(input.id), sent_fields(input, ADDRESS_FIELDS), input.is_default
            )
            return AddressPayload(address=Address.from_row(row), user=await load_user(info, user_id))

        return await mutate(info, AddressPayload, perform, allow=signed_in)

    @strawberry.mutation
    async def delete_address(self, info: UsersInfo, input: DeleteAddressInput) -> AddressPayload:
        async def perform(user_id: uuid.UUID) -> AddressPayload:
            await info.context.accounts.delete_address(user_id, parse_uuid(input.id))
            return AddressPayload(user=await load_user(info, user_id))

        return await mutate(info, AddressPayload, perform, allow=signed_in)

    @strawberry.mutation(
        directives=[ADMIN_ONLY],
        description="Make a user an administrator or a customer (administrators only). "
        "The user's current tokens end at once: they sign in again with the new role.",
    )
    async def set_user_role(self, info: UsersInfo, input: SetUserRoleInput) -> UserPayload:
        async def perform(_: uuid.UUID) -> UserPayload:
            user_id = parse_uuid(input.user_id)
            if user_id is None:
                raise DomainError(Code.NOT_FOUND, "No such user.", ["input", "userId"])
            row = await info.context.accounts.set_role(user_id, input.role.value)
            return UserPayload(user=User.from_row(row))

        return await mutate(info, UserPayload, perform, allow=admin)

    @strawberry.mutation(
        directives=[ADMIN_ONLY],
        description="Delete an account with its addresses and sessions (administrators only); "
        "its tokens are refused at once. Its orders stay on record.",
    )
    async def delete_user(self, info: UsersInfo, input: DeleteUserInput) -> OkPayload:
        async def perform(actor: uuid.UUID) -> OkPayload:
            user_id = parse_uuid(input.user_id)
            if user_id is None:
                raise DomainError(Code.NOT_FOUND, "No such user.", ["input", "userId"])
            await info.context.accounts.delete_user(actor, user_id)
            return OkPayload(ok=True)

        return await mutate(info, OkPayload, perform, allow=admin)


schema = federated_schema(
    query=Query,
    mutation=Mutation,
    types=[User],
)
