"""The monitoring stack, checked without Docker or a cluster: compose's ``observability`` profile
(collector → Jaeger, Prometheus scraping every service, Grafana provisioned to open on the
router's dashboard) and deploy/k8s/monitoring (PodMonitors, PrometheusRule, dashboards as
ConfigMaps) — every file they mount exists, every target and selector names what runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from deploy.monitoring import dashboards, generate
from tests.support.compose_processes import ComposeProcesses
from tests.support.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
OBSERVABILITY = ("otel-collector", "jaeger", "prometheus", "grafana")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

Obj = dict[str, Any]


def services() -> dict[str, Obj]:
    loaded: dict[str, Obj] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return loaded


def mounts(service: Obj) -> dict[str, Path]:
    """Container path -> the repository file or directory a service mounts there."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def test_the_profile_runs_only_on_request_and_mounts_what_exists() -> None:
    all_services = services()
    for name in OBSERVABILITY:
        assert all_services[name]["profiles"] == ["observability"], name
        for target, source in mounts(all_services[name]).items():
            assert source.exists(), (name, target, source)
    # Not started by a plain `docker compose up`, nor by the processes the suite runs compose as.
    assert not set(OBSERVABILITY) & set(ComposeProcesses("postgresql://x", "redis://x", "p:", ROOT).services)
    for name, service in all_services.items():
        if name not in OBSERVABILITY:  # the shop does not wait for its monitoring
            assert not set(OBSERVABILITY) & set(service.get("depends_on", {})), name


def _listens(name: str) -> set[int]:
    """The ports a shop service listens on, from its compose command (--port, --metrics-port)."""
    command = [str(a) for a in services()[name].get("command", [])]
    ports = {int(command[i + 1]) for i, arg in enumerate(command) if arg in ("--port", "--metrics-port")}
    return ports | {int(p) for p in services()[name].get("expose", [])}


def test_prometheus_scrapes_every_shop_service_where_it_serves_metrics() -> None:
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    scraped = {t.split(":")[0]: int(t.split(":")[1]) for t in targets}
    assert set(scraped) == {"router", "users", "catalog", "cart", "orders", "payments", "relay", "notifications"}
    for host, port in scraped.items():
        assert port in _listens(host), (host, port)
    assert scraped["router"] == 9090  # the admin listener: /metrics is off the public port
    router_config = yaml.safe_load((ROOT / "deploy" / "router.yaml").read_text())
    assert str(router_config["admin"]["listen"]).endswith(":9090")
    prometheus = services()["prometheus"]
    assert mounts(prometheus)["/etc/prometheus/alerts.yml"] == generate.ALERTS
    done = subprocess.run(
        [PROMTOOL, "check", "config", str(MONITORING / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_traces_go_from_the_shop_to_the_collector_to_jaeger() -> None:
    collector = services()["otel-collector"]
    (config_path,) = [p for p in mounts(collector).values() if p.suffix == ".yaml"]
    config = yaml.safe_load(config_path.read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    for exporter in pipeline["exporters"]:
        host, port = config["exporters"][exporter]["endpoint"].split(":")
        assert host == "jaeger" and port in services()["jaeger"]["expose"]
    assert all(p in config["processors"] for p in pipeline["processors"])
    assert f"--config={next(t for t in mounts(collector) if t.endswith('.yaml'))}" in collector["command"]
    assert "4318" in collector["expose"]
    # What the shop's services are told to export to, when the profile runs (the compose comment).
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318" in (ROOT / "compose.yaml").read_text()
    app_env = services()["router"]["environment"]
    assert app_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"


def test_grafana_opens_on_the_router_dashboard_with_its_data_sources_provisioned() -> None:
    grafana = services()["grafana"]
    mounted = mounts(grafana)
    env = grafana["environment"]
    home = Path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    directory = mounted[str(home.parent)]
    assert directory == generate.DASHBOARDS
    assert json.loads((directory / home.name).read_text())["uid"] == f"shopgraph-{dashboards.HOME}"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    provisioning = mounted["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources" / "shopgraph.yaml").read_text())["datasources"]
    by_type = {s["type"]: s for s in sources}
    assert by_type["prometheus"]["uid"] == "prometheus" and by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert by_type["jaeger"]["url"] == "http://jaeger:16686"
    # Every dashboard defaults to that data source.
    for board in dashboards.all_boards().values():
        (variable,) = board["templating"]["list"]
        assert variable["current"]["value"] == by_type["prometheus"]["uid"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "shopgraph.yaml").read_text())["providers"]
    assert provider["options"]["path"] == str(home.parent)


# -- Kubernetes -------------------------------------------------------------------------------


def test_the_kubernetes_monitoring_renders_and_its_config_maps_are_valid() -> None:
    objects = render(ROOT / "deploy" / "k8s" / "monitoring")
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert ("PrometheusRule", "shopgraph") in kinds
    assert {n for k, n in kinds if k == "PodMonitor"} == {"shopgraph-router", "shopgraph-services"}
    maps = [o for o in objects if o["kind"] == "ConfigMap"]
    assert {m["metadata"]["name"] for m in maps} == {f"shopgraph-dashboard-{n}" for n in dashboards.BOARDS}
    for config_map in maps:
        kubernetes_validate.validate(config_map, "1.31.0", strict=True)
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        (content,) = config_map["data"].values()
        assert json.loads(content)["uid"].startswith("shopgraph-")
        assert len(content.encode()) < 900_000  # a ConfigMap holds at most 1 MiB
    assert all(o["metadata"]["namespace"] == "shopgraph" for o in objects)
    for obj in objects:
        if obj["kind"] in ("PodMonitor", "PrometheusRule"):
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            assert obj["metadata"]["labels"]["release"] == "prometheus"  # kube-prometheus-stack's selector


def _pods() -> dict[str, Obj]:
    """The base's pod templates, by app.kubernetes.io/name."""
    return {
        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]: o["spec"]["template"]
        for o in render(ROOT / "deploy" / "k8s" / "base")
        if o["kind"] == "Deployment"
    }


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _monitoring_may_reach(labels: dict[str, str], port: int) -> bool:
    policies = [o for o in render(ROOT / "deploy" / "k8s" / "base") if o["kind"] == "NetworkPolicy"]
    for policy in policies:
        if not _selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            sources = rule.get("from", [])
            monitoring = any(
                f.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "monitoring"
                for f in sources
            )
            if monitoring and port in {p["port"] for p in rule.get("ports", [])}:
                return True
    return False


def test_every_shopgraph_pod_is_scraped_once_on_a_port_it_has() -> None:
    monitors = [o for o in render(ROOT / "deploy" / "k8s" / "monitoring") if o["kind"] == "PodMonitor"]
    for name, pod in _pods().items():
        selecting = [m for m in monitors if _selects(m["spec"]["selector"], pod["metadata"]["labels"])]
        assert len(selecting) == 1, (name, [m["metadata"]["name"] for m in selecting])
        ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for endpoint in selecting[0]["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] in ports, (name, endpoint["port"])
            if name == "router":
                assert ports[endpoint["port"]] == 9090  # the admin listener
            # and the NetworkPolicies let Prometheus (in the `monitoring` namespace) reach that port.
            assert _monitoring_may_reach(pod["metadata"]["labels"], ports[endpoint["port"]]), (name, endpoint)
    # The dashboards' and rules' own references: every job label they filter on is one we set.
    generated = (ROOT / "deploy" / "k8s" / "monitoring" / "dashboards.yaml").read_text()
    assert not re.search(r'job="', generated)
