"""Settings from the environment: flags parsed strictly, secure defaults, currency and lifetimes checked."""

from __future__ import annotations

import pytest

from subgraphs.kit.config import Settings, env_flag


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), ("on", True), ("0", False), ("No", False)])
def test_flags(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("SHOPGRAPH_X", raw)
    assert env_flag("SHOPGRAPH_X", default=not expected) is expected


def test_an_unset_flag_takes_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPGRAPH_X", raising=False)
    assert env_flag("SHOPGRAPH_X", default=True) is True
    monkeypatch.setenv("SHOPGRAPH_X", " ")
    assert env_flag("SHOPGRAPH_X", default=False) is False


def test_a_garbled_flag_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPGRAPH_X", "maybe")
    with pytest.raises(ValueError, match="SHOPGRAPH_X"):
        env_flag("SHOPGRAPH_X", default=True)


def test_subgraphs_are_router_only_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPGRAPH_ROUTER_ONLY", raising=False)
    assert Settings.from_env().router_only is True
    monkeypatch.setenv("SHOPGRAPH_ROUTER_ONLY", "off")
    assert Settings.from_env().router_only is False


def test_an_unknown_currency_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPGRAPH_CURRENCY", "XYZ")
    with pytest.raises(ValueError, match="XYZ"):
        Settings.from_env()


def test_guest_order_links_last_30_days_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPGRAPH_ORDER_LOOKUP_TTL_SECONDS", raising=False)
    assert Settings.from_env().order_lookup_ttl_seconds == 30 * 24 * 3600
    monkeypatch.setenv("SHOPGRAPH_ORDER_LOOKUP_TTL_SECONDS", "3600")
    assert Settings.from_env().order_lookup_ttl_seconds == 3600
    for bad in ("0", "-5", "a week"):
        monkeypatch.setenv("SHOPGRAPH_ORDER_LOOKUP_TTL_SECONDS", bad)
        with pytest.raises(ValueError, match="SHOPGRAPH_ORDER_LOOKUP_TTL_SECONDS"):
            Settings.from_env()
