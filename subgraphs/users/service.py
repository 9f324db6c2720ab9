"""Accounts, sign-in sessions and addresses: the rules, with no GraphQL in here."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.address import clean_address
from subgraphs.kit.app import Runtime
from subgraphs.kit.errors import UserErrorCode as Code
from subgraphs.kit.errors import UserInputError

from .keys import KeyStore
from .models import addresses, refresh_tokens, users

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_ADDRESSES = 20
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified against for unknown emails, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Session:
    user: Row[Any]
    access_token: str
    refresh_token: str
    expires_in: int


def normalize_email(raw: str, field: str = "email") -> str:
    email = raw.strip()
    if not email:
        raise UserInputError(Code.REQUIRED, "Email is required.", ["input", field])
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise UserInputError(Code.INVALID, "Enter a valid email address.", ["input", field])
    return email


def clean_name(raw: str, field: str = "name") -> str:
    name = raw.strip()
    if not name:
        raise UserInputError(Code.REQUIRED, "Name is required.", ["input", field])
    if len(name) > 200:
        raise UserInputError(Code.TOO_LONG, "Name is at most 200 characters.", ["input", field])
    return name


def check_password(password: str, email: str) -> None:
    field = ["input", "password"]
    if len(password) < 8:
        raise UserInputError(Code.WEAK_PASSWORD, "Use at least 8 characters.", field)
    if len(password) > 128:
        raise UserInputError(Code.TOO_LONG, "Use at most 128 characters.", field)
    if password.lower() == email.lower() or len(set(password)) < 4:
        raise UserInputError(Code.WEAK_PASSWORD, "This password is too easy to guess.", field)


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify_password(stored_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def _hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Accounts:
    def __init__(self, runtime: Runtime, keys: KeyStore) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.keys = keys
        self.settings = runtime.settings

    # --- sign-up and sign-in -------------------------------------------------

    async def register(self, email: str, password: str, name: str) -> Session:
        email = normalize_email(email)
        name = clean_name(name)
        check_password(password, email)
        password_hash = await hash_password(password)
        try:
            async with self.db.transaction() as conn:
                user = (
                    await conn.execute(
                        insert(users).values(email=email, name=name, password_hash=password_hash).returning(users)
                    )
                ).one()
                return await self._start_session(conn, user)
        except IntegrityError as exc:
            if "users_email_key" in str(exc.orig):
                raise UserInputError(
                    Code.EMAIL_TAKEN, "An account with this email already exists.", ["input", "email"]
                ) from exc
            raise

    async def login(self, email: str, password: str, client: str) -> Session:
        email = email.strip()
        # Two budgets of failed attempts: per account and client address (a guesser locks
        # only itself out, not the owner signing in from elsewhere), and per account over
        # all addresses, ten times larger (guessing spread over many addresses).
        limit = self.settings.login_max_failures
        budgets = [
            (self.runtime.redis_key("login-failures", email.lower(), client), limit),
            (self.runtime.redis_key("login-failures", email.lower()), limit * 10),
        ]
        attempts = await self._count_attempt([key for key, _ in budgets])
        for (key, budget), count in zip(budgets, attempts, strict=True):
            if count > budget:
                ttl = max(int(await self.runtime.redis.ttl(key)), 1)
                raise UserInputError(
                    Code.ACCOUNT_LOCKED,
                    f"Too many failed sign-ins. Try again in {(ttl + 59) // 60} minute(s).",
                )
        async with self.db.read() as conn:
            user = (await conn.execute(select(users).where(func.lower(users.c.email) == email.lower()))).one_or_none()
        ok = await _verify_password(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not ok:
            raise UserInputError(Code.INVALID_CREDENTIALS, "Wrong email or password.")
        await self.runtime.redis.delete(*(key for key, _ in budgets))
        async with self.db.transaction() as conn:
            if _hasher.check_needs_rehash(user.password_hash):
                await conn.execute(
                    update(users).where(users.c.id == user.id).values(password_hash=await hash_password(password))
                )
            return await self._start_session(conn, user)

    async def _count_attempt(self, keys: list[str]) -> list[int]:
        """Count an attempt against each key, before the (slow) password check, atomically:
        concurrent guesses cannot all slip past a limit, and no counter is left without
        its expiry (which would lock an account for good)."""
        async with self.runtime.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.set(key, 0, ex=self.settings.login_lockout_seconds, nx=True)
                pipe.incr(key)
            results = await pipe.execute()
        return [int(n) for n in results[1::2]]

    async def refresh(self, token: str) -> Session:
        """Spend a refresh token for a new pair; a token spent twice revokes its family."""
        token_id, secret = _split_refresh_token(token)
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(select(refresh_tokens).where(refresh_tokens.c.id == token_id).with_for_update())
            ).one_or_none()
            now = datetime.now(UTC)
            if row is None or not hmac.compare_digest(row.secret_hash, _hash_secret(secret)):
                raise _invalid_refresh()
            if row.revoked_at is not None or row.expires_at <= now:
                raise _invalid_refresh()
            if row.used_at is None:
                await conn.execute(update(refresh_tokens).where(refresh_tokens.c.id == row.id).values(used_at=now))
                user = (await conn.execute(select(users).where(users.c.id == row.user_id))).one()
                return await self._start_session(conn, user, family_id=row.family_id)
            await self._revoke_family(conn, row.family_id)
        # A spent token came back: raised after the commit, so the family stays revoked.
        raise UserInputError(
            Code.TOKEN_REUSED,
            "This refresh token was already used; every session from it has been signed out.",
            ["input", "refreshToken"],
        )

    async def logout(self, token: str) -> None:
        token_id, secret = _split_refresh_token(token)
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(refresh_tokens).where(refresh_tokens.c.id == token_id))).one_or_none()
            if row is None or not hmac.compare_digest(row.secret_hash, _hash_secret(secret)):
                raise _invalid_refresh()
            await self._revoke_family(conn, row.family_id)

    async def _start_session(
        self, conn: AsyncConnection, user: Row[Any], family_id: uuid.UUID | None = None
    ) -> Session:
        secret = secrets.token_urlsafe(32)
        token_id = (
            await conn.execute(
                insert(refresh_tokens)
                .values(
                    user_id=user.id,
                    family_id=family_id or uuid.uuid4(),
                    secret_hash=_hash_secret(secret),
                    expires_at=datetime.now(UTC) + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
                )
                .returning(refresh_tokens.c.id)
            )
        ).scalar_one()
        ttl = self.settings.access_token_ttl_seconds
        return Session(
            user=user,
            access_token=self.keys.issue_access_token(user.id, user.role, ttl),
            refresh_token=f"{token_id}.{secret}",
            expires_in=ttl,
        )

    async def _revoke_family(self, conn: AsyncConnection, family_id: uuid.UUID) -> None:
        await conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )

    # --- profile ------------------------------------------------------------

    async def update_profile(self, user_id: uuid.UUID, *, name: str | None, email: str | None) -> Row[Any]:
        values: dict[str, Any] = {"updated_at": func.now()}
        if name is not None:
            values["name"] = clean_name(name)
        if email is not None:
            values["email"] = normalize_email(email)
        try:
            async with self.db.transaction() as conn:
                statement = update(users).where(users.c.id == user_id).values(**values).returning(users)
                row: Row[Any] = (await conn.execute(statement)).one()
                return row
        except IntegrityError as exc:
            raise UserInputError(
                Code.EMAIL_TAKEN, "An account with this email already exists.", ["input", "email"]
            ) from exc

    async def set_role(self, user_id: uuid.UUID, role: str) -> Row[Any]:
        async with self.db.transaction() as conn:
            row: Row[Any] | None = (
                await conn.execute(
                    update(users).where(users.c.id == user_id).values(role=role, updated_at=func.now()).returning(users)
                )
            ).one_or_none()
        if row is None:
            raise UserInputError(Code.NOT_FOUND, "No such user.", ["input", "userId"])
        return row

    # --- addresses ----------------------------------------------------------

    async def add_address(self, user_id: uuid.UUID, fields: dict[str, Any], make_default: bool) -> Row[Any]:
        values = clean_address(fields, partial=False)
        async with self.db.transaction() as conn:
            # Lock the user row: concurrent adds must not both become default or pass the cap.
            await conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
            count = (
                await conn.execute(select(func.count()).select_from(addresses).where(addresses.c.user_id == user_id))
            ).scalar_one()
            if count >= MAX_ADDRESSES:
                raise UserInputError(Code.INVALID, f"At most {MAX_ADDRESSES} addresses per account.")
            if make_default or count == 0:
                await _clear_default(conn, user_id)
            statement = (
                insert(addresses)
                .values(user_id=user_id, is_default=make_default or count == 0, **values)
                .returning(addresses)
            )
            row: Row[Any] = (await conn.execute(statement)).one()
            return row

    async def update_address(
        self, user_id: uuid.UUID, address_id: uuid.UUID | None, fields: dict[str, Any], make_default: bool
    ) -> Row[Any]:
        values = clean_address(fields, partial=True)
        async with self.db.transaction() as conn:
            if make_default:
                await _clear_default(conn, user_id)
                values["is_default"] = True
            mine = (addresses.c.id == address_id) & (addresses.c.user_id == user_id)
            statement = (
                update(addresses).where(mine).values(**values).returning(addresses)
                if values
                else select(addresses).where(mine)
            )
            row: Row[Any] | None = (await conn.execute(statement)).one_or_none()
            if row is None:
                # Another user's address is reported exactly like a missing one.
                raise UserInputError(Code.NOT_FOUND, "No such address.", ["input", "id"])
            return row

    async def delete_address(self, user_id: uuid.UUID, address_id: uuid.UUID | None) -> None:
        async with self.db.transaction() as conn:
            deleted = (
                await conn.execute(
                    delete(addresses)
                    .where(addresses.c.id == address_id, addresses.c.user_id == user_id)
                    .returning(addresses.c.is_default)
                )
            ).one_or_none()
            if deleted is None:
                raise UserInputError(Code.NOT_FOUND, "No such address.", ["input", "id"])
            if deleted.is_default:
                # Promote the oldest remaining address so a default always exists.
                oldest = (
                    select(addresses.c.id)
                    .where(addresses.c.user_id == user_id)
                    .order_by(addresses.c.created_at)
                    .limit(1)
                    .scalar_subquery()
                )
                await conn.execute(update(addresses).where(addresses.c.id == oldest).values(is_default=True))


async def _clear_default(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    await conn.execute(
        update(addresses).where(addresses.c.user_id == user_id, addresses.c.is_default).values(is_default=False)
    )


def _split_refresh_token(token: str) -> tuple[uuid.UUID, str]:
    token_id, _, secret = token.partition(".")
    try:
        return uuid.UUID(token_id), secret
    except ValueError as exc:
        raise _invalid_refresh() from exc


def _invalid_refresh() -> UserInputError:
    return UserInputError(Code.INVALID_TOKEN, "This refresh token is not valid.", ["input", "refreshToken"])
