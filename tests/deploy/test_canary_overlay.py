"""deploy/k8s/overlays/canary: production released as canaries with Argo Rollouts, rendered and
checked without a cluster — each Rollout takes over a Deployment that exists and is scaled by
its autoscaler, each analysis step names a template and gives it its arguments, and every
metric the analyses ask Prometheus about is one the services export (with the label the
PodMonitors add)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate

from deploy.monitoring import rollouts
from deploy.monitoring.exported import sample_names
from deploy.monitoring.promql import metric_names
from tests.support.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


def _by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_rollout_takes_over_a_deployment_its_autoscaler_now_scales() -> None:
    objects = render(ROOT / "deploy" / "k8s" / "overlays" / "canary")
    deployments = _by_kind(objects, "Deployment")
    rolled = _by_kind(objects, "Rollout")
    assert set(rolled) == {"router", *rollouts.SUBGRAPHS}
    for name, rollout in rolled.items():
        ref = rollout["spec"]["workloadRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", name)
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert rollout["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert rollout["metadata"]["namespace"] == deployments[name]["metadata"]["namespace"] == "shopgraph"
    for name, hpa in _by_kind(objects, "HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Rollout", name) and name in rolled
    for obj in objects:  # what Kubernetes itself knows must still be valid
        if not obj["apiVersion"].startswith("argoproj.io/"):
            kubernetes_validate.validate(obj, "1.31.0", strict=True)


def test_each_analysis_step_names_a_template_and_gives_its_arguments() -> None:
    objects = render(ROOT / "deploy" / "k8s" / "overlays" / "canary")
    templates = _by_kind(objects, "AnalysisTemplate")
    for name, rollout in _by_kind(objects, "Rollout").items():
        steps = rollout["spec"]["strategy"]["canary"]["steps"]
        analyses = [s["analysis"] for s in steps if "analysis" in s]
        assert len(analyses) == 2 and [s.get("setWeight") for s in steps if "setWeight" in s] == [10, 50]
        for analysis in analyses:
            (ref,) = analysis["templates"]
            template = templates[ref["templateName"]]
            wanted = {a["name"] for a in template["spec"]["args"]}
            given = {a["name"]: a for a in analysis["args"]}
            assert set(given) == wanted, name
            assert given["canary-hash"]["valueFrom"] == {"podTemplateHashValue": "Latest"}
            if "service" in given:
                assert given["service"]["value"] == name


def test_the_analyses_read_only_exported_metrics_of_the_canary_pods() -> None:
    exported = sample_names()
    queries = rollouts.queries()
    assert len(queries) == 4
    for query in queries:
        assert "rollouts_pod_template_hash=" in query  # the canary's pods only
        plain = re.sub(r"\{\{[^}]*\}\}", "x", query)
        read = metric_names(plain)
        assert read and read <= exported, (query, read - exported)
    monitors = (ROOT / "deploy" / "k8s" / "monitoring" / "podmonitors.yaml").read_text()
    assert monitors.count("targetLabel: rollouts_pod_template_hash") == 2  # both PodMonitors add it
