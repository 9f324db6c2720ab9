"""A renderer of the kustomize features deploy/k8s uses, for tests (no kustomize binary here).

Supported, with kustomize's meaning: ``resources`` (files and directories holding a
kustomization.yaml), ``namespace``, ``labels`` (``pairs``, metadata only),
``images`` (``newName``/``newTag``), ``replicas``, ``configMapGenerator`` (``envs``,
``files``, ``literals``, ``behavior: merge``; a content-hash name suffix, references
rewritten) and inline JSON 6902 ``patches`` with a ``target`` of kind and name.
Anything else in a kustomization is refused, so the manifests cannot quietly rely
on a feature this renderer ignores.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "replicas",
    "configMapGenerator",
    "patches",
}
# Kinds without a namespace among those we use.
CLUSTER_SCOPED = {"Namespace"}


class KustomizeError(Exception):
    pass


def render(directory: Path) -> list[Obj]:
    """The objects ``kubectl kustomize directory`` would print (hash suffixes aside)."""
    objects, generated = _build(directory)
    _apply_hashes(objects, generated)
    return objects


def _build(directory: Path) -> tuple[list[Obj], dict[str, Obj]]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    objects: list[Obj] = []
    generated: dict[str, Obj] = {}  # ConfigMap name -> object (hashed at the end)
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            sub_objects, sub_generated = _build(path)
            objects += sub_objects
            generated |= sub_generated
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for gen in spec.get("configMapGenerator", []):
        data = _generator_data(directory, gen)
        name = gen["name"]
        if gen.get("behavior", "create") == "merge":
            if name not in generated:
                raise KustomizeError(f"configMapGenerator {name}: merge with nothing")
            generated[name]["data"].update(data)
            continue
        if name in generated:
            raise KustomizeError(f"configMapGenerator {name}: generated twice")
        cm: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        generated[name] = cm
        objects.append(cm)
    for obj in objects:
        _transform(obj, spec)
    return objects, generated


def _generator_data(directory: Path, gen: Obj) -> dict[str, str]:
    data: dict[str, str] = {}
    for env_file in gen.get("envs", []):
        for line in (directory / env_file).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                data[key] = value
    for literal in gen.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for file in gen.get("files", []):
        data[Path(file).name] = (directory / file).read_text()
    return data


def _transform(obj: Obj, spec: Obj) -> None:
    meta = obj.setdefault("metadata", {})
    if "namespace" in spec and obj["kind"] not in CLUSTER_SCOPED:
        meta["namespace"] = spec["namespace"]
    for group in spec.get("labels", []):
        if set(group) - {"pairs"}:
            raise KustomizeError(f"labels: only 'pairs' is supported, not {sorted(set(group) - {'pairs'})}")
        meta.setdefault("labels", {}).update(group["pairs"])
    for image in spec.get("images", []):
        for container in _containers(obj):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image.get('newTag', 'latest')}"
    for replica in spec.get("replicas", []):
        if obj["kind"] == "Deployment" and meta["name"] == replica["name"]:
            obj["spec"]["replicas"] = replica["count"]
    for patch in spec.get("patches", []):
        target = patch["target"]
        if set(target) - {"kind", "name"} or "path" in patch:
            raise KustomizeError("patches: only inline JSON 6902 patches with a kind/name target are supported")
        if obj["kind"] == target["kind"] and meta["name"] == target["name"]:
            for op in yaml.safe_load(patch["patch"]):
                _json_patch(obj, op)


def _containers(obj: Obj) -> list[Obj]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def _json_patch(obj: Obj, op: Obj) -> None:
    *parents, last = [_unescape(p) for p in op["path"].lstrip("/").split("/")]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: int | str = int(last) if isinstance(node, list) and last != "-" else last
    if op["op"] == "replace":
        if isinstance(node, dict) and key not in node:
            raise KustomizeError(f"patch: replace of a missing {op['path']}")
        node[key] = copy.deepcopy(op["value"])
    elif op["op"] == "add":
        if isinstance(node, list):
            node.insert(len(node) if key == "-" else int(key), copy.deepcopy(op["value"]))
        else:
            node[key] = copy.deepcopy(op["value"])
    elif op["op"] == "remove":
        del node[key]
    else:
        raise KustomizeError(f"patch: unsupported op {op['op']!r}")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _apply_hashes(objects: list[Obj], generated: dict[str, Obj]) -> None:
    renamed: dict[str, str] = {}
    for name, cm in generated.items():
        digest = hashlib.sha256(json.dumps(cm["data"], sort_keys=True).encode()).hexdigest()[:10]
        cm["metadata"]["name"] = renamed[name] = f"{name}-{digest}"
    for obj in objects:
        _rename_refs(obj, renamed)


def _rename_refs(node: Any, renamed: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key in ("configMapRef", "configMap", "configMapKeyRef"):
            ref = node.get(key)
            if isinstance(ref, dict) and ref.get("name") in renamed:
                ref["name"] = renamed[ref["name"]]
        for value in node.values():
            _rename_refs(value, renamed)
    elif isinstance(node, list):
        for item in node:
            _rename_refs(item, renamed)
