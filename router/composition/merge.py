"""Merge validated subgraphs into a supergraph, following `@apollo/composition`'s
Merger (merge.ts): same merge rules, same order of directive applications."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from graphql import ListTypeNode, NamedTypeNode, NonNullTypeNode, TypeNode

from .access import ACCESS_CONTROL, extra_sources, merged_application
from .issues import CompositionIssue, subgraph_list
from .model import SArg, SDirectiveDef, SEnumValue, SField, SType, Supergraph
from .printer import directive, print_string, print_value
from .subgraph import (
    EXECUTABLE_LOCATIONS,
    Applied,
    Field,
    InputValue,
    Subgraph,
    TypeDef,
    named_type,
    type_str,
)
from .validate import is_external, provided_fields, safe_targets, used_fields

MERGED_DIRECTIVES = ("inaccessible", "tag", "deprecated", "specifiedBy", "cost", "listSize")
REPEATABLE = frozenset({"tag"})
LABEL = re.compile(r"^[a-zA-Z][a-zA-Z0-9_\-:./]*$")
PERCENT = re.compile(r"^percent\((\d{1,2}(\.\d{1,8})?|100)\)$")


def graph_enum_name(name: str) -> str:
    s = re.sub(r"\W", "_", name, flags=re.ASCII)
    if re.match(r"^\d", s):
        s = "_" + s
    if re.search(r"_\d+$", s):
        s += "_"
    return s.upper()


@dataclass
class Overrides:
    used: set[int] = field(default_factory=set)
    unused: set[int] = field(default_factory=set)
    unknown_target: set[int] = field(default_factory=set)
    labels: dict[int, str] = field(default_factory=dict)


class Merger:
    def __init__(self, subgraphs: list[Subgraph]) -> None:
        self.subs = sorted(subgraphs, key=lambda s: s.name)
        self.n = len(self.subs)
        self.names = [s.name for s in self.subs]
        enum_names = [graph_enum_name(s.name) for s in self.subs]
        self.graph = [
            f"{e}_{enum_names[:i].count(e) + 1}" if enum_names.count(e) > 1 else e for i, e in enumerate(enum_names)
        ]
        self.issues: list[CompositionIssue] = []
        self.types: dict[str, SType] = {}
        self.enum_usage: dict[str, set[str]] = {}
        fed = max(s.fed_version for s in self.subs)
        self.join_version = (0, 5) if fed >= (2, 8) else (0, 4) if fed >= (2, 7) else (0, 3)
        self.used = [used_fields(s) for s in self.subs]
        self.provided = [provided_fields(s) for s in self.subs]
        self.shareable = [self._shareables(s) for s in self.subs]
        self.uses = {
            name: any(self._uses_directive(s, name) for s in self.subs)
            for name in ("tag", "inaccessible", "cost", "listSize", *ACCESS_CONTROL)
        }
        self._access_extra: dict[str, list[list[Applied]]] | None = None

    # ----- helpers -------------------------------------------------------------------------

    def error(
        self,
        code: str,
        msg: str,
        type_name: str | None = None,
        field_name: str | None = None,
        subgraph: str | None = None,
    ) -> None:
        self.issues.append(CompositionIssue(code, msg, subgraph, type_name, field_name))

    def mismatch(
        self,
        code: str,
        msg: str,
        values: Sequence[str | None],
        chosen: str,
        type_name: str,
        field_name: str | None = None,
    ) -> None:
        """Apollo's reportMismatchError: the supergraph's value first, then the others."""
        groups: dict[str, list[str]] = {}
        for i, v in enumerate(values):
            if v is not None:
                groups.setdefault(v, []).append(self.names[i])
        order = ([chosen] if chosen in groups else []) + [v for v in groups if v != chosen]
        parts = [f"{v} in {subgraph_list(groups[v])}" for v in order]
        text = parts[0] if len(parts) == 1 else " and ".join(parts[:-1]) + " but " + parts[-1]
        subs = [n for v in order for n in groups[v]]
        self.error(code, msg + text, type_name, field_name, ", ".join(subs))

    @staticmethod
    def _uses_directive(s: Subgraph, name: str) -> bool:
        for t in s.types.values():
            if t.has(name) or any(
                v.directives and any(d.name == name for d in v.directives) for v in t.values.values()
            ):
                return True
            for f in t.fields.values():
                if f.has(name) or any(any(d.name == name for d in a.directives) for a in f.args.values()):
                    return True
        return False

    @staticmethod
    def _shareables(s: Subgraph) -> set[tuple[str, str]]:
        out = provided_fields(s)
        for t in s.types.values():
            if t.kind != "object":
                continue
            for k in t.all("key"):
                out |= {(x.type.name, x.field.name) for x in safe_targets(s, t, k.str_arg("fields"), True)}
            blocks = {d.block for d in t.all("shareable")}
            for f in t.fields.values():
                if f.has("shareable") or f.block in blocks:
                    out.add((t.name, f.name))
        return out

    def sources(self, name: str, kind: str) -> list[TypeDef | None]:
        out: list[TypeDef | None] = []
        for s in self.subs:
            t = s.types.get(name)
            out.append(t if t is not None and t.merged_kind == kind else None)
        return out

    def is_ext(self, i: int, parent: str, f: Field) -> bool:
        t = self.subs[i].types[parent]
        return t.kind == "object" and is_external(self.subs[i], t, f)

    def is_subtype(self, sup: TypeNode, sub: TypeNode) -> bool:
        """`sub` is `sup` or a (federation-allowed) subtype of it, using merged unions/interfaces."""
        if isinstance(sub, NonNullTypeNode):
            inner = sup.type if isinstance(sup, NonNullTypeNode) else sup
            return self.is_subtype(inner, sub.type)
        if isinstance(sup, NonNullTypeNode):
            return False
        if isinstance(sup, ListTypeNode):
            return isinstance(sub, ListTypeNode) and self.is_subtype(sup.type, sub.type)
        if not isinstance(sub, NamedTypeNode) or not isinstance(sup, NamedTypeNode):
            return False
        a, b = sup.name.value, sub.name.value
        if a == b:
            return True
        target = self.types.get(a)
        member = self.types.get(b)
        return (target is not None and b in target.members) or (member is not None and a in member.interfaces)

    # ----- applied directives -------------------------------------------------------------

    def access_extra(self, element: str) -> list[list[Applied]]:
        """The access-control applications ``element`` (an interface, or an interface's or
        implementation's field) takes from other types (router/composition/access.py)."""
        if self._access_extra is None:
            interfaces_of = {t.name: t.interfaces for t in self.types.values() if t.kind == "object"}
            self._access_extra = extra_sources(self.subs, interfaces_of)
        return self._access_extra.get(element, [])

    def merge_access(self, sources: Sequence[Sequence[Applied] | None], late: list[str], element: str | None) -> None:
        """@authenticated, @requiresScopes, @policy of an interface or a field, with those of the
        types they stand for (``element``: the interface or "Type.field"), ahead of the others."""
        extra = self.access_extra(element) if element is not None else []
        for name in ACCESS_CONTROL:
            found = [d for ds in [*sources, *extra] for d in ds or () if d.name == name]
            if found:
                late.append(merged_application(name, found))

    def merge_applied(
        self,
        sources: Sequence[Sequence[Applied] | None],
        now: list[str],
        late: list[str],
        access_of: str | None = None,
    ) -> None:
        """@inaccessible is merged right away, the others at the very end (Apollo's order); with
        ``access_of`` (an interface or a field), the access-control directives first."""
        if access_of is not None:
            self.merge_access(sources, late, access_of)
        names: list[str] = []
        for ds in sources:
            for d in ds or ():
                merged = d.name in MERGED_DIRECTIVES or (d.name in ACCESS_CONTROL and access_of is None)
                if merged and d.name not in names:
                    names.append(d.name)
        for name in names:
            if name in ACCESS_CONTROL:
                late.append(merged_application(name, [d for ds in sources for d in ds or () if d.name == name]))
                continue
            target = now if name == "inaccessible" else late
            printed: list[str] = []
            for ds in sources:
                for d in ds or ():
                    if d.name == name:
                        printed.append(directive(name, [(k, print_value(v)) for k, v in d.args.items()]))
            if name in REPEATABLE:
                target.extend(dict.fromkeys(printed))
            else:
                target.append(max(dict.fromkeys(printed), key=printed.count))

    @staticmethod
    def description(descs: Sequence[str | None]) -> str | None:
        present = [d for d in descs if d is not None]
        if not present:
            return None
        distinct = list(dict.fromkeys(present))
        non_empty = [d for d in distinct if d != ""]
        if len(distinct) == 1:
            return distinct[0]
        if len(non_empty) == 1:
            return non_empty[0]
        return max(non_empty, key=present.count)

    # ----- the merge ----------------------------------------------------------------------

    def merge(self) -> Supergraph:
        self.add_types_shallow()
        if self.issues:
            return self.result()

        def by_kind(kind: str) -> list[SType]:
            return [t for t in self.types.values() if t.kind == kind]

        for t in by_kind("object") + by_kind("interface"):
            for i, src in enumerate(self.sources(t.name, t.kind)):
                for itf in src.interfaces if src else ():
                    if itf not in t.interfaces:
                        t.interfaces.append(itf)
                    t.directives.append(
                        directive("join__implements", [("graph", self.graph[i]), ("interface", print_string(itf))])
                    )
        for t in by_kind("union"):
            self.merge_type(t)
        for t in by_kind("scalar") + by_kind("input") + by_kind("interface") + by_kind("object"):
            self.merge_type(t)
        for t in by_kind("enum"):
            self.merge_type(t)
        if "Query" not in self.types:
            self.error("NO_QUERIES", "No queries found in any subgraph: a supergraph must have a query root type.")
        self.add_interface_object_fields()
        if not self.issues:
            self.post_merge_validations()
        return self.result()

    def result(self) -> Supergraph:
        roots = {
            k: v
            for k, v in (("query", "Query"), ("mutation", "Mutation"), ("subscription", "Subscription"))
            if v in self.types
        }
        return Supergraph(
            self.join_version,
            [(self.graph[i], s.name, s.url) for i, s in enumerate(self.subs)],
            roots,
            self.types,
            self.merge_directive_defs(),
            self.uses["tag"],
            self.uses["inaccessible"],
            uses_cost=self.uses["cost"],
            uses_list_size=self.uses["listSize"],
            access_control=tuple(n for n in ACCESS_CONTROL if self.uses[n]),
        )

    def add_types_shallow(self) -> None:
        kinds: dict[str, list[str | None]] = {}
        for i, s in enumerate(self.subs):
            for t in s.types.values():
                kinds.setdefault(t.name, [None] * self.n)[i] = t.merged_kind
                if t.name not in self.types:
                    self.types[t.name] = SType(t.merged_kind, t.name)
        labels = {
            "object": "Object Type",
            "interface": "Interface Type",
            "union": "Union Type",
            "enum": "Enum Type",
            "input": "Input Object Type",
            "scalar": "Scalar Type",
        }
        for name, ks in kinds.items():
            distinct = {k for k in ks if k}
            if len(distinct) > 1:
                shown: list[str | None] = []
                for i, k in enumerate(ks):
                    sub_type = self.subs[i].types.get(name)
                    if k is None or sub_type is None:
                        shown.append(None)
                    elif sub_type.kind == "object" and k == "interface":
                        shown.append("Interface Object Type (Object Type with @interfaceObject)")
                    else:
                        shown.append(labels[k])
                first = next(k for k in shown if k)
                self.mismatch(
                    "TYPE_KIND_MISMATCH", f'Type "{name}" has mismatched kind: it is defined as ', shown, first, name
                )
            elif distinct == {"interface"} and not any(
                s.types.get(name) is not None and s.types[name].kind == "interface" for s in self.subs
            ):
                defining = [s.name for s in self.subs if name in s.types]
                self.error(
                    "INTERFACE_OBJECT_USAGE_ERROR",
                    f'Type "{name}" is declared with @interfaceObject in all the subgraphs in which it is '
                    f"defined (it is defined in {subgraph_list(defining)} but should be defined as an "
                    "interface in at least one subgraph)",
                    name,
                    subgraph=", ".join(defining),
                )

    def merge_type(self, dest: SType) -> None:
        srcs = self.sources(dest.name, dest.kind)
        if dest.name not in ("Query", "Mutation", "Subscription"):
            defs = [i for i, s in enumerate(srcs) if s and s.definition_blocks]
            exts = [i for i, s in enumerate(srcs) if s and s.extension_blocks]
            if exts and not defs:
                for i in exts:
                    self.error(
                        "EXTENSION_WITH_NO_BASE",
                        f'[{self.names[i]}] Type "{dest.name}" is an extension type, but there is no type '
                        f'definition for "{dest.name}" in any subgraph.',
                        dest.name,
                        subgraph=self.names[i],
                    )
        dest.description = self.description([s.description if s else None for s in srcs])
        for i, s in enumerate(srcs):
            if s is None:
                continue
            itf_obj = "true" if s.kind == "object" and s.has("interfaceObject") else None
            keys = s.all("key")
            if not keys:
                dest.directives.append(
                    directive("join__type", [("graph", self.graph[i]), ("isInterfaceObject", itf_obj)])
                )
            for k in keys:
                ext = "true" if k.block in s.extension_blocks or s.has("extends") else None
                resolvable = k.args.get("resolvable")
                dest.directives.append(
                    directive(
                        "join__type",
                        [
                            ("graph", self.graph[i]),
                            ("key", print_string(k.str_arg("fields") or "")),
                            ("extension", ext),
                            ("resolvable", print_value(resolvable) if resolvable else None),
                            ("isInterfaceObject", itf_obj),
                        ],
                    )
                )
        access_of = dest.name if dest.kind == "interface" else None
        self.merge_applied([s.directives if s else None for s in srcs], dest.directives, dest.late, access_of)
        if dest.kind in ("object", "interface"):
            self.merge_composite(dest, srcs)
        elif dest.kind == "union":
            self.merge_union(dest, srcs)
        elif dest.kind == "enum":
            self.merge_enum(dest, srcs)
        elif dest.kind == "input":
            self.merge_input(dest, srcs)

    def field_sources(self, dest: SType, srcs: list[TypeDef | None]) -> dict[str, list[Field | None]]:
        added: dict[str, list[Field | None]] = {}
        for i, s in enumerate(srcs):
            for f in s.fields.values() if s else ():
                added.setdefault(f.name, [None] * self.n)[i] = f
        return added

    def itf_object_fields(self, dest: SType, fname: str, i: int) -> list[tuple[TypeDef, Field]]:
        """Instances of `dest.fname` a subgraph lacking `dest` provides through an @interfaceObject."""
        sub = self.subs[i]
        if dest.kind != "object" or dest.name in sub.types:
            return []
        out = []
        for itf in dest.interfaces:
            t = sub.types.get(itf)
            if t is not None and t.kind == "object" and fname in t.fields and fname in self.types[itf].fields:
                out.append((t, t.fields[fname]))
        return out

    def merge_composite(self, dest: SType, srcs: list[TypeDef | None]) -> None:
        if dest.kind == "interface":
            self.validate_interface(dest, srcs)
        for fname, fsrcs in self.field_sources(dest, srcs).items():
            f = dest.fields[fname] = SField(fname)
            ov = self.validate_override(dest, f, fsrcs)
            if dest.name == "Subscription":
                self.validate_subscription_field(dest, fname, fsrcs)
            self.merge_field(dest, f, fsrcs, ov)
            if dest.kind == "object":
                self.validate_sharing(dest, fname, fsrcs, ov)

    def validate_interface(self, dest: SType, srcs: list[TypeDef | None]) -> None:
        impls = [t.name for t in self.types.values() if dest.name in t.interfaces and t.kind == "object"]
        for i, s in enumerate(srcs):
            if s is None:
                continue
            if s.kind == "interface":
                key = next(
                    (
                        k
                        for k in s.all("key")
                        if "resolvable" not in k.args or print_value(k.args["resolvable"]) != "false"
                    ),
                    None,
                )
                if key is None:
                    continue
                local = {t.name for t in self.subs[i].implementations(dest.name)}
                missing = [n for n in impls if n not in local]
                if missing:
                    from .validate import print_applied

                    listed = _human_list([f'"{m}"' for m in missing], "type", "types")
                    self.error(
                        "INTERFACE_KEY_MISSING_IMPLEMENTATION_TYPE",
                        f'[{self.names[i]}] Interface type "{dest.name}" has a resolvable key '
                        f'({print_applied(key)}) in subgraph "{self.names[i]}" but that subgraph is missing '
                        f'some of the supergraph implementation types of "{dest.name}". Subgraph '
                        f'"{self.names[i]}" should define {listed} (and have '
                        f'{"them" if len(missing) > 1 else "it"} implement "{dest.name}").',
                        dest.name,
                        subgraph=self.names[i],
                    )
            else:
                defined = [n for n in impls if n in self.subs[i].types]
                if defined:
                    listed = _human_list([f'"{m}"' for m in defined], "type", "types")
                    self.error(
                        "INTERFACE_OBJECT_USAGE_ERROR",
                        f'[{self.names[i]}] Interface type "{dest.name}" is defined as an @interfaceObject in '
                        f'subgraph "{self.names[i]}" so that subgraph should not define any of the '
                        f'implementation types of "{dest.name}", but it defines {listed}',
                        dest.name,
                        subgraph=self.names[i],
                    )

    def validate_subscription_field(self, dest: SType, fname: str, fsrcs: list[Field | None]) -> None:
        for i, f in enumerate(fsrcs):
            if f is not None and (f.has("shareable") or (dest.name, fname) in self.shareable[i]):
                self.error(
                    "INVALID_FIELD_SHARING",
                    "Fields on root level subscription object cannot be marked as shareable",
                    dest.name,
                    fname,
                    self.names[i],
                )

    def validate_override(self, dest: SType, f: SField, fsrcs: list[Field | None]) -> Overrides:
        ov = Overrides()
        coord = f"{dest.name}.{f.name}"
        with_override = [i for i, s in enumerate(fsrcs) if s is not None and s.has("override")]
        for i in with_override:
            d = fsrcs[i].get("override")  # type: ignore[union-attr]
            assert d is not None
            me = self.names[i]
            src_type = self.subs[i].types[dest.name]
            if src_type.kind == "interface":
                self.error(
                    "OVERRIDE_ON_INTERFACE",
                    f'@override cannot be used on field "{coord}" on subgraph "{me}": @override is '
                    "not supported on interface type fields.",
                    dest.name,
                    f.name,
                    me,
                )
                continue
            if src_type.has("interfaceObject"):
                self.error(
                    "OVERRIDE_COLLISION_WITH_ANOTHER_DIRECTIVE",
                    "@override is not yet supported on fields of @interfaceObject types: cannot be "
                    f'used on field "{coord}" on subgraph "{me}".',
                    dest.name,
                    f.name,
                    me,
                )
                continue
            frm = d.str_arg("from") or ""
            if frm not in self.names:
                ov.unknown_target.add(i)
                continue
            j = self.names.index(frm)
            if frm == me:
                self.error(
                    "OVERRIDE_FROM_SELF_ERROR",
                    f'Source and destination subgraphs "{frm}" are the same for overridden field "{coord}"',
                    dest.name,
                    f.name,
                    me,
                )
            elif j in with_override:
                self.error(
                    "OVERRIDE_SOURCE_HAS_OVERRIDE",
                    f'Field "{coord}" on subgraph "{me}" is also marked with directive @override in '
                    f'subgraph "{frm}". Only one @override directive is allowed per field.',
                    dest.name,
                    f.name,
                    me,
                )
            elif fsrcs[j] is None:
                continue
            else:
                src = fsrcs[j]
                assert src is not None
                conflict = next((n for n in ("requires", "provides") if src.has(n)), None)
                where = frm
                if conflict is None and self.is_ext(i, dest.name, fsrcs[i]):  # type: ignore[arg-type]
                    conflict, where = "external", me
                if conflict:
                    self.error(
                        "OVERRIDE_COLLISION_WITH_ANOTHER_DIRECTIVE",
                        f'@override cannot be used on field "{coord}" on subgraph "{me}" since '
                        f'"{coord}" on "{where}" is marked with directive "@{conflict}"',
                        dest.name,
                        f.name,
                        me,
                    )
                    continue
                if not self.is_ext(j, dest.name, src):
                    (ov.used if (dest.name, f.name) in self.used[j] else ov.unused).add(j)
                label = d.str_arg("label")
                if label is not None:
                    m = PERCENT.match(label)
                    if LABEL.match(label) or (m and 0 <= float(m.group(1)) <= 100):
                        ov.labels[i] = ov.labels[j] = label
                    else:
                        self.error(
                            "OVERRIDE_LABEL_INVALID",
                            f'Invalid @override label "{label}" on field "{coord}" on subgraph "{me}": '
                            "labels must start with a letter and after that may contain alphanumerics, "
                            "underscores, minuses, colons, periods, or slashes. Alternatively, labels "
                            'may be of the form "percent(x)" where x is a float between 0-100 inclusive.',
                            dest.name,
                            f.name,
                            me,
                        )
        return ov

    def merge_field(self, dest: SType, f: SField, fsrcs: list[Field | None], ov: Overrides) -> None:
        ext = [s is not None and self.is_ext(i, dest.name, s) for i, s in enumerate(fsrcs)]
        every_external = all(
            ext[i]
            if s is not None
            else all(is_external(self.subs[i], t, x) for t, x in self.itf_object_fields(dest, f.name, i))
            for i, s in enumerate(fsrcs)
        )
        if every_external:
            defining = [self.names[i] for i, s in enumerate(fsrcs) if s is not None]
            self.error(
                "EXTERNAL_MISSING_ON_BASE",
                f'Field "{dest.name}.{f.name}" is marked @external on all the subgraphs in which it '
                f"is listed ({subgraph_list(defining)}).",
                dest.name,
                f.name,
                ", ".join(defining),
            )
            return
        without = [None if ext[i] else s for i, s in enumerate(fsrcs)]
        if any(without):
            f.description = self.description([s.description if s else None for s in without])
            access_of = f"{dest.name}.{f.name}"
            self.merge_applied([s.directives if s else None for s in without], f.directives, f.late, access_of)
            self.merge_args(dest, f, without)
        basis = without if any(without) else fsrcs
        all_equal = self.merge_type_ref(dest, f.name, None, [s.type if s else None for s in basis], f, False)
        if any(ext):
            self.validate_external(dest, f, fsrcs, ext, all_equal)
        self.add_join_field(dest, f, fsrcs, ext, all_equal, ov)

    def merge_args(self, dest: SType, f: SField, srcs: list[Field | None]) -> None:
        names = list(dict.fromkeys(a for s in srcs if s for a in s.args))
        for name in names:
            arg_srcs = [s.args.get(name) if s else None for s in srcs]
            missing = [self.names[i] for i, s in enumerate(srcs) if s and name not in s.args]
            if missing:
                required = [
                    self.names[i]
                    for i, a in enumerate(arg_srcs)
                    if a and isinstance(a.type, NonNullTypeNode) and a.default is None
                ]
                if required:
                    self.error(
                        "REQUIRED_ARGUMENT_MISSING_IN_SOME_SUBGRAPH",
                        f'Argument "{dest.name}.{f.name}({name}:)" is required in some subgraphs but '
                        f"does not appear in all subgraphs: it is required in {subgraph_list(required)} "
                        f"but does not appear in {subgraph_list(missing)}",
                        dest.name,
                        f.name,
                        ", ".join(required + missing),
                    )
                continue
            arg = f.args[name] = SArg(name, "")
            self.merge_input_value(dest, f.name, name, arg_srcs, arg, "Argument")

    def merge_input_value(
        self,
        dest: SType,
        fname: str,
        arg_name: str | None,
        srcs: Sequence[InputValue | Field | None],
        out: SArg | SField,
        kind: str,
    ) -> bool:
        """Shared by arguments and input fields: intersection semantics, defaults must agree."""
        out.description = self.description([s.description if s else None for s in srcs])
        late: list[str] = []
        self.merge_applied([s.directives if s else None for s in srcs], out.directives, late)
        if isinstance(out, SField):
            out.late.extend(late)
        all_equal = self.merge_type_ref(dest, fname, arg_name, [s.type if s else None for s in srcs], out, True)
        if isinstance(out, SArg):
            out.directives.extend(late)
        defaults = [print_value(s.default) if s and s.default is not None else None for s in srcs]
        seen = [d for s, d in zip(srcs, defaults, strict=True) if s is not None]
        distinct = set(d for d in seen if d is not None)
        coord = f'"{dest.name}.{fname}({arg_name}:)"' if arg_name else f'"{dest.name}.{fname}"'
        if len(distinct) > 1:
            self.mismatch(
                "ARGUMENT_DEFAULT_MISMATCH" if kind == "Argument" else "INPUT_FIELD_DEFAULT_MISMATCH",
                f"{kind} {coord} has incompatible default values across subgraphs: it has ",
                [
                    None if s is None else (f"default value {d}" if d else "no default value")
                    for s, d in zip(srcs, defaults, strict=True)
                ],
                f"default value {seen[0]}" if seen[0] else "no default value",
                dest.name,
                fname,
            )
        elif len(distinct) == 1 and None not in seen:
            out.default = seen[0]
        return all_equal

    def merge_type_ref(
        self, dest: SType, fname: str, arg: str | None, types: list[TypeNode | None], out: SArg | SField, is_input: bool
    ) -> bool:
        chosen: TypeNode | None = None
        subtypes = incompatible = False
        for t in types:
            if t is None:
                continue
            if chosen is None or type_str(chosen) == type_str(t):
                chosen = t
            elif self.is_subtype(chosen, t):
                subtypes = True
                if is_input:
                    chosen = t
            elif self.is_subtype(t, chosen):
                subtypes = True
                if not is_input:
                    chosen = t
            else:
                incompatible = True
        assert chosen is not None
        out.type = type_str(chosen)
        base = self.types.get(named_type(chosen))
        if base is not None and base.kind == "enum":
            self.enum_usage.setdefault(base.name, set()).add("Input" if is_input else "Output")
        if incompatible:
            what = f'argument "{dest.name}.{fname}({arg}:)"' if arg else f'field "{dest.name}.{fname}"'
            code = "FIELD_ARGUMENT_TYPE_MISMATCH" if arg else "FIELD_TYPE_MISMATCH"
            self.mismatch(
                code,
                f"Type of {what} is incompatible across subgraphs: it has ",
                [f'type "{type_str(t)}"' if t else None for t in types],
                f'type "{out.type}"',
                dest.name,
                fname,
            )
        return not (incompatible or subtypes)

    def validate_external(
        self, dest: SType, f: SField, fsrcs: list[Field | None], ext: list[bool], all_equal: bool
    ) -> None:
        merged = _parse_type(f.type)
        bad = False
        for i, s in enumerate(fsrcs):
            if s is None or not ext[i]:
                continue
            if not (type_str(s.type) == f.type or (not all_equal and self.is_subtype(merged, s.type))):
                bad = True
        if bad:
            self.mismatch(
                "EXTERNAL_TYPE_MISMATCH",
                f'Type of field "{dest.name}.{f.name}" is incompatible across subgraphs (where '
                "marked @external): it has ",
                [f'type "{type_str(s.type)}"' if s else None for s in fsrcs],
                f'type "{f.type}"',
                dest.name,
                f.name,
            )

    def add_join_field(
        self, dest: SType, f: SField, fsrcs: Sequence[Field | None], ext: list[bool], all_equal: bool, ov: Overrides
    ) -> None:
        srcs = self.sources(dest.name, dest.kind)
        needed = not all_equal or bool(ov.used) or bool(ov.labels)
        for i, s in enumerate(fsrcs):
            if needed:
                break
            if s is not None and i not in ov.unused:
                needed = ext[i] or s.has("provides") or s.has("requires")
            else:
                needed = srcs[i] is not None
        if not needed:
            return
        for i, s in enumerate(fsrcs):
            if s is None or (i in ov.unused and i not in ov.labels):
                continue
            req, prov, over = s.get("requires"), s.get("provides"), s.get("override")
            f.directives.append(
                directive(
                    "join__field",
                    [
                        ("graph", self.graph[i]),
                        ("requires", print_string(req.str_arg("fields") or "") if req else None),
                        ("provides", print_string(prov.str_arg("fields") or "") if prov else None),
                        ("override", print_string(over.str_arg("from") or "") if over else None),
                        ("type", None if all_equal else print_string(type_str(s.type))),
                        ("external", "true" if ext[i] else None),
                        ("usedOverridden", "true" if i in ov.used else None),
                        ("overrideLabel", print_string(ov.labels[i]) if i in ov.labels else None),
                    ],
                )
            )

    def validate_sharing(self, dest: SType, fname: str, fsrcs: list[Field | None], ov: Overrides) -> None:
        resolving: list[str] = []
        shareable: list[str] = []
        non_shareable: list[tuple[int, str]] = []

        def categorize(i: int, label: str, parent: TypeDef, f: Field) -> None:
            fully_external = is_external(self.subs[i], parent, f) and (parent.name, f.name) not in self.provided[i]
            if fully_external:
                return
            resolving.append(label)
            if (parent.name, f.name) in self.shareable[i]:
                shareable.append(label)
            else:
                non_shareable.append((i, label))

        for i, s in enumerate(fsrcs):
            label = f'"{self.names[i]}"'
            if s is None:
                for t, x in self.itf_object_fields(dest, fname, i):
                    categorize(i, label + f' (through @interfaceObject field "{t.name}.{fname}")', t, x)
                continue
            if i in ov.used or i in ov.unused:
                continue
            categorize(i, label, self.subs[i].types[dest.name], s)
        if non_shareable and (shareable or len(non_shareable) > 1):
            which = "all of them"
            if shareable:
                which = _human_list([lbl for _, lbl in non_shareable], "subgraph", "subgraphs")
            hint = ""
            unknown = next((lbl for i, lbl in non_shareable if i in ov.unknown_target), None)
            if unknown is not None:
                hint = (
                    f' (please note that "{dest.name}.{fname}" has an @override directive in {unknown} '
                    "that targets an unknown subgraph so this could be due to misspelling the "
                    "@override(from:) argument)"
                )
            self.error(
                "INVALID_FIELD_SHARING",
                f'Non-shareable field "{dest.name}.{fname}" is resolved from multiple subgraphs: it is '
                f"resolved from {_human_list(resolving, 'subgraph', 'subgraphs')} and defined as "
                f"non-shareable in {which}{hint}",
                dest.name,
                fname,
                ", ".join(self.names[i] for i, _ in non_shareable),
            )

    def merge_union(self, dest: SType, srcs: list[TypeDef | None]) -> None:
        for s in srcs:
            for m in s.members if s else ():
                if m not in dest.members:
                    dest.members.append(m)
        for m in dest.members:
            for i, s in enumerate(srcs):
                if s is not None and m in s.members:
                    dest.directives.append(
                        directive("join__unionMember", [("graph", self.graph[i]), ("member", print_string(m))])
                    )

    def merge_enum(self, dest: SType, srcs: list[TypeDef | None]) -> None:
        usage = self.enum_usage.get(dest.name, {"Output"})
        for s in srcs:
            for v in s.values if s else ():
                dest.values.setdefault(v, SEnumValue(v))
        for name, value in list(dest.values.items()):
            vsrcs = [s.values.get(name) if s else None for s in srcs]
            value.description = self.description([v.description if v else None for v in vsrcs])
            self.merge_applied([v.directives if v else None for v in vsrcs], value.directives, value.late)
            value.directives += [
                directive("join__enumValue", [("graph", self.graph[i])]) for i, v in enumerate(vsrcs) if v
            ]
            inaccessible = any(d.startswith("@inaccessible") for d in value.directives)
            missing = [self.names[i] for i, s in enumerate(srcs) if s and name not in s.values]
            if inaccessible or usage == {"Output"} or not missing:
                continue
            if usage == {"Input", "Output"}:
                having = [self.names[i] for i, v in enumerate(vsrcs) if v]
                self.error(
                    "ENUM_VALUE_MISMATCH",
                    f'Enum type "{dest.name}" is used as both input type and output type, but value '
                    f'"{name}" is not defined in all the subgraphs defining "{dest.name}": "{name}" is '
                    f"defined in {subgraph_list(having)} but not in {subgraph_list(missing)}",
                    dest.name,
                    subgraph=", ".join(missing),
                )
            else:
                del dest.values[name]
        if not dest.values:
            self.error(
                "EMPTY_MERGED_ENUM_TYPE",
                f'None of the values of enum type "{dest.name}" are defined consistently in all the '
                "subgraphs defining that type. As only values common to all subgraphs are merged, this "
                "would result in an empty type.",
                dest.name,
            )

    def merge_input(self, dest: SType, srcs: list[TypeDef | None]) -> None:
        for fname, fsrcs in self.field_sources(dest, srcs).items():
            f = dest.fields[fname] = SField(fname)
            all_equal = self.merge_input_value(dest, fname, None, fsrcs, f, "Input field")
            self.add_join_field(dest, f, fsrcs, [False] * self.n, all_equal, Overrides())
            inaccessible = any(d.startswith("@inaccessible") for d in f.directives)
            missing = [self.names[i] for i, s in enumerate(srcs) if s and fsrcs[i] is None]
            if inaccessible or not missing:
                continue
            required = [
                self.names[i]
                for i, s in enumerate(fsrcs)
                if s and isinstance(s.type, NonNullTypeNode) and s.default is None
            ]
            if required:
                self.error(
                    "REQUIRED_INPUT_FIELD_MISSING_IN_SOME_SUBGRAPH",
                    f'Input object field "{dest.name}.{fname}" is required in some subgraphs but does '
                    f"not appear in all subgraphs: it is required in {subgraph_list(required)} but "
                    f"does not appear in {subgraph_list(missing)}",
                    dest.name,
                    fname,
                    ", ".join(required + missing),
                )
            del dest.fields[fname]
        if not dest.fields:
            self.error(
                "EMPTY_MERGED_INPUT_TYPE",
                f'None of the fields of input object type "{dest.name}" are consistently defined in all '
                "the subgraphs defining that type. As only fields common to all subgraphs are merged, "
                "this would result in an empty type.",
                dest.name,
            )

    def add_interface_object_fields(self) -> None:
        """Fields an @interfaceObject provides reach every implementation of the interface."""
        for t in [t for t in self.types.values() if t.kind == "object"]:
            for itf_name in t.interfaces:
                itf = self.types[itf_name]
                for fname, itf_field in itf.fields.items():
                    if fname in t.fields or not self.provided_by_itf_object(fname, itf_name):
                        continue
                    copied = SField(
                        fname,
                        itf_field.type,
                        itf_field.description,
                        {
                            n: SArg(
                                a.name,
                                a.type,
                                a.description,
                                a.default,
                                [d for d in a.directives if not d.startswith("@join__")],
                            )
                            for n, a in itf_field.args.items()
                        },
                    )
                    copied.directives = [d for d in itf_field.all_directives() if not d.startswith("@join__")]
                    copied.directives.append("@join__field")
                    t.fields[fname] = copied
                    self.validate_sharing(t, fname, [None] * self.n, Overrides())

    def provided_by_itf_object(self, fname: str, itf: str) -> bool:
        for s in self.subs:
            t = s.types.get(itf)
            if t is not None and t.kind == "object" and fname in t.fields and not is_external(s, t, t.fields[fname]):
                return True
        return False

    def post_merge_validations(self) -> None:
        for t in self.types.values():
            for itf_name in t.interfaces if t.kind in ("object", "interface") else ():
                for fname in self.types[itf_name].fields:
                    if fname in t.fields:
                        continue
                    with_field = [
                        s.name
                        for s in self.subs
                        if s.types.get(itf_name) is not None
                        and s.types[itf_name].kind == "interface"
                        and fname in s.types[itf_name].fields
                    ]
                    implementing = [
                        s.name
                        for s in self.subs
                        if s.types.get(t.name) is not None and itf_name in s.types[t.name].interfaces
                    ]
                    self.error(
                        "INTERFACE_FIELD_NO_IMPLEM",
                        f'Interface field "{itf_name}.{fname}" is declared in {subgraph_list(with_field)} '
                        f'but type "{t.name}", which implements "{itf_name}" only in '
                        f'{subgraph_list(implementing)} does not have field "{fname}".',
                        t.name,
                        fname,
                    )

    def merge_directive_defs(self) -> dict[str, SDirectiveDef]:
        """Executable directives survive only if every subgraph defines them (intersection)."""
        out: dict[str, SDirectiveDef] = {}
        first = self.subs[0].directive_defs if self.subs else {}
        for name, d in first.items():
            defs = [s.directive_defs.get(name) for s in self.subs]
            if any(x is None for x in defs):
                continue
            locations = [
                loc for loc in d.locations if loc in EXECUTABLE_LOCATIONS and all(loc in x.locations for x in defs if x)
            ]
            if not locations:
                continue
            args = [
                SArg(a.name, type_str(a.type), a.description, print_value(a.default) if a.default is not None else None)
                for a in d.args.values()
                if all(x and a.name in x.args for x in defs)
            ]
            out[name] = SDirectiveDef(name, args, all(x.repeatable for x in defs if x), locations, d.description)
        return out


def _human_list(items: list[str], singular: str, plural: str) -> str:
    if len(items) == 1:
        return f"{singular} {items[0]}"
    return f"{plural} " + ", ".join(items[:-1]) + " and " + items[-1]


def _parse_type(text: str) -> TypeNode:
    from graphql.language.parser import parse_type

    return parse_type(text, no_location=True)
