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
    subgraph_timeout: float = 30.0  # seconds, per subgraph request
    propagate_headers: tuple[HeaderRule, ...] = ()
    subgraph_headers: Mapping[str, SubgraphHeaderRules] = field(default_factory=dict)  # graph enum value -> rules
    # request limits
    max_body_bytes: int = 1_000_000  # HTTP bodies, WebSocket and SSE messages
    max_tokens: int = 15_000  # parser tokens (Apollo Router's default)
    max_depth: int = 32
    max_aliases: int = 100
    max_fields: int = 5_000  # fields selected, fragments expanded
    request_timeout: float = 30.0  # whole request, every fetch included
    # demand control
    demand_control: bool = True
    max_cost: int = 50_000
    default_list_size: int = 20  # assumed length of a list without @listSize
    expensive_cost: int = 5_000  # operations from this cost on draw from the expensive budget
    cost_report: bool = False  # estimated and actual cost in the response's extensions
    # rate limits (token buckets in Redis, else in process)
    rate_limits: bool = True
    rate_users: Bucket = Bucket(100.0, 1_000.0)
    rate_anonymous: Bucket = Bucket(50.0, 500.0)
    rate_expensive: Bucket = Bucket(2.0, 30.0)
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
    # errors
    introspection: bool = True
    graphiql: bool = True
    error_extensions: tuple[str, ...] = ("code", "serviceName", "http", "field", "retryAfter")
    # Redis (APQ store, rate limits) — in process when unset
    redis_url: str | None = None
    redis_prefix: str = "shopgraph:"
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
    subscription_anonymous_ttl: int = 3600  # upstream connection lifetime when the client has no token
    upstream_subscriptions: int = 100  # subscriptions multiplexed on one subgraph WebSocket
    # query planning
    expose_query_plan: bool = False  # the plan in `extensions` when asked by Apollo-Expose-Query-Plan: true
    override_labels: tuple[str, ...] = ()  # progressive @override labels switched on

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
        for name in ("max_body_bytes", "max_tokens", "max_depth", "max_aliases", "max_fields", "max_cost"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_yaml_path(name)} must be positive")
        for name in ("request_timeout", "subgraph_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_yaml_path(name)} must be positive")
        for name in ("rate_users", "rate_anonymous", "rate_expensive"):
            b: Bucket = getattr(self, name)
            if b.rate <= 0 or b.burst < 1:
                raise ConfigError(f"{_yaml_path(name)}: rate must be > 0 and burst >= 1")
        self._check_header_rules()

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
        """Refuse per-subgraph header rules naming a subgraph the supergraph does not have."""
        known = {g.upper() for g in sg.graphs}
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
        "subgraphs.timeout_seconds", "subgraph_timeout", "float", "SHOPGRAPH_SUBGRAPH_TIMEOUT", "per subgraph request"
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
    Option("demand_control.max_cost", "max_cost", "int", "SHOPGRAPH_MAX_COST", "largest estimated cost served"),
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
        "per caller, operations of at least expensive_cost: {rate, burst}",
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


def subgraph_urls(sg: Supergraph, settings: Settings) -> dict[str, str]:
    """join__Graph(url:) per graph, overridden by SHOPGRAPH_SUBGRAPH_<NAME>_URL."""
    over = {k.upper(): v for k, v in settings.subgraph_urls.items()}
    return {g: over.get(g.upper(), info.url) for g, info in sg.graphs.items()}
