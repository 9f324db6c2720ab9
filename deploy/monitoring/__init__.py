"""Monitoring as code: alert rules, dashboards and their Kubernetes and compose forms.

``python -m deploy.monitoring`` writes every generated file (committed; a test checks they are
up to date): ``prometheus/alerts.yml`` from :mod:`.rules`, ``grafana/dashboards/*.json`` from
:mod:`.dashboards`, and ``deploy/k8s/monitoring/{prometheusrule,dashboards}.yaml`` from both.
:mod:`.exported` lists the metric names the services export (every panel and rule uses only those).
"""
