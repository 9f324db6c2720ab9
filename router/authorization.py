"""Authorization in the schema: ``@authenticated``, ``@requiresScopes`` and ``@policy``
(Federation 2.5/2.6) enforced by the router before any subgraph is called, as Apollo Router does.

The supergraph says what each type and field asks of its caller (:class:`AccessRules`; composition
already gave interfaces their implementations' requirements, router/composition/access.py). An
operation is prepared once with the set of requirements it touches (:func:`requirements_of`); per
request they are checked against the verified caller (:class:`Authorizer`): the token makes it
authenticated, its scopes satisfy ``@requiresScopes``, the configured policy hook decides each
``@policy``. When some fail, the operation is pruned (:func:`prune`): unauthorized fields and the
fields left with nothing to select are taken out of what is planned, so a fetch that would only
serve them never happens, and are marked in what is shaped, so the response has ``null`` for each
with an ``UNAUTHORIZED_FIELD_OR_TYPE`` error at its path (a non-null one nulls its nearest
nullable parent, as the spec's error propagation does). With ``reject_unauthorized`` the whole
request is refused instead. The subgraphs keep their own checks as the second line.

Requirements are pure data (:data:`Clause`), so a prepared operation keeps one pruned plan per
combination of failed requirements, not per caller.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    ListValueNode,
    StringValueNode,
    get_named_type,
)

from router.auth import Identity
from router.errors import unauthorized_error
from router.operation import Field, Frag, Sel
from router.supergraph import Supergraph

log = logging.getLogger("shopgraph.router.authorization")

DIRECTIVES = ("authenticated", "requiresScopes", "policy")

# One requirement: (directive, its OR of ANDs); ("authenticated", ()) for @authenticated.
Clause = tuple[str, tuple[tuple[str, ...], ...]]
Requirement = frozenset[Clause]  # all of them must hold
NONE: Requirement = frozenset()

# The policy hook: given the caller (None: anonymous) and the policies an operation touches,
# the ones it satisfies (may be a coroutine function).
PolicyHook = Callable[[Identity | None, frozenset[str]], Iterable[str] | Awaitable[Iterable[str]]]


class PolicyHookError(ValueError):
    """The configured policy hook cannot be loaded (raised at start-up)."""


def load_policy_hook(spec: str) -> PolicyHook:
    """``package.module:function`` -> the callable; PolicyHookError when it is not one."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PolicyHookError(f"authorization.policy_hook: expected 'module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PolicyHookError(f"authorization.policy_hook: cannot import {module_name!r}: {e}") from e
    hook = getattr(module, attr, None)
    if not callable(hook):
        raise PolicyHookError(f"authorization.policy_hook: {spec!r} is not a callable")
    try:
        inspect.signature(hook).bind(None, frozenset())
    except TypeError as e:
        raise PolicyHookError(f"authorization.policy_hook: {spec!r} must take (identity, policies): {e}") from e
    except ValueError:
        pass  # a builtin without a signature: trust it
    hook_: PolicyHook = hook
    return hook_


class AccessRules:
    """What each type and field of a supergraph asks of its caller."""

    def __init__(self, sg: Supergraph) -> None:
        self.api = sg.api_schema
        names = {d: sg.directive_name(d) for d in DIRECTIVES}
        self.types: dict[str, Requirement] = {}
        self.fields: dict[tuple[str, str], Requirement] = {}
        for d in sg.document.definitions:
            name = getattr(getattr(d, "name", None), "value", None)
            if not isinstance(name, str):
                continue
            own = _clauses(getattr(d, "directives", None) or (), names)
            if own:
                self.types[name] = self.types.get(name, NONE) | own
            for f in getattr(d, "fields", None) or ():
                req = _clauses(f.directives or (), names)
                if req:
                    self.fields[(name, f.name.value)] = req
        self._at: dict[tuple[str, str], Requirement] = {}

    def __bool__(self) -> bool:
        return bool(self.types or self.fields)

    def field(self, scope: str, name: str) -> Requirement:
        """What selecting ``name`` where the parent type is ``scope`` asks: the scope type's
        requirements, the field's, and those of the type it returns."""
        key = (scope, name)
        hit = self._at.get(key)
        if hit is not None:
            return hit
        req = self.types.get(scope, NONE) | self.fields.get(key, NONE)
        t = self.api.type_map.get(scope)
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType) and name in t.fields:
            req |= self.types.get(get_named_type(t.fields[name].type).name, NONE)
        self._at[key] = req
        return req


def _clauses(directives: Iterable[object], names: dict[str, str]) -> Requirement:
    out: set[Clause] = set()
    by_name = {v: k for k, v in names.items()}
    for d in directives:
        kind = by_name.get(getattr(getattr(d, "name", None), "value", ""))
        if kind is None:
            continue
        if kind == "authenticated":
            out.add(("authenticated", ()))
            continue
        value = next((a.value for a in getattr(d, "arguments", None) or ()), None)
        if not isinstance(value, ListValueNode):
            continue
        dnf = tuple(
            tuple(sorted(v.value for v in inner.values if isinstance(v, StringValueNode)))
            for inner in value.values
            if isinstance(inner, ListValueNode)
        )
        out.add((kind, dnf))
    return frozenset(out)


def requirements_of(rules: AccessRules, sels: list[Sel], scope: str) -> Requirement:
    """Every requirement an operation's selections touch (computed once per prepared operation)."""
    out: set[Clause] = set()
    stack: list[tuple[list[Sel], str]] = [(sels, scope)]
    while stack:
        ss, sc = stack.pop()
        for s in ss:
            if isinstance(s, Frag):
                stack.append((s.sels, s.type_cond or sc))
            elif not s.name.startswith("__"):
                out |= rules.field(sc, s.name)
                if s.sels is not None:
                    stack.append((s.sels, _return_type(rules.api, sc, s.name)))
    return frozenset(out)


def _return_type(api: GraphQLSchema, scope: str, name: str) -> str:
    t = api.type_map.get(scope)
    if isinstance(t, GraphQLObjectType | GraphQLInterfaceType) and name in t.fields:
        named: str = get_named_type(t.fields[name].type).name
        return named
    return scope  # (validated operations always find it)


@dataclass(frozen=True)
class Denial:
    """One unauthorized field of an operation (as written, not per list item)."""

    path: tuple[str, ...]  # response keys from the root
    coordinate: str  # Type.field
    directives: frozenset[str]  # the directives it failed ("" -> all its selections did)


@dataclass
class Pruned:
    planned: list[Sel]  # what the planner sees: no unauthorized field
    shaped: list[Sel]  # what the shaper walks: unauthorized fields marked
    denials: list[Denial] = field(default_factory=list)


def prune(rules: AccessRules, sels: list[Sel], scope: str, failed: Requirement) -> Pruned:
    out = Pruned([], [])
    out.planned, out.shaped = _prune(rules, sels, scope, failed, (), out.denials)
    return out


def _prune(
    rules: AccessRules, sels: list[Sel], scope: str, failed: Requirement, path: tuple[str, ...], denials: list[Denial]
) -> tuple[list[Sel], list[Sel]]:
    planned: list[Sel] = []
    shaped: list[Sel] = []
    for s in sels:
        if isinstance(s, Frag):
            before = len(denials)
            p, sh = _prune(rules, s.sels, s.type_cond or scope, failed, path, denials)
            # A deferred fragment with refused fields is not deferred (@defer is a hint a server
            # may ignore): its nulls and errors come in the first payload, not never.
            defer = s.defer if len(denials) == before else None
            if p:
                planned.append(replace(s, sels=p, defer=defer))
            shaped.append(replace(s, sels=sh, defer=defer))
            continue
        if s.name.startswith("__"):
            planned.append(s)
            shaped.append(s)
            continue
        at = (*path, s.key)
        missing = rules.field(scope, s.name) & failed
        if missing:
            denials.append(Denial(at, f"{scope}.{s.name}", frozenset(c[0] for c in missing)))
            shaped.append(replace(s, sels=None, denied=True))
            continue
        if s.sels is None:
            planned.append(s)
            shaped.append(s)
            continue
        before = len(denials)
        p, sh = _prune(rules, s.sels, _return_type(rules.api, scope, s.name), failed, at, denials)
        if len(denials) == before:  # nothing refused below: the field as it was
            planned.append(s)
            shaped.append(s)
        elif _selects(p):
            planned.append(replace(s, sels=p))
            shaped.append(replace(s, sels=sh))
        else:
            # every field it selects is refused: it is refused too (a field with an empty
            # selection can't be sent), and its own null carries the error
            del denials[before:]
            denials.append(Denial(at, f"{scope}.{s.name}", frozenset()))
            shaped.append(replace(s, sels=None, denied=True))
    return planned, shaped


def _selects(sels: list[Sel]) -> bool:
    return any(isinstance(s, Field) or _selects(s.sels) for s in sels)


class Authorizer:
    """Checks requirements against a caller; the policy hook is called once per request with
    every policy its operation touches."""

    def __init__(self, hook: PolicyHook | None, *, reject: bool = False) -> None:
        self.hook = hook
        self.reject = reject

    async def failed(self, required: Requirement, identity: Identity | None) -> Requirement:
        """The requirements ``identity`` does not meet."""
        policies = frozenset(p for kind, dnf in required if kind == "policy" for conj in dnf for p in conj)
        granted = await self._policies(identity, policies) if policies else frozenset()
        scopes = identity.scopes if identity is not None else frozenset()
        out: set[Clause] = set()
        for clause in required:
            kind, dnf = clause
            if kind == "authenticated":
                ok = identity is not None
            else:
                have = scopes if kind == "requiresScopes" else granted
                ok = identity is not None or kind == "policy"
                ok = ok and any(all(x in have for x in conj) for conj in dnf)
            if not ok:
                out.add(clause)
        return frozenset(out)

    async def _policies(self, identity: Identity | None, policies: frozenset[str]) -> frozenset[str]:
        if self.hook is None:
            return frozenset()  # no hook: no policy holds (fail closed)
        try:
            r = self.hook(identity, policies)
            if inspect.isawaitable(r):
                r = await r
            granted = frozenset(str(p) for p in r)
        except Exception:
            # a broken hook refuses, never opens: the fields are null with their errors
            log.exception("the policy hook failed: policies %s refused", sorted(policies))
            return frozenset()
        log.debug("policy hook: %s of %s granted", sorted(granted & policies), sorted(policies))
        return granted & policies


def denial_errors(denials: list[Denial]) -> list[dict[str, Any]]:
    """The errors of a refused request (reject_unauthorized): one per field, at its path as written."""
    return [unauthorized_error(list(d.path)) for d in denials]
