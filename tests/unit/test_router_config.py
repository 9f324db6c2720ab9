"""The router's configuration: one YAML file, environment overrides, clear refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from deploy.cli import main
from router.config import OPTIONS, Bucket, ConfigError, HeaderRule, Settings, SubgraphHeaderRules, load

ROOT = Path(__file__).resolve().parents[2]
YAML = """
supergraph: {path: schema/supergraph.graphql, poll_seconds: 0}
auth:
  jwks_urls: [https://a.example/jwks, https://b.example/jwks]
  algorithms: [RS256, EdDSA]
  issuer: https://idp.example
limits: {max_tokens: 5000, request_timeout_seconds: 12}
rate_limits:
  anonymous: {rate: 5, burst: 50}
headers:
  propagate: [accept-language, {name: x-tenant, rename: x-shop-tenant}]
  subgraphs:
    catalog:
      propagate: [{name: x-currency, rename: x-catalog-currency}]
      remove: [Accept-Language]
      insert: [{name: x-caller, value: router}]
subgraphs:
  urls: {users: http://users.internal/graphql}
persisted_queries: {safelist: allow, manifest: frontend_contract/manifest.json}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return path


def test_a_yaml_file_sets_every_section(tmp_path: Path) -> None:
    s = load(_write(tmp_path, YAML), env={})
    assert s.jwks_urls == ("https://a.example/jwks", "https://b.example/jwks")
    assert s.jwt_algorithms == ("RS256", "EdDSA") and s.jwt_issuer == "https://idp.example"
    assert s.max_tokens == 5000 and s.request_timeout == 12.0
    assert s.rate_anonymous == Bucket(5.0, 50.0)
    assert s.propagate_headers == (HeaderRule("accept-language"), HeaderRule("x-tenant", "x-shop-tenant"))
    assert s.subgraph_headers == {
        "CATALOG": SubgraphHeaderRules(
            (HeaderRule("x-currency", "x-catalog-currency"),), ("accept-language",), (("x-caller", "router"),)
        )
    }
    assert s.subgraph_urls == {"USERS": "http://users.internal/graphql"}
    assert s.safelist == "allow"
    s.check()


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "SHOPGRAPH_MAX_TOKENS": "800",
        "SHOPGRAPH_JWKS_URL": "https://c.example/jwks",
        "SHOPGRAPH_RATE_ANONYMOUS": "2/20",
        "SHOPGRAPH_SUBGRAPH_CART_URL": "http://cart.internal/graphql",
        "SHOPGRAPH_CSRF": "false",
    }
    s = load(_write(tmp_path, YAML), env=env)
    assert s.max_tokens == 800 and s.jwks_urls == ("https://c.example/jwks",)
    assert s.rate_anonymous == Bucket(2.0, 20.0)
    assert s.subgraph_urls == {"USERS": "http://users.internal/graphql", "CART": "http://cart.internal/graphql"}
    assert s.csrf is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("limits: {max_tokenz: 5}", "unknown option 'limits.max_tokenz'"),
        ("limits: {max_tokens: lots}", "limits.max_tokens"),
        ("csrf: {enabled: maybe}", "csrf.enabled: expected true or false"),
        ("rate_limits: {users: 10}", "rate_limits.users: expected {rate: N, burst: M}"),
        ("- a list", "the top level must be a mapping"),
        ("headers: {subgraphs: {catalog: {rename: [x]}}}", "headers.subgraphs: expected {propagate"),
        ("headers: {subgraphs: {catalog: {insert: [x-a]}}}", "headers.subgraphs: insert: expected a list of {name"),
        ("limits: [", "not valid YAML"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load(_write(tmp_path, text), env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "SHOPGRAPH_JWKS_URL"),
        ("auth: {disabled: true}\npersisted_queries: {safelist: safelist}", "manifest is needed"),
        ("auth: {disabled: true}\npersisted_queries: {safelist: sometimes}", "must be one of"),
        ("auth: {disabled: true, algorithms: [HS256]}", "auth.algorithms"),
        ("auth: {disabled: true}\nlimits: {max_depth: 0}", "limits.max_depth must be positive"),
        ("auth: {disabled: true}\nheaders: {propagate: [authorization]}", "headers.propagate: 'authorization'"),
        (
            "auth: {disabled: true}\nheaders: {subgraphs: {cart: {insert: [{name: X-Request-ID, value: a}]}}}",
            "headers.subgraphs.cart.insert: 'x-request-id' is set by the router",
        ),
        (
            "auth: {disabled: true}\nheaders: {subgraphs: {cart: {remove: [x-shopgraph-client-address]}}}",
            "headers.subgraphs.cart.remove",
        ),
    ],
)
def test_settings_the_router_cannot_run_with_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_write(tmp_path, text), env={}).check()


def test_the_cli_refuses_to_start_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOPGRAPH_JWKS_URL", raising=False)
    monkeypatch.delenv("SHOPGRAPH_AUTH_DISABLED", raising=False)
    config = _write(tmp_path, f"supergraph: {{path: {ROOT / 'schema' / 'supergraph.graphql'}}}")
    assert main(["router", "--config", str(config)]) == 2
    assert "configuration error" in capsys.readouterr().err


def test_every_option_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [o.path for o in OPTIONS if f"`{o.path}`" not in readme]
    assert not missing, missing


def test_the_production_example_is_valid_and_safelists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # its paths are relative to the repository
    s = load(ROOT / "deploy" / "router.yaml", env={})
    s.check()
    assert s.safelist == "safelist" and s.apq and not s.introspection


def test_the_session_cookie_needs_csrf_prevention_and_a_plain_name() -> None:
    cookie: dict[str, Any] = {"session_cookie": "shopgraph_refresh", "session_cookie_subgraph": "users"}
    base = Settings(jwks_urls=("http://users/jwks",), **cookie)
    base.check()
    with pytest.raises(ConfigError, match="csrf"):
        dataclasses.replace(base, csrf=False).check()
    with pytest.raises(ConfigError, match="plain cookie name"):
        dataclasses.replace(base, session_cookie="a; Path=/").check()
    with pytest.raises(ConfigError, match="both"):
        dataclasses.replace(base, session_cookie_subgraph=None).check()
