"""Who is calling: token verification and the identity every resolver checks.

Two kinds of bearer token reach a subgraph, told apart by their algorithm so
one can never be passed off as the other:

- ES256 access tokens issued by the users subgraph to shoppers, verified with
  the public keys users publishes as JWKS;
- HS256 internal tokens minted with the shared service secret by the router
  (carrying the identity it verified) and by subgraphs calling each other. Each
  names the subgraph(s) it is for in ``aud`` (``shopgraph-subgraph:<name>``) and a
  subgraph refuses any other: a token a subgraph (or an address a hostile
  supergraph pointed the router at) received cannot be replayed to another one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt.algorithms import ECAlgorithm
from strawberry.federation.schema_directives import RequiresScopes

from .errors import forbidden, unauthenticated

ACCESS_ISSUER = "shopgraph-users"
ACCESS_AUDIENCE = "shopgraph"
ACCESS_ALGORITHM = "ES256"
INTERNAL_ISSUER = "shopgraph-internal"
INTERNAL_AUDIENCE = "shopgraph-subgraphs"  # no longer accepted: each token names the subgraph it is for
INTERNAL_ALGORITHM = "HS256"
# Internal tokens are minted per call; a short life bounds any replay.
INTERNAL_TTL_SECONDS = 60


def audience_of(subgraph: str) -> str:
    """The ``aud`` a subgraph requires of internal tokens (the router mints the same:
    router/auth.py ``audience_of``). A token sent to one subgraph is refused by every other."""
    return f"shopgraph-subgraph:{subgraph.lower()}"


ROLES = ("CUSTOMER", "ADMIN")

# On administrators' fields and mutations: the router refuses them to any other caller before
# calling the subgraph (router/authorization.py; a token's role reads as the scope "role:<role>").
# The subgraph's own check (Identity.require_admin, mutations' allow=admin) stays the second line.
ADMIN_ONLY = RequiresScopes(scopes=[["role:admin"]])


class InvalidToken(Exception):
    """The bearer token is not one we accept; the message says why (never the token)."""


class KeysUnavailable(Exception):
    """The JWKS could not be fetched: tokens cannot be checked now (the caller's fault is not proven)."""


ROUTER_ONLY_MESSAGE = "This subgraph accepts calls from the router only."


def admitted(identity: Identity, *, router_only: bool) -> bool:
    """In router-only mode, only internal tokens (router, other subgraphs) get in."""
    return not router_only or identity.service is not None


@dataclass(frozen=True)
class Identity:
    """The verified caller: a user, a service, or a service acting for a user."""

    user_id: uuid.UUID | None = None
    role: str | None = None
    service: str | None = None
    # When the user's access token was issued (seconds): tokens older than a revocation are refused.
    issued_at: float | None = None

    @property
    def is_admin(self) -> bool:
        return self.user_id is not None and self.role == "ADMIN"

    @property
    def is_subgraph(self) -> bool:
        """Another subgraph calling on its own account (the router only ever relays clients)."""
        return self.service is not None and self.service != "router"

    def require_user(self) -> uuid.UUID:
        if self.user_id is None:
            raise unauthenticated()
        return self.user_id

    def require_admin(self) -> uuid.UUID:
        user_id = self.require_user()
        if not self.is_admin:
            raise forbidden("Only an administrator can do this.")
        return user_id

    def require_service(self, *names: str) -> str:
        """Internal operations: only the named subgraphs (never the router) may call them."""
        if self.service is None or self.service not in names:
            raise forbidden("This operation is internal.")
        return self.service

    def can_see_user(self, user_id: uuid.UUID) -> bool:
        """A user's own data: the user, an admin, or a subgraph acting on its own."""
        if self.user_id is None:
            return self.is_subgraph
        return self.user_id == user_id or self.is_admin


ANONYMOUS = Identity()


def mint_internal_token(
    secret: str,
    service: str,
    *,
    user_id: uuid.UUID | None = None,
    role: str | None = None,
    ttl: int = INTERNAL_TTL_SECONDS,
    audience: str | Sequence[str] | None = None,
) -> str:
    """An internal token of ``service``; ``audience``: the subgraph(s) it is for (their names).
    Subgraphs calling each other name their target; None (tools and tests) names every subgraph."""
    from .config import SUBGRAPHS

    targets = [audience] if isinstance(audience, str) else list(audience or SUBGRAPHS)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": INTERNAL_ISSUER,
        "aud": [audience_of(t) for t in targets],
        "sub": f"service:{service}",
        "iat": now,
        "exp": now + ttl,
    }
    if user_id is not None:
        claims["uid"] = str(user_id)
        claims["role"] = role
    return jwt.encode(claims, secret, algorithm=INTERNAL_ALGORITHM)


KeyLookup = Callable[[str], Awaitable[dict[str, Any] | None]]


class JwksClient:
    """Public keys from a JWKS URL, cached; refetched (rate-limited) on an unknown kid."""

    def __init__(self, url: str, *, min_refresh_seconds: float = 5.0) -> None:
        self.url = url
        self.min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> dict[str, Any] | None:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= (
                self.min_refresh_seconds if self._fetched_at else 0
            ):
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.url)
                response.raise_for_status()
            keys = response.json().get("keys", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise KeysUnavailable(f"cannot fetch the signing keys from {self.url}") from exc
        self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}
        self._fetched_at = time.monotonic()


# Seconds of clock skew a token's expiry is allowed (PyJWT's ``leeway``).
LEEWAY_SECONDS = 5
# Verified internal tokens remembered per process (cleared when full: the router reuses each for seconds).
VERIFIED_CACHE_SIZE = 10_000


class TokenVerifier:
    def __init__(self, public_key: KeyLookup, service_secret: str, subgraph: str | None = None) -> None:
        """``subgraph``: this subgraph's name; internal tokens must name it in their audience
        (without one, only access tokens are accepted)."""
        self._public_key = public_key
        self._service_secret = service_secret if subgraph else ""
        self._audience = audience_of(subgraph) if subgraph else ""
        # Internal token -> (identity, verified until): the router reuses its token for an identity
        # for seconds, and decoding one (base64, JSON, HMAC, claims) cost more CPU than the rest of
        # a small request's auth. The result only depends on the token and the secret, except
        # expiry, checked on every hit. Access tokens are not kept: their keys can be rotated out.
        self._verified: dict[str, tuple[Identity, float]] = {}

    async def verify(self, token: str) -> Identity:
        hit = self._verified.get(token)
        if hit is not None:
            if time.time() < hit[1]:
                return hit[0]
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        alg = header.get("alg")
        if alg == ACCESS_ALGORITHM:
            return await self._verify_access(token, header)
        if alg == INTERNAL_ALGORITHM and self._service_secret:
            return self._verify_internal(token)
        raise InvalidToken(f"unsupported token algorithm {alg!r}")

    async def _verify_access(self, token: str, header: dict[str, Any]) -> Identity:
        kid = header.get("kid")
        jwk = await self._public_key(kid) if isinstance(kid, str) else None
        if jwk is None:
            raise InvalidToken("unknown signing key")
        key = ECAlgorithm.from_jwk(jwk)
        claims = _decode(token, key, ACCESS_ALGORITHM, issuer=ACCESS_ISSUER, audience=ACCESS_AUDIENCE)
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        return Identity(
            user_id=_uuid(claims.get("sub")), role=_role(claims.get("role")), issued_at=_time(claims.get("iat"))
        )

    def _verify_internal(self, token: str) -> Identity:
        claims = _decode(
            token,
            self._service_secret,
            INTERNAL_ALGORITHM,
            issuer=INTERNAL_ISSUER,
            audience=self._audience,
        )
        sub = claims.get("sub", "")
        if not isinstance(sub, str) or not sub.startswith("service:"):
            raise InvalidToken("bad internal token subject")
        uid = claims.get("uid")
        identity = Identity(
            user_id=_uuid(uid) if uid is not None else None,
            role=_role(claims.get("role")) if uid is not None else None,
            service=sub.removeprefix("service:"),
            # The router forwards its client's token issue time; subgraphs acting for a user do not.
            issued_at=_time(claims["auth_time"]) if uid is not None and "auth_time" in claims else None,
        )
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (identity, int(claims["exp"]) + LEEWAY_SECONDS)  # PyJWT's reading of exp
        return identity


def _decode(token: str, key: Any, alg: str, *, issuer: str, audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            issuer=issuer,
            audience=audience,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"invalid token: {exc}") from exc
    return claims


def _uuid(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidToken("bad subject") from exc


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken("bad issue time")
    return float(value)


def _role(value: object) -> str:
    if value not in ROLES:
        raise InvalidToken("bad role")
    return str(value)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Authorization must be 'Bearer <token>'")
    return token.strip()
