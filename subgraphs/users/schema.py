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
from subgraphs.kit.app import RequestContext
from subgraphs.kit.errors import UserError, UserInputError, payload_or_user_errors
from subgraphs.kit.errors import UserErrorCode as Code
from subgraphs.kit.inputs import sent_fields
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.schema import federated_schema

from .keys import KeyStore
from .loaders import Loaders
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
        )

    @classmethod
    async def resolve_reference(cls, info: UsersInfo, id: strawberry.ID) -> User | None:
        return await load_user(info, parse_uuid(id))


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
    def of(cls, session: Session) -> AuthPayload:
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
    refresh_token: str


@strawberry.input
class UpdateProfileInput:
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET


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


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user, or null when anonymous.")
    async def me(self, info: UsersInfo) -> User | None:
        return await load_user(info, info.context.identity.user_id)

    @strawberry.field(description="Any user by id (administrators only).")
    async def user(self, info: UsersInfo, id: strawberry.ID) -> User | None:
        info.context.identity.require_admin()
        return await load_user(info, parse_uuid(id))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a customer account and sign in.")
    async def register(self, info: UsersInfo, input: RegisterInput) -> AuthPayload:
        async def run() -> AuthPayload:
            return AuthPayload.of(await info.context.accounts.register(input.email, input.password, input.name))

        return await payload_or_user_errors(AuthPayload, run())

    @strawberry.mutation(description="Sign in with email and password.")
    async def login(self, info: UsersInfo, input: LoginInput) -> AuthPayload:
        async def run() -> AuthPayload:
            return AuthPayload.of(
                await info.context.accounts.login(input.email, input.password, info.context.client_address)
            )

        return await payload_or_user_errors(AuthPayload, run())

    @strawberry.mutation(description="Exchange a refresh token for a new access and refresh token.")
    async def refresh_token(self, info: UsersInfo, input: RefreshTokenInput) -> AuthPayload:
        async def run() -> AuthPayload:
            return AuthPayload.of(await info.context.accounts.refresh(input.refresh_token))

        return await payload_or_user_errors(AuthPayload, run())

    @strawberry.mutation(description="Sign out: revoke the refresh token and its whole family.")
    async def logout(self, info: UsersInfo, input: RefreshTokenInput) -> LogoutPayload:
        async def run() -> LogoutPayload:
            await info.context.accounts.logout(input.refresh_token)
            return LogoutPayload(ok=True)

        return await payload_or_user_errors(LogoutPayload, run())

    @strawberry.mutation
    async def update_profile(self, info: UsersInfo, input: UpdateProfileInput) -> UserPayload:
        user_id = info.context.identity.require_user()

        async def run() -> UserPayload:
            sent = sent_fields(input, ("name", "email"))
            for key, value in sent.items():
                if value is None:
                    raise UserInputError(Code.REQUIRED, f"{key} cannot be null.", ["input", key])
            row = await info.context.accounts.update_profile(user_id, name=sent.get("name"), email=sent.get("email"))
            return UserPayload(user=User.from_row(row))

        return await payload_or_user_errors(UserPayload, run())

    @strawberry.mutation
    async def add_address(self, info: UsersInfo, input: AddAddressInput) -> AddressPayload:
        user_id = info.context.identity.require_user()

        async def run() -> AddressPayload:
            row = await info.context.accounts.add_address(user_id, sent_fields(input, ADDRESS_FIELDS), input.is_default)
            return AddressPayload(address=Address.from_row(row), user=await load_user(info, user_id))

        return await payload_or_user_errors(AddressPayload, run())

    @strawberry.mutation
    async def update_address(self, info: UsersInfo, input: UpdateAddressInput) -> AddressPayload:
        user_id = info.context.identity.require_user()

        async def run() -> AddressPayload:
            row = await info.context.accounts.update_address(
                user_id, parse_uuid(input.id), sent_fields(input, ADDRESS_FIELDS), input.is_default
            )
            return AddressPayload(address=Address.from_row(row), user=await load_user(info, user_id))

        return await payload_or_user_errors(AddressPayload, run())

    @strawberry.mutation
    async def delete_address(self, info: UsersInfo, input: DeleteAddressInput) -> AddressPayload:
        user_id = info.context.identity.require_user()

        async def run() -> AddressPayload:
            await info.context.accounts.delete_address(user_id, parse_uuid(input.id))
            return AddressPayload(user=await load_user(info, user_id))

        return await payload_or_user_errors(AddressPayload, run())

    @strawberry.mutation(description="Make a user an administrator or a customer (administrators only).")
    async def set_user_role(self, info: UsersInfo, input: SetUserRoleInput) -> UserPayload:
        info.context.identity.require_admin()

        async def run() -> UserPayload:
            user_id = parse_uuid(input.user_id)
            if user_id is None:
                raise UserInputError(Code.NOT_FOUND, "No such user.", ["input", "userId"])
            row = await info.context.accounts.set_role(user_id, input.role.value)
            return UserPayload(user=User.from_row(row))

        return await payload_or_user_errors(UserPayload, run())


schema = federated_schema(
    query=Query,
    mutation=Mutation,
    types=[User],
)
