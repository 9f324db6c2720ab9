"""Per-subgraph checks of @key / @requires / @provides / @external (Apollo's codes and wording)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import FieldNode, GraphQLError, InlineFragmentNode, SelectionSetNode

from .issues import CompositionIssue
from .subgraph import (
    BUILTIN_SCALARS,
    Applied,
    Field,
    Subgraph,
    TypeDef,
    field_set_selections,
    named_type,
    parse_field_set,
)


class FieldSetError(Exception):
    def __init__(self, code_suffix: str, message: str) -> None:
        super().__init__(message)
        self.code_suffix = code_suffix
        self.message = message


@dataclass
class Target:
    type: TypeDef
    field: Field
    leaf: bool  # no sub-selection
    external_in_parents: bool


def print_applied(d: Applied) -> str:
    from .printer import print_value

    args = ", ".join(f"{k}: {print_value(v)}" for k, v in d.args.items())
    return f"@{d.source_name or d.name}" + (f"({args})" if args else "")


def walk_field_set(sub: Subgraph, parent: TypeDef, fields: str, implementations: bool = False) -> Iterator[Target]:
    """Yield every field a field set selects; raises FieldSetError if invalid."""
    try:
        sel = parse_field_set(fields)
    except GraphQLError as e:
        raise FieldSetError("INVALID_FIELDS", e.message) from e
    yield from _walk(sub, parent, sel, False, implementations)


def _walk(sub: Subgraph, parent: TypeDef, sel: SelectionSetNode, ext: bool, impls: bool) -> Iterator[Target]:
    for s in field_set_selections(sel):
        if isinstance(s, InlineFragmentNode):
            cond = sub.types.get(s.type_condition.name.value) if s.type_condition else parent
            if cond is None:
                raise FieldSetError(
                    "INVALID_FIELDS",
                    f'Unknown type "{s.type_condition.name.value}"',  # type: ignore[union-attr]
                )
            yield from _walk(sub, cond, s.selection_set, ext, impls)
            continue
        assert isinstance(s, FieldNode)
        name = s.name.value
        if name == "__typename":
            continue
        f = parent.fields.get(name)
        if f is None:
            raise FieldSetError("INVALID_FIELDS", f'Cannot query field "{name}" on type "{parent.name}"')
        if s.alias is not None:
            raise FieldSetError(
                "INVALID_FIELDS",
                f'Cannot use alias "{s.alias.value}" in "{s.alias.value}: {name}": '
                "aliases are not currently supported in @key",
            )
        base = named_type(f.type)
        base_def = sub.types.get(base)
        leaf = base in BUILTIN_SCALARS or (base_def is not None and base_def.kind in ("scalar", "enum"))
        if leaf and s.selection_set is not None:
            raise FieldSetError(
                "INVALID_FIELDS",
                f'Leaf field "{parent.name}.{name}" selects subfields but type "{base}" has none',
            )
        if not leaf and s.selection_set is None:
            raise FieldSetError(
                "INVALID_FIELDS",
                f'Invalid empty selection set for field "{parent.name}.{name}" of non-leaf type {base}',
            )
        yield Target(parent, f, leaf, ext)
        if impls and parent.kind == "interface":
            for impl in sub.implementations(parent.name):
                if name in impl.fields:
                    yield Target(impl, impl.fields[name], leaf, ext)
        if s.selection_set is not None and base_def is not None:
            yield from _walk(sub, base_def, s.selection_set, ext or is_external(sub, parent, f), impls)


def is_external(sub: Subgraph, parent: TypeDef, f: Field) -> bool:
    # A type-level @external covers the fields of its own definition block.
    if f.has("external"):
        return True
    return any(d.name == "external" and d.block == f.block for d in parent.directives)


def safe_targets(sub: Subgraph, parent: TypeDef, fields: str | None, impls: bool) -> list[Target]:
    """Like walk_field_set, but keeps what was collected before an error."""
    out: list[Target] = []
    if fields is None:
        return out
    try:
        for t in walk_field_set(sub, parent, fields, impls):
            out.append(t)
    except FieldSetError:
        pass
    return out


def provided_fields(sub: Subgraph) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for t in sub.types.values():
        for f in t.fields.values():
            for d in f.directives:
                target = sub.types.get(named_type(f.type))
                if d.name == "provides" and target is not None:
                    out |= {(x.type.name, x.field.name) for x in safe_targets(sub, target, d.str_arg("fields"), True)}
    return out


def used_fields(sub: Subgraph) -> set[tuple[str, str]]:
    """Fields referenced by @key/@requires/@provides or needed by an interface."""
    out = provided_fields(sub)
    for t in sub.types.values():
        for k in t.all("key"):
            out |= {(x.type.name, x.field.name) for x in safe_targets(sub, t, k.str_arg("fields"), True)}
        for f in t.fields.values():
            r = f.get("requires")
            if r is not None:
                out |= {(x.type.name, x.field.name) for x in safe_targets(sub, t, r.str_arg("fields"), True)}
        if t.kind == "interface":
            for impl in sub.implementations(t.name):
                out |= {(impl.name, n) for n in t.fields if n in impl.fields}
    return out


def validate_subgraph(sub: Subgraph) -> list[CompositionIssue]:
    issues: list[CompositionIssue] = []

    def fail(code: str, msg: str, type_name: str | None, field_name: str | None) -> None:
        issues.append(CompositionIssue(code, f"[{sub.name}] {msg}", sub.name, type_name, field_name))

    def check(
        directive: str,
        parent: TypeDef,
        d: Applied,
        where: str,
        owner: tuple[str, str | None],
        on_field: Callable[[Target], None],
    ) -> None:
        prefix = f"On {where}, for {print_applied(d)}: "
        fields = d.str_arg("fields")
        code_base = directive.upper()
        try:
            for target in walk_field_set(sub, parent, fields or ""):
                on_field(target)
        except FieldSetError as e:
            msg = e.message
            if msg.startswith("Cannot query field"):
                msg += (
                    " (the field should either be added to this subgraph or, if it should not be "
                    "resolved by this subgraph, you need to add it to this subgraph with @external)."
                    if directive == "key"
                    else " (if the field is defined in another subgraph, you need to add it to this "
                    "subgraph with @external)."
                )
            fail(f"{code_base}_{e.code_suffix}", prefix + msg, owner[0], owner[1])

    for t in sub.types.values():
        for k in t.all("key"):

            def on_key(x: Target, t: TypeDef = t) -> None:
                if x.field.args:
                    raise FieldSetError(
                        "FIELDS_HAS_ARGS",
                        f"field {x.type.name}.{x.field.name} cannot be included because it has "
                        "arguments (fields with argument are not allowed in @key)",
                    )
                base = sub.types.get(named_type(x.field.type))
                if base is not None and base.kind in ("interface", "union"):
                    kind = "Interface" if base.kind == "interface" else "Union"
                    raise FieldSetError(
                        "FIELDS_SELECT_INVALID_TYPE",
                        f'field "{x.type.name}.{x.field.name}" is a {kind} type which is not allowed in @key',
                    )

            check("key", t, k, f'type "{t.name}"', (t.name, None), on_key)
        for f in t.fields.values():
            for name in ("requires", "provides"):
                d = f.get(name)
                if d is None:
                    continue
                parent = t
                if name == "provides":
                    target = sub.types.get(named_type(f.type))
                    if target is None or target.kind not in ("object", "interface", "union"):
                        fail(
                            "PROVIDES_ON_NON_OBJECT_FIELD",
                            f'Invalid @provides directive on field "{t.name}.{f.name}": field has '
                            f'type "{_type_text(f)}" which is not a Composite Type',
                            t.name,
                            f.name,
                        )
                        continue
                    parent = target

                def on_field(x: Target, name: str = name) -> None:
                    if x.leaf and not x.external_in_parents and not is_external(sub, x.type, x.field):
                        raise FieldSetError(
                            "FIELDS_MISSING_EXTERNAL",
                            f'field "{x.type.name}.{x.field.name}" should not be part of a @{name} '
                            "since it is already provided by this subgraph (it is not marked @external)",
                        )

                check(name, parent, d, f'field "{t.name}.{f.name}"', (t.name, f.name), on_field)
    _access_on_interfaces(sub, fail)
    if not issues:
        used = used_fields(sub)
        for t in sub.types.values():
            for f in t.fields.values():
                if t.kind == "object" and is_external(sub, t, f) and (t.name, f.name) not in used:
                    fail(
                        "EXTERNAL_UNUSED",
                        f'Field "{t.name}.{f.name}" is marked @external but is not used in any '
                        "federation directive (@key, @provides, @requires) or to satisfy an "
                        "interface; the field declaration has no use and should be removed (or the "
                        "field should not be @external).",
                        t.name,
                        f.name,
                    )
    return issues


def _access_on_interfaces(sub: Subgraph, fail: Callable[[str, str, str | None, str | None], None]) -> None:
    """Access control belongs on concrete types: an interface takes its implementations' at
    composition (router/composition/access.py), so it may not carry its own."""
    for t in sub.types.values():
        places: list[tuple[str, str, str | None, list[Applied]]] = []
        if t.kind == "interface" or t.has("interfaceObject"):
            kind = "interface" if t.kind == "interface" else "interface object"
            places.append((kind, t.name, None, t.directives))
        if t.kind == "interface":
            places.extend(("field", f"{t.name}.{f.name}", f.name, f.directives) for f in t.fields.values())
        for kind, coordinate, field_name, directives in places:
            for d in directives:
                if d.name in ("authenticated", "requiresScopes", "policy"):
                    name = d.source_name or d.name
                    fail(
                        "AUTH_REQUIREMENTS_APPLIED_ON_INTERFACE",
                        f'Invalid use of @{name} on {kind} "{coordinate}": @{name} cannot be applied on '
                        "interfaces, interface fields and interface objects",
                        t.name,
                        field_name,
                    )


def _type_text(f: Field) -> str:
    from .subgraph import type_str

    return type_str(f.type)
