"""Each port's ``/metrics`` holds its own component's series, when one process serves several.

``shopgraph dev`` (and ``Stack``) run the router and the subgraphs in one Python process: one
``prometheus_client`` registry. Served as is on every port, a Prometheus scraping all five
counted everything five times. :func:`scoped_metrics` wraps an app so that its ``/metrics``
answers only what belongs to it:

- a metric defined in ``router.*`` belongs to the router; one defined in ``subgraphs.<name>.*``
  to that subgraph;
- the kit's shared metrics (``subgraphs.kit.*``) are split by their series' labels: ``subgraph``,
  else ``consumer``, else the subgraph whose stream ``stream`` names (``<prefix>orders:events``);
- the rest — the process's own (``process_*``, ``python_*``) and the notifications worker's (no
  port of its own in ``dev``) — is the router's, the dev process's front door.

In production every component is a process of its own and serves its registry unwrapped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subgraphs.kit.config import SUBGRAPHS

ROUTER = "router"
KIT = "kit"
_owners: dict[str, str] = {}
_modules_seen = 0


def _owner_of_module(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "router":
        return ROUTER
    if parts[0] == "subgraphs" and len(parts) > 1:
        return KIT if parts[1] == "kit" else parts[1]
    return None


def owners() -> dict[str, str]:
    """Metric family name -> the component that defined it (``kit``: split by labels)."""
    global _modules_seen
    if len(sys.modules) != _modules_seen:  # a module imported since: look again (cheap, rare)
        _modules_seen = len(sys.modules)
        for name, module in list(sys.modules.items()):
            owner = _owner_of_module(name)
            if owner is None or module is None:
                continue
            for value in list(vars(module).values()):
                if isinstance(value, MetricWrapperBase):
                    for family in value.describe():
                        _owners.setdefault(family.name, owner)
    return _owners


def _kit_owner(labels: dict[str, str]) -> str:
    if "subgraph" in labels:
        return labels["subgraph"]
    if "consumer" in labels:
        return labels["consumer"]
    if "stream" in labels:  # "<prefix>orders:events"
        parts = labels["stream"].split(":")
        return parts[-2] if len(parts) >= 2 else ROUTER
    return ROUTER


def _served_by(owner: str) -> str:
    """The port an owner's series are on: its own if it has one, else the router's."""
    return owner if owner in SUBGRAPHS else ROUTER


def families_of(component: str, collected: Iterable[Metric] | None = None) -> list[Metric]:
    """The families (with only their series) that ``component``'s ``/metrics`` serves."""
    known = owners()
    kept: list[Metric] = []
    for family in collected if collected is not None else REGISTRY.collect():
        owner = known.get(family.name, ROUTER)
        if owner == KIT:
            samples = [s for s in family.samples if _served_by(_kit_owner(s.labels)) == component]
            if not samples:
                continue
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = samples
            kept.append(copy)
        elif _served_by(owner) == component:
            kept.append(family)
    return kept


class _Only:
    def __init__(self, component: str) -> None:
        self.component = component

    def collect(self) -> list[Metric]:
        return families_of(self.component)


def render(component: str) -> bytes:
    return generate_latest(_Only(component))


def scoped_metrics(app: ASGIApp, component: str) -> ASGIApp:
    """``app`` whose ``GET /metrics`` answers ``component``'s series only (see the module)."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/metrics" or scope["method"] != "GET":
            await app(scope, receive, send)
            return
        status: dict[str, Any] = {"code": 404}

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]

        # The app's own handler first: it refreshes what it samples at scrape time (DB pool gauges).
        await app(scope, receive, swallow)
        if status["code"] != 200:
            body, code, kind = b"Not Found", 404, b"text/plain"
        else:
            body, code, kind = render(component), 200, CONTENT_TYPE_LATEST.encode()
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return serve
