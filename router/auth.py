"""Client JWT verification (JWKS) and internal tokens for subgraphs.

Clients send users' access tokens (ES256, iss "shopgraph-users", aud
"shopgraph"). The router verifies them against the JWKS and forwards the
identity as a short-lived HS256 token signed with the shared service secret, so
subgraphs can trust it and a client can never forge it by setting a header.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

ALGORITHMS = ["ES256"]
ISSUER = "shopgraph-users"
AUDIENCE = "shopgraph"
INTERNAL_ISSUER = "shopgraph-internal"
INTERNAL_AUDIENCE = "shopgraph-subgraphs"
ROLES = ("CUSTOMER", "ADMIN")


class AuthError(Exception):
    """The client's token is not acceptable (-> HTTP 401, UNAUTHENTICATED)."""


@dataclass(frozen=True)
class Identity:
    uid: str
    role: str
    # When the client's token expires: the identity is not forwarded beyond it.
    expires_at: float = math.inf
    # When it was issued (``iat``), forwarded as ``auth_time``: subgraphs refuse tokens older than a revocation.
    issued_at: float | None = None


class JWKSVerifier:
    """Verifies access tokens; keys cached, refetched on unknown kid (rate-limited)."""

    def __init__(self, url: str, client: httpx.AsyncClient, min_refetch: float = 30.0) -> None:
        self.url = url
        self.client = client
        self.min_refetch = min_refetch
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._keys and (not force or now - self._fetched_at < self.min_refetch):
                return
            if not self._keys and self._fetched_at and now - self._fetched_at < self.min_refetch:
                # The last fetch failed just now: fail fast rather than queue every request
                # with a token behind another slow fetch.
                raise AuthError("cannot verify tokens right now (JWKS unavailable)")
            self._fetched_at = now
            try:
                r = await self.client.get(self.url, timeout=5.0)
                r.raise_for_status()
                jwks = jwt.PyJWKSet.from_dict(r.json())
            except Exception as e:  # network or malformed JWKS: keep old keys
                if not self._keys:
                    raise AuthError("cannot verify tokens right now (JWKS unavailable)") from e
                return
            self._keys = {k.key_id: k for k in jwks.keys if k.key_id}

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise AuthError("malformed access token") from e
        if header.get("alg") not in ALGORITHMS:
            raise AuthError(f"token algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise AuthError("token has no key id")
        if kid not in self._keys:
            await self._refresh(force=bool(self._keys))
        key = self._keys.get(kid)
        if key is None:
            raise AuthError("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise AuthError("access token expired") from e
        except jwt.PyJWTError as e:
            raise AuthError(f"invalid access token: {e}") from e
        if claims.get("typ", "access") != "access":
            raise AuthError("not an access token")
        uid = claims.get("uid", claims.get("sub"))
        role = claims.get("role", "CUSTOMER")
        if not isinstance(uid, (str, int)) or role not in ROLES:
            raise AuthError("access token has no valid identity")
        iat = claims.get("iat")
        issued_at = float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None
        return Identity(str(uid), role, float(claims["exp"]), issued_at)


class InternalTokens:
    """Mints the router->subgraph token; cached per identity for a few seconds."""

    def __init__(self, secret: str, ttl: int = 60, reuse: float = 10.0) -> None:
        self.secret = secret
        self.ttl = ttl
        self.reuse = reuse
        self._cache: dict[Identity | None, tuple[float, str]] = {}

    def header(self, identity: Identity | None) -> str:
        now = time.time()
        hit = self._cache.get(identity)
        if hit is not None and now - hit[0] < self.reuse:
            return hit[1]
        value = self.header_until(identity, min(now + self.ttl, identity.expires_at if identity else math.inf))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[identity] = (now, value)
        return value

    def header_until(self, identity: Identity | None, expires_at: float) -> str:
        """A token valid until ``expires_at``: for a long-lived subgraph connection
        (a subscription), which the subgraph closes when its token expires."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": INTERNAL_ISSUER,
            "aud": INTERNAL_AUDIENCE,
            "sub": "service:router",
            "iat": now,
            "exp": int(expires_at),
        }
        if identity is not None:
            claims["uid"] = identity.uid
            claims["role"] = identity.role
            if identity.issued_at is not None:
                claims["auth_time"] = identity.issued_at
        return "Bearer " + jwt.encode(claims, self.secret, algorithm="HS256")


def bearer(authorization: str | None) -> str | None:
    """Token from an Authorization header; None when absent (anonymous)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()
