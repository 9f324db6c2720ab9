"""The metric names Shopgraph's processes export: what a dashboard or an alert may reference.

Read from the code itself: every ``prometheus_client`` metric defined in a module of the router
or of a subgraph (all of them imported), plus the client library's process and runtime
collectors, each family with the sample names Prometheus sees (``_total``, ``_bucket``…).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

# The packages whose modules define metrics; every module is imported (definitions only run).
PACKAGES = ("router", "subgraphs")
# What Prometheus adds to every target it scrapes.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "enum": ("",),
}


def _import_all() -> None:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            importlib.import_module(module.name)


def families() -> dict[str, str]:
    """Metric family name -> type, for every metric the services define."""
    _import_all()
    found: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in PACKAGES:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, MetricWrapperBase):
                for family in value.describe():
                    found[family.name] = family.type
    for family in REGISTRY.collect():  # the process and platform collectors
        if family.name.startswith(("process_", "python_")):
            found.setdefault(family.name, family.type)
    return found


def sample_names() -> frozenset[str]:
    """Every series name a query may use (a family's name with its type's suffixes)."""
    names = set(SCRAPE_SERIES)
    for family, kind in families().items():
        names.update(family + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return frozenset(names)
