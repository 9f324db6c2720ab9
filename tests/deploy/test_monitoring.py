"""Monitoring as code (deploy/monitoring): the rules pass ``promtool check rules`` and their unit
tests (``promtool test rules``), the generated files are up to date, and every metric a rule
or a dashboard panel reads is one the services export."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.monitoring import dashboards, generate, rules
from deploy.monitoring.exported import families, sample_names
from deploy.monitoring.promql import metric_names

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = Path(generate.ALERTS).parent


def promtool(*args: str) -> str:
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=PROMETHEUS, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_generated_files_are_up_to_date() -> None:
    for path, content in generate.files().items():
        assert path.read_text() == content, f"{path} is stale: run `uv run python -m deploy.monitoring`"


def test_promtool_accepts_the_rules() -> None:
    assert "SUCCESS: 26 rules found" in promtool("check", "rules", "alerts.yml")


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_the_kubernetes_rule_holds_the_same_groups() -> None:
    loaded = yaml.safe_load((generate.K8S / "prometheusrule.yaml").read_text())
    assert loaded["kind"] == "PrometheusRule"
    assert loaded["spec"] == yaml.safe_load(generate.ALERTS.read_text())


def test_the_slos_page_on_fast_burns_and_file_tickets_on_slow_ones() -> None:
    alerts = {r["alert"]: r for g in rules.groups()["groups"] for r in g["rules"] if "alert" in r}
    for slo in ("Availability", "Latency"):
        fast = alerts[f"ShopgraphRouter{slo}BudgetBurnFast"]
        assert fast["labels"]["severity"] == "page"
        assert "ratio_rate1h > (14.4 * 0.001)" in fast["expr"] and "ratio_rate5m > (14.4 * 0.001)" in fast["expr"]
        slow = alerts[f"ShopgraphRouter{slo}BudgetBurnSlow"]
        assert slow["labels"]["severity"] == "ticket" and "ratio_rate3d > (1.0 * 0.001)" in slow["expr"]
    assert 'le="0.3"' in yaml.safe_dump(rules.groups())
    assert {"ShopgraphEventLagHigh", "ShopgraphRelayDown", "ShopgraphSagaStuck", "ShopgraphRedisUnavailable"} <= set(
        alerts
    )


def test_the_latency_slo_reads_a_bucket_the_router_has() -> None:
    from router.metrics import LATENCY_BUCKETS

    assert float(rules.LATENCY_THRESHOLD) in LATENCY_BUCKETS


def test_every_metric_a_rule_reads_is_exported() -> None:
    exported = sample_names()
    recorded = {r["record"] for g in rules.groups()["groups"] for r in g["rules"] if "record" in r}
    read = {name for g in rules.groups()["groups"] for r in g["rules"] for name in metric_names(r["expr"])}
    assert read, "no metric found in the rules"
    assert not read - exported - recorded


def test_the_exported_names_come_from_the_code() -> None:
    found = families()
    assert found["shopgraph_router_requests"] == "counter"
    assert found["shopgraph_router_request_duration_seconds"] == "histogram"
    assert found["shopgraph_relay_leader"] == "gauge"
    assert "shopgraph_orders_placed_total" in sample_names()
    assert "shopgraph_no_such_metric_total" not in sample_names()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, stream) (rate(a_bucket{le="0.3", x=~"y|z"}[5m])) / b_count', {"a_bucket", "b_count"}),
        ("absent(up) or on() vector(0)", {"up"}),
        ("histogram_quantile(0.99, sum by (le) (rate(c_bucket[$__rate_interval]))) > 1e3", {"c_bucket"}),
        ("x:y:ratio_rate5m > (14.4 * 0.001) and z offset 5m", {"x:y:ratio_rate5m", "z"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# -- dashboards ------------------------------------------------------------------------------


def test_every_metric_a_dashboard_panel_reads_is_exported() -> None:
    exported = sample_names()
    recorded = {r["record"] for g in rules.groups()["groups"] for r in g["rules"] if "record" in r}
    for name, board in dashboards.all_boards().items():
        exprs = dashboards.expressions(board)
        assert exprs, name
        for expr in exprs:
            read = metric_names(expr)
            assert read, (name, expr)
            assert not read - exported - recorded, (name, expr, read - exported - recorded)


def test_the_dashboards_cover_what_an_operator_asks() -> None:
    boards = dashboards.all_boards()
    assert set(boards) == {"router", "subgraphs", "events", "business"}
    assert len({b["uid"] for b in boards.values()}) == 4
    read = {name: set().union(*map(metric_names, dashboards.expressions(b))) for name, b in boards.items()}
    assert {
        "shopgraph_router_requests_total",
        "shopgraph_router_request_duration_seconds_bucket",
        "shopgraph_router_query_planning_duration_seconds_bucket",
        "shopgraph_router_entity_cache_lookups_total",
        "shopgraph_router_refusals_total",
        "shopgraph_router_open_subscriptions",
    } <= read["router"]
    assert {"shopgraph_db_pool_checked_out", "shopgraph_db_statements_total"} <= read["subgraphs"]
    assert {"shopgraph_relay_backlog", "shopgraph_event_lag_seconds_bucket", "shopgraph_relay_leader"} <= read["events"]
    assert {
        "shopgraph_orders_placed_total",
        "shopgraph_orders_revenue_minor_total",
        "shopgraph_payments_total",
    } <= read["business"]


def test_panels_are_laid_out_without_overlap_and_use_the_datasource_variable() -> None:
    for name, board in dashboards.all_boards().items():
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
            cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & taken, (name, panel["title"])
            taken |= cells
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "${datasource}"


def test_a_metric_that_does_not_exist_is_caught() -> None:
    assert metric_names("sum(rate(shopgraph_router_requestz_total[5m]))") - sample_names() == {
        "shopgraph_router_requestz_total"
    }
