"""What Apollo Gateway (open source) can load.

It refuses a supergraph linking a SECURITY feature it does not implement ("feature
https://specs.apollo.dev/requiresScopes/v0.1 is for: SECURITY but is unsupported"): it has no
@authenticated / @requiresScopes / @policy, which Apollo Router (and ours, router/authorization.py)
enforce. The tests that compare with it give it the supergraph without them: it then serves
every field to every caller, as the subgraphs' own checks allow.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from graphql import DirectiveDefinitionNode, DocumentNode, parse, print_ast

ACCESS_CONTROL = ("authenticated", "requiresScopes", "policy")
_URLS = tuple(f"https://specs.apollo.dev/{n}/" for n in ACCESS_CONTROL)
_SCALARS = ("requiresScopes__Scope", "policy__Policy")


def for_apollo_gateway(sdl: str) -> str:
    """``sdl`` without the access-control specs (unchanged when it links none)."""
    if not any(u in sdl for u in _URLS):
        return sdl
    doc = parse(sdl, no_location=True)
    defs = [
        _strip(d)
        for d in doc.definitions
        if not (isinstance(d, DirectiveDefinitionNode) and d.name.value in ACCESS_CONTROL)
        and getattr(getattr(d, "name", None), "value", "") not in _SCALARS
    ]
    return print_ast(DocumentNode(definitions=tuple(defs)))


def _keep(d: Any) -> bool:
    if d.name.value in ACCESS_CONTROL:
        return False
    url = next((a.value.value for a in d.arguments or () if a.name.value == "url"), "")
    return not (d.name.value == "link" and url.startswith(_URLS))


def _strip(node: Any) -> Any:
    changes: dict[str, Any] = {}
    if getattr(node, "directives", None):
        changes["directives"] = tuple(d for d in node.directives if _keep(d))
    if getattr(node, "fields", None):
        changes["fields"] = tuple(_strip(f) for f in node.fields)
    return replace(node, **changes) if changes else node


# Apollo's telemetry brings OpenTelemetry's GCP resource detector, which asks the cloud
# metadata server on start and warns when it answers (a CI machine's answered 403): the
# warning came before "ready" and the tests took it for a failed start.
NODE_ENV = {"NODE_ENV": "production", "METADATA_SERVER_DETECTION": "none", "NODE_NO_WARNINGS": "1"}


def start_gateway(script: str, cwd: Path, *args: str, timeout: float = 60) -> subprocess.Popen[str]:
    """``node script args…`` started and past its ``ready`` line (other lines before it are kept for the error)."""
    proc = subprocess.Popen(
        ["node", script, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **NODE_ENV},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("ready"):
            break
        seen.append(line)
    else:
        line = ""
    if not line.startswith("ready"):
        proc.kill()
        raise RuntimeError(f"{script} did not start: {''.join(seen)}{proc.stdout.read()}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # a full pipe would block it
    return proc
