"""compose.yaml, deploy/Dockerfile and deploy/k8s, checked without Docker or a cluster.

compose.yaml against the Compose Specification's JSON schema, the rendered
kustomize base and production overlay against the Kubernetes OpenAPI schemas
(both schemas come inside PyPI packages: no network), and the rules the files
must keep: every command is one the ``shopgraph`` CLI accepts, secrets are only
referenced, every pod is locked down, probed and bounded, every scalable part has
an autoscaler and a disruption budget, subgraphs take traffic only from the
router and each other.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy.cli import parser
from tests.support.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SUBGRAPHS = ("users", "catalog", "cart", "orders")
APP_SERVICES = (*SUBGRAPHS, "relay", "router", "migrate")
KUBERNETES_VERSION = "1.31.0"

Obj = dict[str, Any]


def compose() -> Obj:
    loaded: Obj = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_runs_every_part_of_the_shop_from_one_image_with_health_checks_and_order() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == "shopgraph:local"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        parser().parse_args(service["command"])  # a command the CLI accepts
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        if name != "migrate":
            assert "healthcheck" in service, name
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in SUBGRAPHS:
        assert services[name]["command"][:2] == ["serve", name]
        assert services["router"]["depends_on"][name]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["seed"]
    assert services["migrate"]["restart"] == "no"
    assert services["relay"]["command"][0] == "relay"
    assert services["orders"]["environment"]["SHOPGRAPH_OUTBOX_RELAY"] == "0"  # the relay service does it
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_the_dockerfile_copies_what_exists_and_runs_as_a_non_root_user() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"{line}: {source} is not in the repository"
    assert "uv sync --frozen --no-dev" in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["shopgraph"\]', text, re.MULTILINE)


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def rendered(request: pytest.FixtureRequest) -> list[Obj]:
    return render(K8S / str(request.param))


def _by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_object_is_valid_for_kubernetes(rendered: list[Obj]) -> None:
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_deployments_are_probed_bounded_locked_down_and_get_secrets_by_reference(rendered: list[Obj]) -> None:
    deployments = _by_kind(rendered, "Deployment")
    assert set(deployments) == {*SUBGRAPHS, "router", "relay"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        parser().parse_args(container["args"])
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}
        assert container["readinessProbe"] and container["livenessProbe"]
        if name != "relay":
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        env = {e["name"]: e for e in container["env"]}
        for secret in ("DATABASE_URL", "REDIS_URL", "SHOPGRAPH_SERVICE_SECRET"):
            assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "shopgraph-secrets", (name, secret)
            assert "value" not in env[secret]
    assert not _by_kind(rendered, "Secret"), "secrets are referenced, never shipped"
    assert int(deployments["relay"]["spec"]["replicas"]) >= 2  # leader-elected: replicas are safe


def test_config_maps_hold_the_settings_and_the_supergraph_and_are_referenced(rendered: list[Obj]) -> None:
    maps = _by_kind(rendered, "ConfigMap")
    (config,) = [m for n, m in maps.items() if n.startswith("shopgraph-config-")]
    (supergraph,) = [m for n, m in maps.items() if n.startswith("shopgraph-supergraph-")]
    assert supergraph["data"]["supergraph.graphql"] == (ROOT / "schema" / "supergraph.graphql").read_text()
    assert config["data"]["SHOPGRAPH_SUBGRAPH_USERS_URL"] == "http://users:4001/graphql"
    assert config["data"]["SHOPGRAPH_OUTBOX_RELAY"] == "0"
    router = _by_kind(rendered, "Deployment")["router"]["spec"]["template"]["spec"]
    assert router["volumes"][0]["configMap"]["name"] == supergraph["metadata"]["name"]
    assert router["containers"][0]["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]


def test_scaling_disruption_and_migration_objects_exist(rendered: list[Obj]) -> None:
    autoscalers = _by_kind(rendered, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {*SUBGRAPHS, "router"}
    assert set(_by_kind(rendered, "PodDisruptionBudget")) == {*SUBGRAPHS, "router", "relay"}
    job = _by_kind(rendered, "Job")["migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert set(_by_kind(rendered, "Service")) == {*SUBGRAPHS, "router"}


def test_network_policies_let_subgraphs_hear_only_the_router_and_each_other(rendered: list[Obj]) -> None:
    policies = _by_kind(rendered, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    subgraphs = policies["subgraphs-from-router-and-subgraphs"]["spec"]
    peers = [peer["podSelector"]["matchLabels"] for peer in subgraphs["ingress"][0]["from"]]
    assert peers == [{"app.kubernetes.io/component": "router"}, {"app.kubernetes.io/component": "subgraph"}]
    datastores = policies["datastores-from-services"]["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert "router" not in datastores["matchExpressions"][0]["values"]
    for deployment in _by_kind(rendered, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] in ("subgraph", "router", "relay")


def test_the_production_overlay_changes_what_it_says() -> None:
    objects = render(K8S / "overlays" / "production")
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"shopgraph"}
    deployments = _by_kind(objects, "Deployment")
    assert deployments["router"]["spec"]["replicas"] == 3
    images = {c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.shop.internal/shopgraph:0.1.0"}
    assert _by_kind(objects, "HorizontalPodAutoscaler")["router"]["spec"]["maxReplicas"] == 40
    (config,) = [m for n, m in _by_kind(objects, "ConfigMap").items() if n.startswith("shopgraph-config-")]
    assert config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://")
    assert config["data"]["SHOPGRAPH_LOG_FORMAT"] == "json"  # merged, not replaced
