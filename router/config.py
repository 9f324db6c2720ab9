"""Router settings: one YAML file (``shopgraph router --config router.yaml``),
overridden by environment variables, validated at start-up.

Every option is a row of :data:`OPTIONS`: its YAML path, the environment
variable that overrides it and the :class:`Settings` field it sets. Unknown
keys, wrong types and inconsistent combinations are refused with a message
naming the option (:class:`ConfigError`) before the router serves anything.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from router.supergraph import Supergraph

SAFELIST_MODES = ("off", "allow", "safelist", "require-id")
ALGORITHMS = ("ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "EdDSA")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the option and why."""


@dataclass(frozen=True)
class HeaderRule:
    """Client header ``name`` is forwarded to subgraph requests (``rename`` on the way)."""

    name: str
    rename: str | None = None


@dataclass(frozen=True)
class SubgraphHeaderRules:
    """What one subgraph is sent on top of ``headers.propagate``: more client headers
    (``propagate``), headers taken out again (``remove``) and fixed ones (``insert``)."""

    propagate: tuple[HeaderRule, ...] = ()
    remove: tuple[str, ...] = ()
    insert: tuple[tuple[str, str], ...] = ()


# Set by the router itself on every subgraph request (identity, client address, request id,
# trace context, the GraphQL request's media types): no header rule may name them.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "x-shopgraph-client-address",
        "x-request-id",
        "traceparent",
        "tracestate",
        "content-type",
        "accept",
    }
)


@dataclass(frozen=True)
class Resilience:
    """How the router calls one subgraph when calls fail (router/breaker.py)."""

    retries: int = 0  # more attempts for a query after a refused/reset connection or a 502/503/504
    retry_backoff: float = 0.05  # seconds before the first retry (full jitter), doubled each time
    breaker_failures: int = 0  # failed calls in a row that open the circuit (0: no breaker)
    breaker_open_seconds: float = 5.0  # open this long, then one call goes through (half-open)


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``rate`` requests per second sustained, ``burst`` at once."""

    rate: float
    burst: float


@dataclass(frozen=True)
class Settings:
    # supergraph
    supergraph_path: str | None = None  # a file or an http(s) URL
    supergraph_poll: float = 2.0  # seconds between checks of the supergraph (0: no hot reload)
    # authentication
    jwks_urls: tuple[str, ...] = ()
    anonymous_only: bool = False  # explicitly run without authentication (every bearer token -> 401)
    jwt_issuer: str | None = "shopgraph-users"
    jwt_audience: str | None = "shopgraph"
    jwt_algorithms: tuple[str, ...] = ("ES256",)
    jwks_min_refetch: float = 10.0  # seconds between JWKS refetches on unknown kids
    jwks_refresh: float = 300.0  # keys are refetched this often (rotation)
    service_secret: str | None = None
    # subgraphs
    subgraph_urls: Mapping[str, str] = field(default_factory=dict)  # graph enum value -> URL
    # URL prefixes a (hot-reloaded) supergraph may send subgraph requests to; empty: only the
    # URLs of the supergraph the router started with
    allowed_subgraph_urls: tuple[str, ...] = ()
    subgraph_timeout: float = 30.0  # seconds, per subgraph request
    # retries and circuit breakers by subgraph name (lower case), "default" for the others
    subgraph_resilience: Mapping[str, Resilience] = field(default_factory=dict)
    propagate_headers: tuple[HeaderRule, ...] = ()
    subgraph_headers: Mapping[str, SubgraphHeaderRules] = field(default_factory=dict)  # graph enum value -> rules
    # addresses of proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (none by default:
    # a client could otherwise pick the address its rate limit and sign-in throttling are counted by)
    trusted_proxies: tuple[str, ...] = ()
    storefront_img_src: tuple[str, ...] = ()  # origins the storefront page may load images from
    # origins a payment provider's element needs (Stripe.js, its frames, its API): issue 16
    storefront_script_src: tuple[str, ...] = ()
    storefront_frame_src: tuple[str, ...] = ()
    storefront_connect_src: tuple[str, ...] = ()
    # host:port of the admin listener serving /metrics (then not on the public port); unset: public
    admin_listen: str | None = None
    # connection limits (router/connection_limits.py)
    max_connections_per_address: int = 256  # HTTP and WebSocket connections open from one client address
    header_timeout: float = 10.0  # seconds a connection may take to send a whole request head
    # request limits
    max_body_bytes: int = 1_000_000  # HTTP bodies, WebSocket and SSE messages
    max_tokens: int = 15_000  # parser tokens (Apollo Router's default)
    max_depth: int = 32
    max_aliases: int = 100
    max_fields: int = 5_000  # fields selected, fragments expanded
    request_timeout: float = 30.0  # whole request, every fetch included
    # demand control
    demand_control: bool = True
    max_cost: int | None = None  # None: derived from demand_control.cost_manifest (see router/cost.py)
    default_list_size: int = 20  # assumed length of a list without @listSize
    expensive_cost: int = 5_000  # operations from this cost on draw from the expensive budget
    cost_report: bool = False  # estimated and actual cost in the response's extensions
    # rate limits (token buckets in Redis, else in process)
    rate_limits: bool = True
    rate_users: Bucket = Bucket(100.0, 1_000.0)
    rate_anonymous: Bucket = Bucket(50.0, 500.0)
    rate_expensive: Bucket = Bucket(2_000.0, 20_000.0)  # cost units (router/cost_budget.py)
    # persisted queries
    apq: bool = True
    safelist: str = "off"  # off | allow | safelist | require-id
    manifest_path: str | None = None
    # browser security
    csrf: bool = True
    csrf_required_headers: tuple[str, ...] = ("x-apollo-operation-name", "apollo-require-preflight")
    cors_origins: tuple[str, ...] = ()  # besides the same origin
    cors_origin_regex: str | None = None
    cors_allow_credentials: bool = True
    cors_allow_headers: tuple[str, ...] = (
        "content-type",
        "authorization",
        "apollo-require-preflight",
        "x-apollo-operation-name",
    )
    cors_max_age: int = 600
    # The one cookie relayed between browsers and one subgraph (router/session_cookie.py): its
    # name and the subgraph (graph enum value or name) that sets it; unset: cookies never pass.
    session_cookie: str | None = None
    session_cookie_subgraph: str | None = None
    # errors
    introspection: bool = True
    graphiql: bool = True
    error_extensions: tuple[str, ...] = ("code", "serviceName", "http", "field", "retryAfter")
    # Redis (APQ store, rate limits) — in process when unset
    redis_url: str | None = None
    redis_prefix: str = "shopgraph:"
    redis_max_connections: int = 64  # one pool for every Redis user in the router (router/redis_pool.py)
    redis_pool_wait: float = 0.05  # seconds a command waits for a free connection before its feature degrades
    redis_timeout: float = 0.25  # seconds a rate-limit check waits for Redis before the in-process bucket decides
    # caches
    plan_cache_size: int = 2048
    apq_cache_chars: int = 20_000_000  # in-process APQ texts (a copy of Redis's, or the store without Redis)
    # the entity cache (router/entity_cache.py): needs Redis
    entity_cache: bool = True
    entity_cache_max_age: int = 3600  # cap on any entry's life, whatever a subgraph allows
    entity_cache_streams: tuple[str, ...] = ("catalog",)  # subgraphs whose change events invalidate entries
    # subscriptions (see router/subscriptions.py)
    max_subscriptions_per_connection: int = 100
    subscription_buffer: int = 1024  # events queued per subscriber (WebSocket: per subscription on it) before a drop
    subscription_backlog_bytes: int = 4 * 1024 * 1024  # unsent bytes a WebSocket may hold before it is dropped
    subscription_heartbeat: float = 5.0  # seconds between SSE/multipart keep-alives
    # an acknowledged WebSocket with no operation this long is closed (pings do not count); 0: never
    ws_idle_timeout: float = 60.0
    subscription_anonymous_ttl: int = 3600  # upstream connection lifetime when the client has no token
    upstream_subscriptions: int = 100  # subscriptions multiplexed on one subgraph WebSocket
    # query planning
    expose_query_plan: bool = False  # the plan in `extensions` when asked by Apollo-Expose-Query-Plan: true
    override_labels: tuple[str, ...] = ()  # progressive @override labels switched on
    # authorization directives (router/authorization.py)
    authorization_directives: bool = True  # enforce @authenticated, @requiresScopes, @policy
    reject_unauthorized: bool = False  # refuse the whole request instead of nulling the fields
    policy_hook: str | None = None  # "module:function" deciding @policy
    # -- the request pipeline under attack (router/admission.py, router/pipeline.py) --
    max_document_bytes: int = 65_536  # a query's text, before it is lexed
    max_token_bytes: int = 16_384  # one string, block string or comment in it
    max_overlap_pairs: int = 500  # field pairs validation's field-merging rule may compare
    max_pending_documents: int = 64  # new documents waiting for the parse/validate/plan worker
    # processes preparing new documents (router/docpool.py; sized for 2 cores); 0: a thread of the router's own
    document_workers: int = 2
    document_worker_nice: int = 0  # their CPU priority below the router's (0-19)
    prepare_timeout: float = 10.0  # a worker not done with one document by then is killed and replaced
    prepare_seconds: Bucket = Bucket(0.5, 10.0)  # per caller: seconds of that worker's CPU per second, burst
    document_cache_bytes: int = 32 * 1024 * 1024  # parsed documents and plans kept (each cache, estimated)
    apq_max_entry_bytes: int = 32_768  # larger APQ texts are served, not stored
    apq_max_total_bytes: int = 64 * 1024 * 1024  # APQ texts stored in Redis per TTL period
    cost_manifest: str | None = None  # operations whose heaviest sets max_cost (default: the storefront's)
    cost_manifest_factor: float = 2.0  # max_cost = factor x that operation's cost
    max_page_size: int = 100  # the largest `first` subgraphs serve (their page cap): slicing sizes stop there

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return load(None, env)

    def check(self) -> None:
        """Refuse settings the router cannot run with (raised at start-up)."""
        if not self.jwks_urls and not self.anonymous_only:
            raise ConfigError(
                "auth.jwks_urls (SHOPGRAPH_JWKS_URL) is not set: the router cannot verify tokens. Set it, "
                "or set auth.disabled: true (SHOPGRAPH_AUTH_DISABLED=1) to run without authentication."
            )
        if self.safelist not in SAFELIST_MODES:
            raise ConfigError(f"persisted_queries.safelist must be one of {', '.join(SAFELIST_MODES)}")
        if self.safelist != "off" and not self.manifest_path:
            raise ConfigError("persisted_queries.manifest is needed when persisted_queries.safelist is not off")
        if self.manifest_path and not Path(self.manifest_path).is_file():
            raise ConfigError(f"persisted_queries.manifest: no file at {self.manifest_path}")
        bad = [a for a in self.jwt_algorithms if a not in ALGORITHMS]
        if bad or not self.jwt_algorithms:
            raise ConfigError(f"auth.algorithms: {bad or 'none'} not among {', '.join(ALGORITHMS)}")
        for name in ("max_body_bytes", "max_tokens", "max_depth", "max_aliases", "max_fields"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_yaml_path(name)} must be positive")
        self._check_pipeline()
        if self.redis_max_connections < 2:
            raise ConfigError("redis.max_connections must be at least 2 (the change-event follower holds one)")
        if self.max_connections_per_address < 1:
            raise ConfigError("limits.max_connections_per_address must be positive")
        if self.document_workers < 0:
            raise ConfigError("limits.document_workers must be 0 (a thread) or more")
        if not 0 <= self.document_worker_nice <= 19:
            raise ConfigError("limits.document_worker_nice must be between 0 and 19")
        for name in (
            "request_timeout",
            "subgraph_timeout",
            "redis_pool_wait",
            "redis_timeout",
            "header_timeout",
            "prepare_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_yaml_path(name)} must be positive")
        if self.ws_idle_timeout < 0:
            raise ConfigError(f"{_yaml_path('ws_idle_timeout')} must be 0 (never) or positive")
        for name in ("rate_users", "rate_anonymous", "rate_expensive", "prepare_seconds"):
            b: Bucket = getattr(self, name)
            if b.rate <= 0 or b.burst < 1:
                raise ConfigError(f"{_yaml_path(name)}: rate must be > 0 and burst >= 1")
        if self.admin_listen is not None:
            host, _, port = self.admin_listen.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"admin.listen: expected host:port (got {self.admin_listen!r})")
        self._check_header_rules()
        self._check_session_cookie()

    def _check_session_cookie(self) -> None:
        if (self.session_cookie is None) != (self.session_cookie_subgraph is None):
            raise ConfigError("session_cookie: set both name and subgraph, or neither")
        if self.session_cookie is None:
            return
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.session_cookie):
            raise ConfigError(f"session_cookie.name: {self.session_cookie!r} is not a plain cookie name")
        if not self.csrf:
            # A cookie goes with every request the browser makes: only CSRF prevention (a preflight,
            # which CORS then refuses for other sites) keeps another site from spending it.
            raise ConfigError("session_cookie needs csrf.enabled: a cookie-carrying request must be preflighted")

    def _check_pipeline(self) -> None:
        for name in (
            "max_cost",
            "max_document_bytes",
            "max_token_bytes",
            "max_overlap_pairs",
            "max_pending_documents",
            "document_cache_bytes",
            "apq_max_entry_bytes",
            "apq_max_total_bytes",
            "cost_manifest_factor",
            "max_page_size",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{_yaml_path(name)} must be positive")
        if self.cost_manifest and not Path(self.cost_manifest).is_file():
            raise ConfigError(f"demand_control.cost_manifest: no file at {self.cost_manifest}")

    def _check_header_rules(self) -> None:
        named = [("headers.propagate", r.rename or r.name) for r in self.propagate_headers]
        for graph, g in self.subgraph_headers.items():
            where = f"headers.subgraphs.{graph.lower()}"
            named += [(f"{where}.propagate", r.rename or r.name) for r in g.propagate]
            named += [(f"{where}.remove", n) for n in g.remove] + [(f"{where}.insert", n) for n, _ in g.insert]
        for where, name in named:
            if name in RESERVED_HEADERS:
                raise ConfigError(f"{where}: {name!r} is set by the router itself and cannot be propagated or changed")

    def check_subgraphs(self, sg: Supergraph) -> None:
        """Refuse per-subgraph header rules naming a subgraph the supergraph does not have,
        and subgraph URLs outside ``subgraphs.allowed_urls``."""
        outside = not_allowed(subgraph_urls(sg, self), self.allowed_subgraph_urls)
        if outside:
            raise ConfigError(f"subgraphs.allowed_urls: the supergraph sends requests to {', '.join(outside)}")
        known = {g.upper() for g in sg.graphs}
        names = {n.lower() for n in known} | {g.name.lower() for g in sg.graphs.values()} | {"default"}
        odd = sorted(n for n in self.subgraph_resilience if n not in names)
        if odd:
            raise ConfigError(f"subgraphs.resilience: no subgraph named {', '.join(odd)} in the supergraph")
        if self.session_cookie_subgraph is not None and self.session_cookie_subgraph.lower() not in names - {"default"}:
            raise ConfigError(f"session_cookie.subgraph: no subgraph named {self.session_cookie_subgraph}")
        unknown = sorted(g.lower() for g in self.subgraph_headers if g not in known)
        if unknown:
            raise ConfigError(
                f"headers.subgraphs: no subgraph named {', '.join(unknown)} in the supergraph "
                f"(subgraphs: {', '.join(sorted(g.lower() for g in sg.graphs))})"
            )


# -- the options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    path: str  # dotted YAML path
    field: str  # Settings field
    kind: str  # str | int | float | bool | list | map | bucket | headers | subgraph_headers
    env: str | None  # environment variable that overrides it
    doc: str


OPTIONS: tuple[Option, ...] = (
    Option("supergraph.path", "supergraph_path", "str", "SHOPGRAPH_SUPERGRAPH", "supergraph SDL: a file or an URL"),
    Option(
        "supergraph.poll_seconds",
        "supergraph_poll",
        "float",
        "SHOPGRAPH_SUPERGRAPH_POLL",
        "how often the file or URL is checked for a new supergraph (hot reload); 0 turns it off",
    ),
    Option(
        "auth.jwks_urls", "jwks_urls", "list", "SHOPGRAPH_JWKS_URL", "JWKS URLs of access-token keys (comma-separated)"
    ),
    Option(
        "auth.disabled",
        "anonymous_only",
        "bool",
        "SHOPGRAPH_AUTH_DISABLED",
        "run without authentication: required when no JWKS is set; every bearer token is then refused",
    ),
    Option("auth.issuer", "jwt_issuer", "str", "SHOPGRAPH_JWT_ISSUER", "required `iss` of access tokens"),
    Option("auth.audience", "jwt_audience", "str", "SHOPGRAPH_JWT_AUDIENCE", "required `aud` of access tokens"),
    Option(
        "auth.algorithms",
        "jwt_algorithms",
        "list",
        "SHOPGRAPH_JWT_ALGORITHMS",
        "accepted signature algorithms (ES256, RS256, EdDSA, …)",
    ),
    Option("auth.jwks_refresh_seconds", "jwks_refresh", "float", "SHOPGRAPH_JWKS_REFRESH", "keys refetched this often"),
    Option(
        "auth.jwks_min_refetch_seconds",
        "jwks_min_refetch",
        "float",
        "SHOPGRAPH_JWKS_MIN_REFETCH",
        "least time between refetches caused by unknown key ids",
    ),
    Option(
        "subgraphs.service_secret",
        "service_secret",
        "str",
        "SHOPGRAPH_SERVICE_SECRET",
        "secret of the internal tokens forwarding the identity to subgraphs",
    ),
    Option(
        "subgraphs.urls",
        "subgraph_urls",
        "map",
        "SHOPGRAPH_SUBGRAPH_<NAME>_URL",
        "subgraph URLs by graph name, overriding the supergraph's",
    ),
    Option(
        "subgraphs.allowed_urls",
        "allowed_subgraph_urls",
        "list",
        "SHOPGRAPH_ALLOWED_SUBGRAPH_URLS",
        "URL prefixes subgraph requests may go to (a supergraph naming another is refused, at start and on "
        "reload); empty: the URLs of the supergraph the router started with",
    ),
    Option(
        "subgraphs.timeout_seconds", "subgraph_timeout", "float", "SHOPGRAPH_SUBGRAPH_TIMEOUT", "per subgraph request"
    ),
    Option(
        "subgraphs.resilience",
        "subgraph_resilience",
        "resilience",
        None,
        "retries (queries only) and circuit breakers: {default: {retries, retry_backoff_seconds, "
        "breaker_failures, breaker_open_seconds}, NAME: {...}}; off unless set",
    ),
    Option(
        "headers.propagate",
        "propagate_headers",
        "headers",
        "SHOPGRAPH_PROPAGATE_HEADERS",
        "client headers forwarded to subgraphs: names, or {name, rename} (env: comma-separated names)",
    ),
    Option(
        "headers.subgraphs",
        "subgraph_headers",
        "subgraph_headers",
        None,
        "per subgraph, on top of `headers.propagate`: {NAME: {propagate: [...], remove: [names], "
        "insert: [{name, value}]}}",
    ),
    Option(
        "admin.listen",
        "admin_listen",
        "str",
        "SHOPGRAPH_ADMIN_LISTEN",
        "host:port of a second listener serving /metrics, which the public port then does not serve",
    ),
    Option(
        "storefront.img_src",
        "storefront_img_src",
        "list",
        "SHOPGRAPH_STOREFRONT_IMG_SRC",
        "origins (besides this one and https:) the storefront page may load images from, e.g. the catalog's media",
    ),
    Option(
        "storefront.script_src",
        "storefront_script_src",
        "list",
        "SHOPGRAPH_STOREFRONT_SCRIPT_SRC",
        "origins the storefront page may load scripts from besides its own: a payment provider's element "
        "(Stripe: https://js.stripe.com)",
    ),
    Option(
        "storefront.frame_src",
        "storefront_frame_src",
        "list",
        "SHOPGRAPH_STOREFRONT_FRAME_SRC",
        "origins the storefront page may frame (Stripe: https://js.stripe.com, https://hooks.stripe.com)",
    ),
    Option(
        "storefront.connect_src",
        "storefront_connect_src",
        "list",
        "SHOPGRAPH_STOREFRONT_CONNECT_SRC",
        "origins the storefront's scripts may call besides /graphql (Stripe: https://api.stripe.com)",
    ),
    Option(
        "server.trusted_proxies",
        "trusted_proxies",
        "list",
        "SHOPGRAPH_TRUSTED_PROXIES",
        "addresses (or CIDR ranges) of proxies whose X-Forwarded-For is believed; none by default",
    ),
    Option(
        "limits.max_connections_per_address",
        "max_connections_per_address",
        "int",
        "SHOPGRAPH_MAX_CONNECTIONS_PER_ADDRESS",
        "HTTP and WebSocket connections one client address may hold open; more are closed at once",
    ),
    Option(
        "limits.header_timeout_seconds",
        "header_timeout",
        "float",
        "SHOPGRAPH_HEADER_TIMEOUT",
        "a connection that has not sent a whole request head this long after opening is closed",
    ),
    Option(
        "limits.max_body_bytes",
        "max_body_bytes",
        "int",
        "SHOPGRAPH_MAX_BODY_BYTES",
        "HTTP body, WebSocket and SSE message size",
    ),
    Option("limits.max_tokens", "max_tokens", "int", "SHOPGRAPH_MAX_TOKENS", "parser tokens per document"),
    Option("limits.max_depth", "max_depth", "int", "SHOPGRAPH_MAX_DEPTH", "selection depth, fragments expanded"),
    Option("limits.max_aliases", "max_aliases", "int", "SHOPGRAPH_MAX_ALIASES", "aliases per operation"),
    Option("limits.max_fields", "max_fields", "int", "SHOPGRAPH_MAX_FIELDS", "fields, fragments expanded"),
    Option(
        "limits.request_timeout_seconds",
        "request_timeout",
        "float",
        "SHOPGRAPH_REQUEST_TIMEOUT",
        "deadline of a whole query or mutation, every fetch included",
    ),
    Option("demand_control.enabled", "demand_control", "bool", "SHOPGRAPH_DEMAND_CONTROL", "estimate and cap cost"),
    Option(
        "demand_control.max_cost",
        "max_cost",
        "int",
        "SHOPGRAPH_MAX_COST",
        "largest estimated cost served (default: demand_control.manifest_factor x the heaviest operation of "
        "demand_control.cost_manifest; 10,000 when there is none)",
    ),
    Option(
        "demand_control.default_list_size",
        "default_list_size",
        "int",
        "SHOPGRAPH_DEFAULT_LIST_SIZE",
        "assumed length of lists without @listSize",
    ),
    Option(
        "demand_control.expensive_cost",
        "expensive_cost",
        "int",
        "SHOPGRAPH_EXPENSIVE_COST",
        "operations of this cost or more also draw from the expensive rate budget",
    ),
    Option(
        "demand_control.report",
        "cost_report",
        "bool",
        "SHOPGRAPH_COST_REPORT",
        "add extensions.cost {estimated, actual} to responses",
    ),
    Option("rate_limits.enabled", "rate_limits", "bool", "SHOPGRAPH_RATE_LIMITS", "token buckets per caller"),
    Option("rate_limits.users", "rate_users", "bucket", "SHOPGRAPH_RATE_USERS", "per signed-in user: {rate, burst}"),
    Option(
        "rate_limits.anonymous",
        "rate_anonymous",
        "bucket",
        "SHOPGRAPH_RATE_ANONYMOUS",
        "per client address without a token: {rate, burst}",
    ),
    Option(
        "rate_limits.expensive",
        "rate_expensive",
        "bucket",
        "SHOPGRAPH_RATE_EXPENSIVE",
        "per caller, in cost units: every anonymous operation and a user's of at least expensive_cost draw their "
        "cost, one over the cap empties it by the cap: {rate, burst}",
    ),
    Option("persisted_queries.apq", "apq", "bool", "SHOPGRAPH_APQ", "automatic persisted queries"),
    Option(
        "persisted_queries.safelist",
        "safelist",
        "str",
        "SHOPGRAPH_SAFELIST",
        "off; allow (manifest ids and any query); safelist (manifest operations only); require-id",
    ),
    Option(
        "persisted_queries.manifest",
        "manifest_path",
        "str",
        "SHOPGRAPH_PQ_MANIFEST",
        "persisted-query manifest (Apollo format)",
    ),
    Option("csrf.enabled", "csrf", "bool", "SHOPGRAPH_CSRF", "refuse requests a browser sends without preflight"),
    Option(
        "csrf.required_headers",
        "csrf_required_headers",
        "list",
        "SHOPGRAPH_CSRF_HEADERS",
        "any of these headers marks a request as not simple",
    ),
    Option("cors.origins", "cors_origins", "list", "SHOPGRAPH_CORS_ORIGINS", "origins allowed besides the same one"),
    Option(
        "cors.origin_regex", "cors_origin_regex", "str", "SHOPGRAPH_CORS_ORIGIN_REGEX", "origins allowed by pattern"
    ),
    Option(
        "session_cookie.name",
        "session_cookie",
        "str",
        "SHOPGRAPH_SESSION_COOKIE",
        "the one cookie relayed to and from session_cookie.subgraph over HTTP (the storefront's refresh token)",
    ),
    Option(
        "session_cookie.subgraph",
        "session_cookie_subgraph",
        "str",
        "SHOPGRAPH_SESSION_COOKIE_SUBGRAPH",
        "the subgraph that sets the session cookie (users)",
    ),
    Option(
        "cors.allow_credentials",
        "cors_allow_credentials",
        "bool",
        "SHOPGRAPH_CORS_CREDENTIALS",
        "allow cookies/authorization",
    ),
    Option(
        "cors.allow_headers",
        "cors_allow_headers",
        "list",
        "SHOPGRAPH_CORS_HEADERS",
        "request headers allowed cross-origin",
    ),
    Option("cors.max_age_seconds", "cors_max_age", "int", "SHOPGRAPH_CORS_MAX_AGE", "preflight cache lifetime"),
    Option(
        "query_plan.expose",
        "expose_query_plan",
        "bool",
        "SHOPGRAPH_EXPOSE_QUERY_PLAN",
        "the plan in `extensions.apolloQueryPlan` for requests sending `Apollo-Expose-Query-Plan: true`",
    ),
    Option(
        "query_plan.override_labels",
        "override_labels",
        "list",
        "SHOPGRAPH_OVERRIDE_LABELS",
        "progressive `@override` labels switched on (`percent(N)` labels route their share by themselves)",
    ),
    Option(
        "authorization.directives",
        "authorization_directives",
        "bool",
        "SHOPGRAPH_AUTHZ_DIRECTIVES",
        "enforce the supergraph's `@authenticated`, `@requiresScopes` and `@policy` before calling subgraphs",
    ),
    Option(
        "authorization.reject_unauthorized",
        "reject_unauthorized",
        "bool",
        "SHOPGRAPH_AUTHZ_REJECT",
        "refuse a request asking for any unauthorized field (403) instead of answering null with an error",
    ),
    Option(
        "authorization.policy_hook",
        "policy_hook",
        "str",
        "SHOPGRAPH_AUTHZ_POLICY_HOOK",
        "`module:function(identity, policies) -> granted policies` deciding `@policy` (none: every policy fails)",
    ),
    Option("introspection", "introspection", "bool", "SHOPGRAPH_INTROSPECTION", "introspection and suggestions"),
    Option("graphiql", "graphiql", "bool", "SHOPGRAPH_GRAPHIQL", "GraphiQL on GET /graphql from browsers"),
    Option(
        "errors.allowed_extensions",
        "error_extensions",
        "list",
        "SHOPGRAPH_ERROR_EXTENSIONS",
        "subgraph error extensions passed to clients",
    ),
    Option("redis.url", "redis_url", "str", "REDIS_URL", "APQ store and rate limits; in process when unset"),
    Option("redis.prefix", "redis_prefix", "str", "SHOPGRAPH_REDIS_PREFIX", "prefix of every Redis key"),
    Option(
        "redis.max_connections",
        "redis_max_connections",
        "int",
        "SHOPGRAPH_REDIS_MAX_CONNECTIONS",
        "connections of the one Redis pool every router feature shares",
    ),
    Option(
        "redis.pool_wait_seconds",
        "redis_pool_wait",
        "float",
        "SHOPGRAPH_REDIS_POOL_WAIT",
        "longest wait for a free Redis connection before the feature degrades (see the README)",
    ),
    Option(
        "redis.timeout_seconds",
        "redis_timeout",
        "float",
        "SHOPGRAPH_REDIS_TIMEOUT",
        "longest wait for Redis's answer to a rate-limit check (then an in-process bucket decides)",
    ),
    Option("cache.plans", "plan_cache_size", "int", "SHOPGRAPH_PLAN_CACHE_SIZE", "operations kept planned"),
    Option(
        "cache.entities",
        "entity_cache",
        "bool",
        "SHOPGRAPH_ENTITY_CACHE",
        "cache subgraph answers their Cache-Control allows, in Redis (needs redis.url)",
    ),
    Option(
        "cache.entities_max_age",
        "entity_cache_max_age",
        "int",
        "SHOPGRAPH_ENTITY_CACHE_MAX_AGE",
        "longest life of an entity cache entry, in seconds",
    ),
    Option(
        "cache.entities_streams",
        "entity_cache_streams",
        "list",
        "SHOPGRAPH_ENTITY_CACHE_STREAMS",
        "subgraphs whose change events (`<prefix><name>:events`) invalidate cached entries",
    ),
    Option(
        "cache.apq_chars",
        "apq_cache_chars",
        "int",
        "SHOPGRAPH_APQ_CACHE_CHARS",
        "characters of APQ texts kept in process (all of them without Redis)",
    ),
    # -- the request pipeline under attack (router/admission.py) --
    Option(
        "limits.max_document_bytes",
        "max_document_bytes",
        "int",
        "SHOPGRAPH_MAX_DOCUMENT_BYTES",
        "bytes of a query's text, refused before it is lexed",
    ),
    Option(
        "limits.max_token_bytes",
        "max_token_bytes",
        "int",
        "SHOPGRAPH_MAX_TOKEN_BYTES",
        "bytes of one string, block string or comment in a query (values belong in variables)",
    ),
    Option(
        "limits.max_overlap_pairs",
        "max_overlap_pairs",
        "int",
        "SHOPGRAPH_MAX_OVERLAP_PAIRS",
        "pairs of same-named fields (fragments expanded) validation may compare; counted before it runs",
    ),
    Option(
        "limits.max_pending_documents",
        "max_pending_documents",
        "int",
        "SHOPGRAPH_MAX_PENDING_DOCUMENTS",
        "new documents queued for the parse/validate/plan worker before requests get 503",
    ),
    Option(
        "limits.document_workers",
        "document_workers",
        "int",
        "SHOPGRAPH_DOCUMENT_WORKERS",
        "processes that parse, validate and plan new documents off the router's interpreter (0: one thread)",
    ),
    Option(
        "limits.document_worker_nice",
        "document_worker_nice",
        "int",
        "SHOPGRAPH_DOCUMENT_WORKER_NICE",
        "the document workers' niceness (0-19): higher, the router's event loop gets the CPU before them",
    ),
    Option(
        "limits.prepare_timeout_seconds",
        "prepare_timeout",
        "float",
        "SHOPGRAPH_PREPARE_TIMEOUT",
        "a document worker not done with one document by then is killed and replaced (the request: 503)",
    ),
    Option(
        "rate_limits.prepare_seconds",
        "prepare_seconds",
        "bucket",
        "SHOPGRAPH_RATE_PREPARE_SECONDS",
        "per caller: CPU seconds per second (and burst) the parse/validate/plan worker spends on its new documents",
    ),
    Option(
        "cache.documents_bytes",
        "document_cache_bytes",
        "int",
        "SHOPGRAPH_DOCUMENT_CACHE_BYTES",
        "estimated bytes of validated documents (and, apart, of plans) kept in process",
    ),
    Option(
        "persisted_queries.apq_max_entry_bytes",
        "apq_max_entry_bytes",
        "int",
        "SHOPGRAPH_APQ_MAX_ENTRY_BYTES",
        "largest APQ text stored (larger ones are served, not stored)",
    ),
    Option(
        "persisted_queries.apq_max_total_bytes",
        "apq_max_total_bytes",
        "int",
        "SHOPGRAPH_APQ_MAX_TOTAL_BYTES",
        "APQ bytes stored in Redis per 24 h (at most twice this is stored at once)",
    ),
    Option(
        "demand_control.cost_manifest",
        "cost_manifest",
        "str",
        "SHOPGRAPH_COST_MANIFEST",
        "persisted-query manifest whose heaviest operation sets the default max_cost "
        "(default: persisted_queries.manifest, else the storefront's frontend_contract/manifest.json)",
    ),
    Option(
        "demand_control.manifest_factor",
        "cost_manifest_factor",
        "float",
        "SHOPGRAPH_COST_MANIFEST_FACTOR",
        "max_cost = this x the cost of the manifest's heaviest operation",
    ),
    Option(
        "demand_control.max_page_size",
        "max_page_size",
        "int",
        "SHOPGRAPH_MAX_PAGE_SIZE",
        "the largest page (`first`) the subgraphs serve: a larger slicing argument costs this much, and the "
        "manifest's operations are costed with their Int variables at it",
    ),
    Option(
        "subscriptions.max_per_connection",
        "max_subscriptions_per_connection",
        "int",
        "SHOPGRAPH_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        "subscriptions per WebSocket",
    ),
    Option(
        "subscriptions.buffer",
        "subscription_buffer",
        "int",
        "SHOPGRAPH_SUBSCRIPTION_BUFFER",
        "events queued per subscriber (on a WebSocket: per subscription on the connection) before it is dropped",
    ),
    Option(
        "subscriptions.backlog_bytes",
        "subscription_backlog_bytes",
        "int",
        "SHOPGRAPH_SUBSCRIPTION_BACKLOG_BYTES",
        "bytes a WebSocket client may leave unread before it is dropped as too slow",
    ),
    Option(
        "subscriptions.idle_timeout_seconds",
        "ws_idle_timeout",
        "float",
        "SHOPGRAPH_WS_IDLE_TIMEOUT",
        "an acknowledged WebSocket without any subscription or operation this long is closed (1000, "
        "'Idle: …'); graphql-transport-ws pings keep nothing open; 0: never",
    ),
    Option(
        "subscriptions.heartbeat_seconds",
        "subscription_heartbeat",
        "float",
        "SHOPGRAPH_SUBSCRIPTION_HEARTBEAT",
        "SSE/multipart keep-alives",
    ),
)

_BY_PATH = {o.path: o for o in OPTIONS}
_BY_FIELD = {o.field: o for o in OPTIONS}


def _yaml_path(name: str) -> str:
    o = _BY_FIELD.get(name)
    return o.path if o else name


def _convert(o: Option, value: Any, where: str) -> Any:
    kind = o.kind
    try:
        if kind == "str":
            if value is None:
                return None
            if not isinstance(value, str | int | float):
                raise ValueError("expected a string")
            return str(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError("expected true or false")
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(str(value).replace("_", ""))
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if kind == "list":
            if isinstance(value, str):
                return tuple(x.strip() for x in value.split(",") if x.strip())
            if isinstance(value, list) and all(isinstance(x, str) for x in value):
                return tuple(value)
            raise ValueError("expected a list of strings")
        if kind == "map":
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                return {str(k).upper(): v for k, v in value.items()}
            raise ValueError("expected a mapping of names to URLs")
        if kind == "bucket":
            if isinstance(value, str):  # env: "rate/burst"
                r, _, b = value.partition("/")
                return Bucket(float(r), float(b or r))
            if isinstance(value, dict) and set(value) <= {"rate", "burst"} and "rate" in value:
                rate = float(value["rate"])
                return Bucket(rate, float(value.get("burst", rate)))
            raise ValueError("expected {rate: N, burst: M}")
        if kind == "headers":
            return _header_rules(value)
        if kind == "resilience":
            if not isinstance(value, dict):
                raise ValueError("expected a mapping of subgraph names (or default) to policies")
            return {str(name).lower(): _resilience(policy) for name, policy in value.items()}
        if kind == "subgraph_headers":
            if not isinstance(value, dict):
                raise ValueError("expected a mapping of subgraph names to {propagate, remove, insert}")
            return {str(graph).upper(): _subgraph_rules(rules) for graph, rules in value.items()}
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e} (got {value!r})") from e
    raise AssertionError(kind)


def _header_rules(value: Any) -> tuple[HeaderRule, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("expected a list")
    rules = []
    for item in items:
        if isinstance(item, str) and item.strip():
            rules.append(HeaderRule(item.strip().lower()))
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) <= {"name", "rename"}:
            rename = item.get("rename")
            rules.append(HeaderRule(item["name"].lower(), str(rename).lower() if rename else None))
        else:
            raise ValueError("expected header names or {name, rename}")
    return tuple(rules)


_RESILIENCE_KEYS = {
    "retries": "retries",
    "retry_backoff_seconds": "retry_backoff",
    "breaker_failures": "breaker_failures",
    "breaker_open_seconds": "breaker_open_seconds",
}


def _resilience(value: Any) -> Resilience:
    if not isinstance(value, dict) or not set(value) <= set(_RESILIENCE_KEYS):
        raise ValueError(f"expected {{{', '.join(_RESILIENCE_KEYS)}}} per subgraph")
    out = Resilience(**{_RESILIENCE_KEYS[k]: v for k, v in value.items()})
    if (
        not (isinstance(out.retries, int) and isinstance(out.breaker_failures, int))
        or min(out.retries, out.breaker_failures) < 0
    ):
        raise ValueError("retries and breaker_failures: whole numbers, 0 or more")
    if not all(isinstance(x, int | float) and x > 0 for x in (out.retry_backoff, out.breaker_open_seconds)):
        raise ValueError("retry_backoff_seconds and breaker_open_seconds: positive numbers")
    return out


def _subgraph_rules(value: Any) -> SubgraphHeaderRules:
    if not isinstance(value, dict) or not set(value) <= {"propagate", "remove", "insert"}:
        raise ValueError("expected {propagate: [...], remove: [names], insert: [{name, value}]} per subgraph")
    remove = value.get("remove", [])
    if not isinstance(remove, list) or not all(isinstance(n, str) and n.strip() for n in remove):
        raise ValueError("remove: expected a list of header names")
    insert = value.get("insert", [])
    if not isinstance(insert, list) or not all(
        isinstance(i, dict) and set(i) == {"name", "value"} and isinstance(i["name"], str) for i in insert
    ):
        raise ValueError("insert: expected a list of {name, value}")
    return SubgraphHeaderRules(
        _header_rules(value.get("propagate", [])),
        tuple(n.strip().lower() for n in remove),
        tuple((i["name"].strip().lower(), str(i["value"])) for i in insert),
    )


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in _BY_PATH:
            out[path] = value
        elif isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            known = ", ".join(sorted({o.path.split(".")[0] for o in OPTIONS}))
            raise ConfigError(f"unknown option {path!r} (sections and options: {known}; see the README)")
    return out


def load(path: str | Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the YAML file at ``path`` (if any), then the environment; not yet checked."""
    e = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        for p, v in _flatten(data).items():
            o = _BY_PATH[p]
            values[o.field] = _convert(o, v, f"{path}: {p}")
    for o in OPTIONS:
        if o.env is None or o.env.endswith("<NAME>_URL"):
            continue
        raw = e.get(o.env)
        if raw:
            values[o.field] = _convert(o, raw, o.env)
    urls = {
        k[len("SHOPGRAPH_SUBGRAPH_") : -len("_URL")]: v
        for k, v in e.items()
        if k.startswith("SHOPGRAPH_SUBGRAPH_") and k.endswith("_URL")
    }
    if urls:
        values["subgraph_urls"] = {**values.get("subgraph_urls", {}), **urls}
    known = {f.name for f in dataclasses.fields(Settings)}
    assert set(values) <= known
    return Settings(**values)


def url_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """``url`` is one of ``allowed`` or under one of them (a whole path segment: no
    ``http://catalog:8000.evil`` for ``http://catalog:8000``)."""
    return any(url == a or url.startswith(a if a.endswith("/") else a + "/") for a in allowed)


def not_allowed(urls: Mapping[str, str], allowed: tuple[str, ...]) -> list[str]:
    """The subgraph URLs (graph=url) outside ``allowed``; none when no allow-list is configured."""
    if not allowed:
        return []
    return [f"{g.lower()}={u}" for g, u in sorted(urls.items()) if not url_allowed(u, allowed)]


def subgraph_urls(sg: Supergraph, settings: Settings) -> dict[str, str]:
    """join__Graph(url:) per graph, overridden by SHOPGRAPH_SUBGRAPH_<NAME>_URL."""
    over = {k.upper(): v for k, v in settings.subgraph_urls.items()}
    return {g: over.get(g.upper(), info.url) for g, info in sg.graphs.items()}
