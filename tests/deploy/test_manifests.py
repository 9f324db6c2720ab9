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
from router.config import load, not_allowed
from tests.support.compose_processes import ComposeProcesses, MissingVariable
from tests.support.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SUBGRAPHS = ("users", "catalog", "cart", "orders", "payments")
APP_SERVICES = (*SUBGRAPHS, "relay", "notifications", "router", "storefront", "migrate")
DEMO_SERVICES = ("demo-data",)  # behind `--profile demo`
# behind `--profile observability` (tests/deploy/test_observability_manifests.py)
OBSERVABILITY_SERVICES = ("otel-collector", "jaeger", "prometheus", "grafana")
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
    assert set(services) == {"postgres", "redis", "mailpit", *APP_SERVICES, *DEMO_SERVICES, *OBSERVABILITY_SERVICES}
    for name in (*APP_SERVICES, *DEMO_SERVICES):
        service = services[name]
        assert service["image"] == "shopgraph:local"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        parser().parse_args(service["command"])  # a command the CLI accepts
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        if service["restart"] != "no":  # the one-shots run to completion instead
            assert "healthcheck" in service, name
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in SUBGRAPHS:
        assert services[name]["command"][:2] == ["serve", name]
        assert services["router"]["depends_on"][name]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["relay"]["command"][0] == "relay"
    assert services["notifications"]["command"][0] == "notify"
    assert services["notifications"]["environment"]["SHOPGRAPH_SMTP_HOST"] == "${SHOPGRAPH_SMTP_HOST:-mailpit}"
    assert services["orders"]["environment"]["SHOPGRAPH_OUTBOX_RELAY"] == "0"  # the relay service does it
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_compose_starts_the_router_with_the_production_configuration() -> None:
    router = compose()["services"]["router"]
    command = router["command"]
    assert command[command.index("--config") + 1] == "deploy/router.yaml"
    settings = load(ROOT / "deploy" / "router.yaml", env={})
    settings.check()
    assert settings.introspection is False and settings.graphiql is False
    assert settings.safelist == "safelist" and settings.manifest_path
    assert (ROOT / settings.manifest_path).is_file()
    assert settings.admin_listen is not None
    admin_port = int(settings.admin_listen.rpartition(":")[2])
    assert not any(str(admin_port) in str(p).split(":")[-1] for p in router.get("ports", [])), "admin published"
    # Every subgraph URL compose gives the router is inside the configuration's allow-list.
    environment = compose()["x-app"]["environment"] | router["environment"]
    urls = [v for k, v in environment.items() if k.startswith("SHOPGRAPH_SUBGRAPH_") and k.endswith("_URL")]
    assert len(urls) == len(SUBGRAPHS)
    assert settings.allowed_subgraph_urls
    assert not not_allowed({str(i): str(url) for i, url in enumerate(urls)}, settings.allowed_subgraph_urls)


_INTERPOLATION = re.compile(r"\$\{(\w+)(:?[-?+])?([^}]*)\}")


def test_compose_has_no_default_secrets() -> None:
    """The service secret and the PostgreSQL password: required (``${VAR:?message}``), never defaulted."""
    text = (ROOT / "compose.yaml").read_text()
    secret = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$")
    secrets = [m for m in _INTERPOLATION.finditer(text) if secret.search(m.group(1))]
    required = {m.group(1) for m in secrets if m.group(2) == ":?"}
    assert required >= {"SHOPGRAPH_SERVICE_SECRET", "POSTGRES_PASSWORD"}
    # Any other secret is optional (e.g. an SMTP password, empty for the local mail catcher): never a default.
    defaulted = [m.group(0) for m in secrets if m.group(2) != ":?" and (m.group(2) != ":-" or m.group(3))]
    assert not defaulted, defaulted
    # Without them compose refuses to start (run as processes: the same interpolation fails).
    spec = compose()
    with pytest.raises(MissingVariable, match="SHOPGRAPH_SERVICE_SECRET"):
        ComposeProcesses("postgresql://x", "redis://x", "p:", ROOT, shell={"POSTGRES_PASSWORD": "x"}).environment(
            "router", {}, {}
        )
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        ComposeProcesses(
            "postgresql://x", "redis://x", "p:", ROOT, shell={"SHOPGRAPH_SERVICE_SECRET": "x"}
        ).environment("users", {}, {})
    assert spec["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_compose_loads_demo_data_only_behind_its_profile() -> None:
    services = compose()["services"]
    seeding = {name for name, s in services.items() if "seed" in [str(a) for a in s.get("command", [])]}
    assert seeding == {"demo-data"}
    assert services["demo-data"]["profiles"] == ["demo"]
    assert services["demo-data"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name, service in services.items():  # nothing started by default waits for the demo data
        assert "demo-data" not in service.get("depends_on", {}), name
    default = ComposeProcesses("postgresql://x", "redis://x", "p:", ROOT).services
    assert "demo-data" not in default and "migrate" in default
    assert (
        "demo-data"
        in ComposeProcesses("postgresql://x", "redis://x", "p:", ROOT, profiles=frozenset({"demo"})).services
    )


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
    assert set(deployments) == {*SUBGRAPHS, "router", "storefront", "relay", "notifications"}
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
        if name not in ("relay", "notifications"):
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        if name == "storefront":  # the page renderer reads the graph, no database and no secret
            assert "env" not in container
            continue
        env = {e["name"]: e for e in container["env"]}
        for secret in ("DATABASE_URL", "REDIS_URL", "SHOPGRAPH_SERVICE_SECRET"):
            assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "shopgraph-secrets", (name, secret)
            assert "value" not in env[secret]
    assert not _by_kind(rendered, "Secret"), "secrets are referenced, never shipped"
    assert int(deployments["relay"]["spec"]["replicas"]) >= 2  # leader-elected: replicas are safe
    assert int(deployments["notifications"]["spec"]["replicas"]) >= 2  # messages are leased: replicas share
    # Each worker runs its own command (the notifications pods ran a second relay: no mail was sent).
    for name, command in (("notifications", "notify"), ("relay", "relay")):
        assert deployments[name]["spec"]["template"]["spec"]["containers"][0]["args"][0] == command, name


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
    assert set(_by_kind(rendered, "PodDisruptionBudget")) == {
        *SUBGRAPHS,
        "router",
        "storefront",
        "relay",
        "notifications",
    }
    job = _by_kind(rendered, "Job")["migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert set(_by_kind(rendered, "Service")) == {*SUBGRAPHS, "router", "storefront"}


def test_network_policies_let_subgraphs_hear_only_the_router_and_each_other(rendered: list[Obj]) -> None:
    policies = _by_kind(rendered, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    subgraphs = policies["subgraphs-from-router-and-subgraphs"]["spec"]
    peers = [peer["podSelector"]["matchLabels"] for peer in subgraphs["ingress"][0]["from"]]
    assert peers == [
        {"app.kubernetes.io/component": "router"},
        {"app.kubernetes.io/component": "subgraph"},
        {"app.kubernetes.io/component": "worker"},  # notifications -> users' mailRecipient
    ]
    datastores = policies["datastores-from-services"]["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert "router" not in datastores["matchExpressions"][0]["values"]
    for deployment in _by_kind(rendered, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] in ("subgraph", "router", "storefront", "relay", "worker")


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


# -- issue 18, finding 11: production files run the production configuration ---------------------

# What each component must reach (component label -> (target component or name, port)).
MUST_REACH = {
    "router": [("redis", 6379), ("subgraph", 4001), ("subgraph", 4002), ("subgraph", 4003), ("subgraph", 4004)],
    "subgraph": [("postgres", 5432), ("redis", 6379), ("subgraph", 4001)],
    "relay": [("postgres", 5432), ("redis", 6379)],
    "migrate": [("postgres", 5432)],
}


def _admits(policy: Obj, source: str, port: int) -> bool:
    for rule in policy["spec"].get("ingress", []):
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        peers = rule.get("from")
        if peers is None:
            return True
        for peer in peers:
            labels = peer.get("podSelector", {})
            if "namespaceSelector" in peer:
                continue
            if labels.get("matchLabels", {}).get("app.kubernetes.io/component") == source:
                return True
            for e in labels.get("matchExpressions", []):
                if e["key"] == "app.kubernetes.io/component" and source in e["values"]:
                    return True
    return False


def _selects(policy: Obj, target: str) -> bool:
    sel = policy["spec"]["podSelector"]
    labels = sel.get("matchLabels", {})
    if target in (labels.get("app.kubernetes.io/component"), labels.get("app.kubernetes.io/name")):
        return True
    return any(target in e["values"] for e in sel.get("matchExpressions", []))


def test_network_policies_let_each_component_reach_what_it_must(rendered: list[Obj]) -> None:
    policies = list(_by_kind(rendered, "NetworkPolicy").values())
    for source, targets in MUST_REACH.items():
        for target, port in targets:
            assert any(_selects(p, target) and _admits(p, source, port) for p in policies), (source, target, port)


def test_the_router_runs_the_production_configuration_with_metrics_off_the_public_port(rendered: list[Obj]) -> None:
    from router.config import load

    router = _by_kind(rendered, "Deployment")["router"]["spec"]["template"]
    (container,) = router["spec"]["containers"]
    args = container["args"]
    config = args[args.index("--config") + 1]
    settings = load(ROOT / config, env={})
    assert not settings.graphiql and not settings.introspection
    assert settings.safelist == "safelist" and (ROOT / str(settings.manifest_path)).is_file()
    assert settings.allowed_subgraph_urls and settings.trusted_proxies == ()
    admin_port = int(str(settings.admin_listen).rpartition(":")[2])
    assert router["metadata"]["annotations"]["prometheus.io/port"] == str(admin_port)
    service = _by_kind(rendered, "Service")["router"]
    assert admin_port not in {p.get("targetPort") for p in service["spec"]["ports"]} | {
        p["port"] for p in service["spec"]["ports"]
    }
    assert {p["name"] for p in service["spec"]["ports"]} == {"http"}
    public = _by_kind(rendered, "NetworkPolicy")["router-from-anywhere"]
    assert {p["port"] for rule in public["spec"]["ingress"] for p in rule["ports"]} == {4000}


# -- issue 16: Stripe's webhooks reach payments, and nothing else of it is public --------------------


def test_the_ingress_routes_stripes_webhook_to_payments_and_everything_else_to_the_router(
    rendered: list[Obj],
) -> None:
    (ingress,) = _by_kind(rendered, "Ingress").values()
    paths = {
        (p["path"], p["pathType"]): (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert paths == {("/webhooks/stripe", "Exact"): ("payments", "http"), ("/", "Prefix"): ("router", "http")}
    services = _by_kind(rendered, "Service")
    assert "http" in {p["name"] for p in services["payments"]["spec"]["ports"]}
    # The payments app serves the webhook on the path the Ingress names (POST /webhooks/{provider}).
    assert (
        'Route("/webhooks/{provider}", webhook, methods=["POST"])' in (ROOT / "subgraphs/payments/app.py").read_text()
    )


def test_the_ingress_controller_reaches_payments_only(rendered: list[Obj]) -> None:
    policies = _by_kind(rendered, "NetworkPolicy")
    webhooks = policies["payments-webhooks-from-ingress"]["spec"]
    assert webhooks["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "payments"}}
    (rule,) = webhooks["ingress"]
    assert [p["port"] for p in rule["ports"]] == [4005]
    assert [peer["namespaceSelector"]["matchLabels"] for peer in rule["from"]] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"}
    ]
    for name, policy in policies.items():  # no other policy lets that namespace in
        if name == "payments-webhooks-from-ingress":
            continue
        for other in policy["spec"].get("ingress", []):
            namespaces = [p.get("namespaceSelector", {}).get("matchLabels", {}) for p in other.get("from", [])]
            assert {"kubernetes.io/metadata.name": "ingress-nginx"} not in namespaces, name


def test_the_stripe_keys_come_from_the_secret_only(rendered: list[Obj]) -> None:
    payments = _by_kind(rendered, "Deployment")["payments"]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in payments["env"] if "valueFrom" in e}
    assert refs["STRIPE_SECRET_KEY"] == {"name": "shopgraph-secrets", "key": "stripe-secret-key", "optional": True}
    assert refs["STRIPE_WEBHOOK_SECRET"]["key"] == "stripe-webhook-secret"
