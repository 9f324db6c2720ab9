"""Accounts, sign-in sessions and addresses: the rules, with no GraphQL in here."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit import revocation
from subgraphs.kit.address import clean_address
from subgraphs.kit.context import Runtime
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.outbox import record_event

from .events import PASSWORD_RESET_REQUESTED
from .keys import KeyStore
from .models import addresses, outbox, password_resets, refresh_tokens, users
from .throttle import SignInThrottle, digest

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254  # RFC 5321's limit on a path
MAX_PASSWORD = 128
MAX_TOKEN = 200  # refresh and reset tokens we issue are far shorter
MAX_ADDRESSES = 20
# A deleted account's tombstone: no token issued before the end of time counts for it.
DELETED_AT = datetime(9999, 1, 1, tzinfo=UTC)
DELETED_NAME = "Deleted account"
# Reset mails one account may be sent per window (more requests answer the same, silently).
RESET_MAILS_PER_WINDOW = 3
RESET_MAIL_WINDOW_SECONDS = 3600
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified against for unknown emails, so a miss costs as long as a wrong password. Built from
# the hasher's parameters rather than by hashing at import (that cost ~0.1-1 s of every start):
# argon2 derives the full hash before comparing, so a made-up digest costs the same to check.
_DUMMY_HASH = (
    f"$argon2id$v=19$m={_hasher.memory_cost},t={_hasher.time_cost},p={_hasher.parallelism}"
    f"${'A' * ((_hasher.salt_len * 4 + 2) // 3)}${'A' * ((_hasher.hash_len * 4 + 2) // 3)}"
)


@dataclass(frozen=True)
class Session:
    user: Row[Any]
    access_token: str
    refresh_token: str
    expires_in: int


def normalize_email(raw: str, field: str = "email") -> str:
    """A trimmed, checked email; refused (before anything is stored or keyed on it) if it cannot be one."""
    if len(raw) > MAX_EMAIL + 64:  # room for stray whitespace; no email is longer
        raise DomainError(Code.INVALID, f"An email address is at most {MAX_EMAIL} characters.", ["input", field])
    email = raw.strip()
    if not email:
        raise DomainError(Code.REQUIRED, "Email is required.", ["input", field])
    if len(email) > MAX_EMAIL:
        raise DomainError(Code.INVALID, f"An email address is at most {MAX_EMAIL} characters.", ["input", field])
    if not EMAIL_RE.match(email):
        raise DomainError(Code.INVALID, "Enter a valid email address.", ["input", field])
    return email


def clean_name(raw: str, field: str = "name") -> str:
    name = raw.strip()
    if not name:
        raise DomainError(Code.REQUIRED, "Name is required.", ["input", field])
    if len(name) > 200:
        raise DomainError(Code.TOO_LONG, "Name is at most 200 characters.", ["input", field])
    return name


def check_password(password: str, email: str, field: list[str] | None = None) -> None:
    field = field or ["input", "password"]
    if len(password) < 8:
        raise DomainError(Code.WEAK_PASSWORD, "Use at least 8 characters.", field)
    if len(password) > MAX_PASSWORD:
        raise DomainError(Code.TOO_LONG, "Use at most 128 characters.", field)
    if password.lower() == email.lower() or len(set(password)) < 4:
        raise DomainError(Code.WEAK_PASSWORD, "This password is too easy to guess.", field)


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify_password(stored_hash: str, password: str) -> bool:
    # No stored password is longer than MAX_PASSWORD: a longer guess is cut to one character
    # more (still wrong, still hashed for the same time), so its size costs nothing.
    attempt = password[: MAX_PASSWORD + 1]

    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash, attempt)
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
                raise DomainError(
                    Code.EMAIL_TAKEN, "An account with this email already exists.", ["input", "email"]
                ) from exc
            raise

    async def login(self, email: str, password: str, client: str) -> Session:
        email = normalize_email(email)
        throttle = SignInThrottle(self.runtime)
        refusal = await throttle.admit(email, client)
        if refusal is not None:
            raise DomainError(
                Code.ACCOUNT_LOCKED,
                f"Too many failed sign-ins. Try again in {(refusal.seconds + 59) // 60} minute(s)"
                + (" or reset your password." if refusal.whole_account else "."),
            )
        async with self.db.read() as conn:
            user = (await conn.execute(select(users).where(func.lower(users.c.email) == email.lower()))).one_or_none()
        ok = await _verify_password(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not ok:
            raise DomainError(Code.INVALID_CREDENTIALS, "Wrong email or password.")
        await throttle.succeeded(email, client)
        async with self.db.transaction() as conn:
            if _hasher.check_needs_rehash(user.password_hash):
                await conn.execute(
                    update(users).where(users.c.id == user.id).values(password_hash=await hash_password(password))
                )
            return await self._start_session(conn, user)

    # --- passwords ------------------------------------------------------------

    async def change_password(self, user_id: uuid.UUID, current: str, new: str, client: str) -> Session:
        """Signed in, knowing the current password: every other session ends, this one goes on."""
        async with self.db.read() as conn:
            user = (await conn.execute(select(users).where(users.c.id == user_id))).one_or_none()
        if user is None:
            raise DomainError(Code.NOT_FOUND, "No such user.")
        # A stolen access token must not become a way to guess the password: same throttle as sign-in.
        throttle = SignInThrottle(self.runtime)
        refusal = await throttle.admit(user.email, client)
        if refusal is not None:
            raise DomainError(
                Code.ACCOUNT_LOCKED,
                f"Too many wrong passwords. Try again in {(refusal.seconds + 59) // 60} minute(s).",
                ["input", "currentPassword"],
            )
        if not await _verify_password(user.password_hash, current):
            raise DomainError(Code.INVALID_CREDENTIALS, "The current password is wrong.", ["input", "currentPassword"])
        await throttle.succeeded(user.email, client)
        check_password(new, user.email, ["input", "newPassword"])
        if new == current:
            raise DomainError(Code.INVALID, "Choose a password other than the current one.", ["input", "newPassword"])
        password_hash = await hash_password(new)
        async with self.db.transaction() as conn:
            await self._end_sessions(conn, user_id, password_hash=password_hash)
            return await self._start_session(conn, user)

    async def request_password_reset(self, email: str) -> None:
        """Mail a one-time reset link if the account exists; the caller learns nothing either way."""
        email = normalize_email(email)
        # A few mails per account per hour: more requests answer the same and send nothing.
        counter = self.runtime.redis_key("reset-mails", digest(email.lower()))
        async with self.runtime.redis.pipeline(transaction=True) as pipe:
            pipe.set(counter, 0, ex=RESET_MAIL_WINDOW_SECONDS, nx=True)
            pipe.incr(counter)
            _, sent = await pipe.execute()
        async with self.db.transaction() as conn:
            user = (await conn.execute(select(users).where(func.lower(users.c.email) == email.lower()))).one_or_none()
            if user is None or int(sent) > RESET_MAILS_PER_WINDOW:
                return
            token = secrets.token_urlsafe(32)
            ttl = self.settings.password_reset_ttl_seconds
            expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
            await conn.execute(
                insert(password_resets).values(user_id=user.id, token_hash=_hash_secret(token), expires_at=expires_at)
            )
            # The notifications worker mails the link. The event carries the token (the
            # mail must), as the mail outbox it replaces carried the link: it is spent on
            # use and worthless after ``expires_at``.
            await record_event(
                conn,
                outbox,
                PASSWORD_RESET_REQUESTED,
                user.id,
                {
                    "user_id": str(user.id),
                    "email": user.email,
                    "name": user.name,
                    "reset_url": f"{self.settings.public_url}/reset-password?token={token}",
                    "token": token,
                    "ttl_minutes": ttl // 60,
                    "expires_at": expires_at.isoformat(),
                },
            )

    async def reset_password(self, token: str, new: str) -> None:
        """Spend a reset token (once, before it expires): a new password, and every session ends."""
        if len(token) > MAX_TOKEN:
            raise _invalid_reset()
        async with self.db.transaction() as conn:
            reset = (
                await conn.execute(
                    select(password_resets)
                    .where(
                        password_resets.c.token_hash == _hash_secret(token),
                        password_resets.c.used_at.is_(None),
                        password_resets.c.expires_at > func.now(),
                    )
                    .with_for_update()
                )
            ).one_or_none()
            if reset is None:
                raise _invalid_reset()
            user = (await conn.execute(select(users).where(users.c.id == reset.user_id))).one()
            check_password(new, user.email, ["input", "newPassword"])
            # Spends this token and every other one outstanding for the account.
            await conn.execute(
                update(password_resets)
                .where(password_resets.c.user_id == user.id, password_resets.c.used_at.is_(None))
                .values(used_at=func.now())
            )
            await self._end_sessions(conn, user.id, password_hash=await hash_password(new))

    # --- sessions ---------------------------------------------------------------

    async def sign_out_everywhere(self, user_id: uuid.UUID) -> None:
        async with self.db.transaction() as conn:
            await self._end_sessions(conn, user_id)

    async def _end_sessions(
        self, conn: AsyncConnection, user_id: uuid.UUID, *, keep_refresh_tokens: bool = False, **changes: Any
    ) -> None:
        """Every access token issued until now refused at once, and every refresh token revoked
        (unless ``keep_refresh_tokens``: a role change lets clients refresh into the new role).

        Redis learns the new time before the transaction commits: if the commit
        fails, the account's tokens were refused early (they sign in again), never
        accepted late.
        """
        valid_after = time.time()  # the clock access tokens' issue times come from
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(sessions_valid_after=datetime.fromtimestamp(valid_after, UTC), updated_at=func.now(), **changes)
        )
        if not keep_refresh_tokens:
            await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
        await revocation.publish(self.runtime.redis, self.settings, user_id, valid_after)

    async def account_state(self, user_id: uuid.UUID) -> float | None:
        """When the account's sessions start to count (``None``: no such account): kit.revocation's lookup."""
        async with self.db.read() as conn:
            valid_after = (
                await conn.execute(select(users.c.sessions_valid_after).where(users.c.id == user_id))
            ).scalar_one_or_none()
        return None if valid_after is None else float(valid_after.timestamp())

    async def refresh(self, token: str) -> Session:
        """Spend a refresh token for a new pair; a token spent twice revokes its family and every
        access token of the account issued until then."""
        if len(token) > MAX_TOKEN:
            raise _invalid_refresh()
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
            # The access tokens minted from the family (the thief's, up to 15 minutes) are refused
            # too: every access token of the account issued until now is (kit.revocation). Other
            # sign-ins keep their refresh tokens and refresh into new access tokens.
            await self._end_sessions(conn, row.user_id, keep_refresh_tokens=True)
        # A spent token came back: raised after the commit, so the family stays revoked.
        raise DomainError(
            Code.TOKEN_REUSED,
            "This refresh token was already used; every session from it has been signed out.",
            ["input", "refreshToken"],
        )

    async def logout(self, token: str) -> None:
        if len(token) > MAX_TOKEN:
            raise _invalid_refresh()
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
        # Every subgraph checks this token against the account's state: have it in Redis for as
        # long as the token lives. Read under a share lock: a revocation running now commits
        # first, and what is published here is its time, never the one before it.
        valid_after = (
            await conn.execute(
                select(users.c.sessions_valid_after).where(users.c.id == user.id).with_for_update(read=True)
            )
        ).scalar_one()
        await revocation.publish(self.runtime.redis, self.settings, user.id, valid_after.timestamp())
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
            raise DomainError(
                Code.EMAIL_TAKEN, "An account with this email already exists.", ["input", "email"]
            ) from exc

    async def set_mail_preferences(self, user_id: uuid.UUID, *, order_updates: bool) -> Row[Any]:
        async with self.db.transaction() as conn:
            statement = (
                update(users)
                .where(users.c.id == user_id)
                .values(order_update_emails=order_updates, updated_at=func.now())
                .returning(users)
            )
            row: Row[Any] = (await conn.execute(statement)).one()
            return row

    async def mail_recipient(self, user_id: uuid.UUID) -> Row[Any] | None:
        """Where and what to mail an account (None: no such account, or deleted)."""
        async with self.db.read() as conn:
            row: Row[Any] | None = (
                await conn.execute(
                    select(users).where(users.c.id == user_id, users.c.sessions_valid_after < DELETED_AT)
                )
            ).one_or_none()
            return row

    async def set_role(self, user_id: uuid.UUID, role: str) -> Row[Any]:
        """A new role takes effect at once: the user's access tokens (carrying the old one) are
        refused; a refresh gives tokens with the new one."""
        async with self.db.transaction() as conn:
            row: Row[Any] | None = (
                await conn.execute(select(users).where(users.c.id == user_id).with_for_update())
            ).one_or_none()
            if row is None:
                raise DomainError(Code.NOT_FOUND, "No such user.", ["input", "userId"])
            if row.role == role:
                return row
            await self._end_sessions(conn, user_id, keep_refresh_tokens=True, role=role)
            updated: Row[Any] = (await conn.execute(select(users).where(users.c.id == user_id))).one()
            return updated

    async def delete_user(self, actor: uuid.UUID, user_id: uuid.UUID) -> None:
        """Delete an account: its personal data goes (addresses, sessions, resets; email and name
        replaced), its tokens are refused at once and forever, and the row stays as a tombstone,
        so the orders it placed still resolve their user (an admin's order list must not break)."""
        if user_id == actor:
            raise DomainError(Code.INVALID, "You cannot delete your own account here.", ["input", "userId"])
        async with self.db.transaction() as conn:
            deleted = (
                await conn.execute(
                    update(users)
                    .where(users.c.id == user_id, users.c.sessions_valid_after < DELETED_AT)
                    .values(
                        email=f"deleted-{user_id}@deleted.invalid",
                        name=DELETED_NAME,
                        password_hash="!",  # matches no password (checked as a mismatch)
                        role="CUSTOMER",
                        updated_at=func.now(),
                        sessions_valid_after=DELETED_AT,
                    )
                    .returning(users.c.id)
                )
            ).one_or_none()
            if deleted is None:
                raise DomainError(Code.NOT_FOUND, "No such user.", ["input", "userId"])
            for table in (addresses, refresh_tokens, password_resets):
                await conn.execute(delete(table).where(table.c.user_id == user_id))
            await revocation.publish(self.runtime.redis, self.settings, user_id, None)

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
                raise DomainError(Code.INVALID, f"At most {MAX_ADDRESSES} addresses per account.")
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
                raise DomainError(Code.NOT_FOUND, "No such address.", ["input", "id"])
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
                raise DomainError(Code.NOT_FOUND, "No such address.", ["input", "id"])
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


def _invalid_reset() -> DomainError:
    return DomainError(
        Code.INVALID_TOKEN, "This reset link is not valid (used, expired or mistyped).", ["input", "token"]
    )


def _invalid_refresh() -> DomainError:
    return DomainError(Code.INVALID_TOKEN, "This refresh token is not valid.", ["input", "refreshToken"])
