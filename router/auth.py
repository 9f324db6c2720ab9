"""Who is calling, and what the subgraphs are told about it — in one place.

Clients send access tokens (by default users' ES256 tokens, iss
"shopgraph-users", aud "shopgraph"; issuer, audience and algorithms are
configurable). The router verifies them against one or more JWKS (keys refetched
periodically and on unknown key ids, so rotated keys are picked up) and forwards
the identity as a short-lived HS256 token signed with the shared service secret,
so subgraphs can trust it and a client can never forge it by setting a header.
A token the router cannot verify is refused (401), never treated as anonymous.

:class:`Authenticator` turns a client (token, address, headers) into a
:class:`Caller` and a caller into subgraph request headers, for queries and
subscriptions alike.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from router import session_cookie
from router.config import HeaderRule, Settings, SubgraphHeaderRules
from router.errors import unauthenticated
from router.request import Client

INTERNAL_ISSUER = "shopgraph-internal"
INTERNAL_AUDIENCE = "shopgraph-subgraphs"  # no longer minted: each token names the one subgraph it is for


def audience_of(graph: str) -> str:
    """The ``aud`` of the internal tokens sent to ``graph`` (its join__Graph enum value or name):
    ``shopgraph-subgraph:<name>``. A subgraph accepts only its own: a token one subgraph (or an
    address a hostile supergraph named) receives cannot be replayed to another."""
    return f"shopgraph-subgraph:{graph.lower()}"


ROLES = ("CUSTOMER", "ADMIN")


CLIENT_ADDRESS_HEADER = "x-shopgraph-client-address"  # trusted by subgraphs from the router only


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
    # What @requiresScopes checks (router/authorization.py): the token's OAuth ``scope`` claim
    # (space-separated) or ``scp`` list, and its role as ``role:<role>`` (``role:admin``).
    scopes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Caller:
    """A verified client: its identity (None: anonymous), address and propagated headers."""

    identity: Identity | None = None
    address: str = "unknown"  # where the client connected from (sign-in throttling is per address)
    headers: tuple[tuple[str, str], ...] = field(default=())  # client headers some subgraph is sent
    session_cookie: str | None = None  # sent to session_cookie.subgraph only (router/session_cookie.py)

    @property
    def expires_at(self) -> float | None:
        return self.identity.expires_at if self.identity is not None else None

    @property
    def viewer(self) -> str | None:
        """Who the entity cache keeps private entries for, and whose role its public ones share."""
        return f"{self.identity.uid}:{self.identity.role}" if self.identity is not None else None


class JWKSVerifier:
    """Verifies access tokens against one or more JWKS; keys cached, refetched every
    ``refresh`` seconds and on an unknown kid (at most every ``min_refetch``)."""

    def __init__(
        self,
        urls: Sequence[str],
        client: httpx.AsyncClient,
        min_refetch: float = 30.0,
        *,
        refresh: float = 300.0,
        issuer: str | None = "shopgraph-users",
        audience: str | None = "shopgraph",
        algorithms: Sequence[str] = ("ES256",),
    ) -> None:
        self.urls = list(urls)
        self.client = client
        self.min_refetch = min_refetch
        self.refresh = refresh
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at >= self.refresh
            if self._keys and not stale and (not force or now - self._fetched_at < self.min_refetch):
                return
            if not self._keys and self._fetched_at and now - self._fetched_at < self.min_refetch:
                # The last fetch failed just now: fail fast rather than queue every request
                # with a token behind another slow fetch.
                raise AuthError("cannot verify tokens right now (JWKS unavailable)")
            self._fetched_at = now
            keys: dict[str, Any] = {}
            failed = False
            for url in self.urls:
                try:
                    r = await self.client.get(url, timeout=5.0)
                    r.raise_for_status()
                    jwks = jwt.PyJWKSet.from_dict(r.json())
                except Exception:  # network or malformed JWKS: keep that source's old keys
                    failed = True
                    continue
                keys.update({k.key_id: k for k in jwks.keys if k.key_id})
            if failed:
                keys = {**self._keys, **keys}
            if not keys:
                raise AuthError("cannot verify tokens right now (JWKS unavailable)")
            self._keys = keys

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise AuthError("malformed access token") from e
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError(f"token algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise AuthError("token has no key id")
        if kid not in self._keys or time.monotonic() - self._fetched_at >= self.refresh:
            await self._refresh(force=kid not in self._keys and bool(self._keys))
        key = self._keys.get(kid)
        if key is None:
            raise AuthError("token signed with an unknown key")
        if getattr(key, "algorithm_name", alg) != alg:
            raise AuthError(f"key {kid!r} is not an {alg} key")
        required = ["exp", "sub"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as e:
            raise AuthError("access token expired") from e
        except (jwt.PyJWTError, TypeError, ValueError) as e:  # TypeError: a key of another type
            raise AuthError(f"invalid access token: {e}") from e
        if claims.get("typ", "access") != "access":
            raise AuthError("not an access token")
        uid = claims.get("uid", claims.get("sub"))
        role = claims.get("role", "CUSTOMER")
        if not isinstance(uid, (str, int)) or role not in ROLES:
            raise AuthError("access token has no valid identity")
        iat = claims.get("iat")
        issued_at = float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None
        return Identity(str(uid), role, float(claims["exp"]), issued_at, scopes_of(claims, role))


def scopes_of(claims: Mapping[str, Any], role: str) -> frozenset[str]:
    """A verified token's scopes: ``scope`` (a space-separated string, RFC 8693) or ``scp`` (a
    list), and ``role:<role>``; anything else in those claims is ignored."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        scopes = raw.split()
    elif isinstance(raw, list):
        scopes = [s for s in raw if isinstance(s, str)]
    else:
        scopes = []
    return frozenset([*scopes, f"role:{role.lower()}"])


class GraphHeaders(dict[str, dict[str, str]]):
    """Subgraph request headers by graph: the graphs with rules of their own are keys,
    every other graph gets ``default`` plus its own internal token (``own``: built once per graph)."""

    def __init__(
        self,
        default: dict[str, str],
        per_graph: dict[str, dict[str, str]] | None = None,
        own: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        super().__init__(per_graph or {})
        self.default = default
        self.own = own

    def __missing__(self, graph: str) -> dict[str, str]:
        if self.own is None:
            return self.default
        h = self[graph] = {**self.default, **self.own(graph)}
        return h


class Authenticator:
    """Client -> Caller (token verified), Caller -> subgraph headers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = InternalTokens(settings.service_secret) if settings.service_secret else None
        self.verifier: JWKSVerifier | None = None
        self.rules: tuple[HeaderRule, ...] = settings.propagate_headers
        self.graph_rules: Mapping[str, SubgraphHeaderRules] = settings.subgraph_headers
        wanted = {r.name for r in self.rules} | {r.name for g in self.graph_rules.values() for r in g.propagate}
        self.wanted = tuple(sorted(wanted))  # the client headers any subgraph may be sent

    def bind(self, client: httpx.AsyncClient) -> None:
        s = self.settings
        if s.jwks_urls:
            self.verifier = JWKSVerifier(
                s.jwks_urls,
                client,
                s.jwks_min_refetch,
                refresh=s.jwks_refresh,
                issuer=s.jwt_issuer,
                audience=s.jwt_audience,
                algorithms=s.jwt_algorithms,
            )

    async def caller(self, client: Client) -> Caller:
        """The verified caller; RouterError 401 for a token that cannot be verified."""
        identity: Identity | None = None
        if client.token is not None:
            if self.verifier is None:
                raise unauthenticated("This router does not accept access tokens (authentication is disabled).")
            try:
                identity = await self.verifier.verify(client.token)
            except AuthError as e:
                raise unauthenticated(str(e)) from e
        forwarded = tuple((n, client.headers[n]) for n in self.wanted if n in client.headers)
        return Caller(identity, client.address, forwarded, client.session_cookie)

    def headers(self, caller: Caller) -> GraphHeaders:
        """Headers of the subgraph requests made for ``caller`` (queries and events), by graph:
        ``headers.propagate`` for all, then each subgraph's own rules. The identity and
        client address are the router's own and always set last."""
        sent = dict(caller.headers)
        h = {"content-type": "application/json", "accept": "application/json"}
        h.update((r.rename or r.name, sent[r.name]) for r in self.rules if r.name in sent)
        tokens = self.tokens
        cookie = self._cookie(caller)
        if tokens is None and cookie is None:
            own: Callable[[str], dict[str, str]] | None = None
        else:
            identity, address = caller.identity, caller.address

            def own(graph: str) -> dict[str, str]:
                h: dict[str, str] = {}
                if tokens is not None:
                    # The internal token is scoped to the subgraph it is sent to (audience per subgraph).
                    h = {"authorization": tokens.header(identity, graph), CLIENT_ADDRESS_HEADER: address}
                if cookie is not None and session_cookie.is_for(graph, cookie[0]):
                    h["cookie"] = cookie[1]
                return h

        if not self.graph_rules:
            return GraphHeaders(h, None, own)
        per_graph: dict[str, dict[str, str]] = {}
        for graph, g in self.graph_rules.items():
            gh = dict(h)
            gh.update((r.rename or r.name, sent[r.name]) for r in g.propagate if r.name in sent)
            for name in g.remove:
                gh.pop(name, None)
            gh.update(g.insert)
            if own is not None:
                gh.update(own(graph))
            per_graph[graph] = gh
        return GraphHeaders(h, per_graph, own)

    def _cookie(self, caller: Caller) -> tuple[str, str] | None:
        """(the subgraph, its ``Cookie`` header) when the caller sent the session cookie."""
        s = self.settings
        if caller.session_cookie is None or s.session_cookie is None or s.session_cookie_subgraph is None:
            return None
        return s.session_cookie_subgraph, f"{s.session_cookie}={caller.session_cookie}"


def bearer_of(headers: Mapping[str, str]) -> str | None:
    """The bearer token of an Authorization header; RouterError 401 when malformed."""
    try:
        return bearer(headers.get("authorization"))
    except AuthError as e:
        raise unauthenticated(str(e)) from e


class InternalTokens:
    """Mints the router->subgraph token, one per subgraph (its audience); short-lived (``ttl``
    seconds), cached per identity and subgraph for ``reuse`` seconds."""

    def __init__(self, secret: str, ttl: int = 30, reuse: float = 10.0) -> None:
        self.secret = secret
        self.ttl = ttl
        self.reuse = reuse
        self._cache: dict[tuple[Identity | None, str], tuple[float, str]] = {}

    def header(self, identity: Identity | None, graph: str) -> str:
        now = time.time()
        hit = self._cache.get((identity, graph))
        if hit is not None and now - hit[0] < self.reuse:
            return hit[1]
        value = self.header_until(identity, min(now + self.ttl, identity.expires_at if identity else math.inf), graph)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(identity, graph)] = (now, value)
        return value

    def header_until(self, identity: Identity | None, expires_at: float, graph: str) -> str:
        """A token for ``graph`` valid until ``expires_at``: for a long-lived subgraph connection
        (a subscription), which the subgraph closes when its token expires."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": INTERNAL_ISSUER,
            "aud": audience_of(graph),
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
