"""Print a supergraph exactly as `@apollo/federation-internals`' printSchema does
(with the shallow ordering `@apollo/composition` uses: types and directive
definitions sorted by name, everything else in merge order)."""

from __future__ import annotations

import json

from graphql import (
    BooleanValueNode,
    ConstValueNode,
    EnumValueNode,
    FloatValueNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    StringValueNode,
)
from graphql.language.block_string import print_block_string

from .access import DEFINITIONS, SCALARS, SPEC_URL
from .model import SArg, SDirectiveDef, SField, SType, Supergraph

LINK = "https://specs.apollo.dev/link/v1.0"
INDENT = "  "

_LINK_DEFS = {
    "link": "directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA",
    "link__Import": "scalar link__Import",
    "link__Purpose": 'enum link__Purpose {\n  """\n  `SECURITY` features provide metadata necessary to '
    'securely resolve fields.\n  """\n  SECURITY\n\n  """\n  `EXECUTION` features provide metadata '
    'necessary for operation execution.\n  """\n  EXECUTION\n}',
}
_TAG = (
    "directive @tag(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | "
    "ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA"
)
_COST = (
    "directive @cost(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | "
    "OBJECT | SCALAR"
)
_LIST_SIZE = (
    "directive @{name}(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], "
    "requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION"
)
_INACCESSIBLE = (
    "directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | "
    "SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION"
)


def _join_defs(version: tuple[int, int]) -> dict[str, str]:
    field_args = (
        "graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, "
        "external: Boolean, override: String, usedOverridden: Boolean"
    )
    if version >= (0, 4):
        field_args += ", overrideLabel: String"
    if version >= (0, 5):
        field_args += ", contextArguments: [join__ContextArgument!]"
    defs = {
        "join__enumValue": "directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE",
        "join__field": f"directive @join__field({field_args}) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION",
        "join__graph": "directive @join__graph(name: String!, url: String!) on ENUM_VALUE",
        "join__implements": "directive @join__implements(graph: join__Graph!, interface: String!) "
        "repeatable on OBJECT | INTERFACE",
        "join__type": "directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: "
        "Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) "
        "repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR",
        "join__unionMember": "directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION",
        "join__FieldSet": "scalar join__FieldSet",
    }
    if version >= (0, 4):
        defs["join__directive"] = (
            "directive @join__directive(graphs: [join__Graph!], name: String!, args: "
            "join__DirectiveArguments) repeatable on SCHEMA | OBJECT | INTERFACE | FIELD_DEFINITION"
        )
        defs["join__DirectiveArguments"] = "scalar join__DirectiveArguments"
    if version >= (0, 5):
        defs["join__ContextArgument"] = (
            "input join__ContextArgument {\n  name: String!\n  type: String!\n  context: String!\n"
            "  selection: join__FieldValue!\n}"
        )
        defs["join__FieldValue"] = "scalar join__FieldValue"
    return defs


def collation_key(name: str) -> tuple[tuple[tuple[int, str], ...], tuple[int, ...]]:
    """Approximates JS `localeCompare` (ICU root collation) for GraphQL names:
    '_' before digits before letters, case-insensitive first, lower case first on ties."""

    def primary(c: str) -> tuple[int, str]:
        if c.isdigit():
            return (1, c)
        if c.isalpha():
            return (2, c.lower())
        return (0, c)

    return tuple(primary(c) for c in name), tuple(0 if c.islower() else 1 for c in name)


def print_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def print_value(v: ConstValueNode) -> str:
    if isinstance(v, StringValueNode):
        return print_string(v.value)
    if isinstance(v, IntValueNode | FloatValueNode | EnumValueNode):
        return str(v.value)
    if isinstance(v, BooleanValueNode):
        return "true" if v.value else "false"
    if isinstance(v, NullValueNode):
        return "null"
    if isinstance(v, ListValueNode):
        return "[" + ", ".join(print_value(x) for x in v.values) + "]"
    if isinstance(v, ObjectValueNode):
        return "{" + ", ".join(f"{f.name.value}: {print_value(f.value)}" for f in v.fields) + "}"
    raise TypeError(f"unexpected value {v!r}")


def directive(name: str, args: list[tuple[str, str | None]]) -> str:
    present = [f"{k}: {v}" for k, v in args if v is not None]
    return f"@{name}" + (f"({', '.join(present)})" if present else "")


def _description(desc: str | None, indent: str = "", first: bool = True) -> str:
    if desc is None:
        return ""
    block = print_block_string(desc)
    prefix = "\n" + indent if indent and not first else indent
    return prefix + block.replace("\n", "\n" + indent) + "\n"


def _applied(directives: list[str], on_new_lines: bool = False, end_newline: bool | None = None) -> str:
    if not directives:
        return ""
    if end_newline is None:
        end_newline = on_new_lines
    if on_new_lines:
        return "\n" + INDENT + ("\n" + INDENT).join(directives) + ("\n" if end_newline else "")
    return " " + " ".join(directives)


def _arg(a: SArg) -> str:
    default = f" = {a.default}" if a.default is not None else ""
    return f"{a.name}: {a.type}{default}" + _applied(a.directives)


def _args(args: list[SArg], indent: str = "") -> str:
    if not args:
        return ""
    if all(not a.description for a in args):
        return "(" + ", ".join(_arg(a) for a in args) + ")"
    lines = [_description(a.description, "  " + indent, i == 0) + "  " + indent + _arg(a) for i, a in enumerate(args)]
    return "(\n" + "\n".join(lines) + "\n" + indent + ")"


def _block(items: list[str]) -> str:
    return "{\n" + "\n".join(items) + "\n}" if items else ""


def _field(f: SField, is_input: bool, first: bool) -> str:
    default = f" = {f.default}" if is_input and f.default is not None else ""
    args = "" if is_input else _args(list(f.args.values()), INDENT)
    return (
        _description(f.description, INDENT, first)
        + INDENT
        + f"{f.name}{args}: {f.type}{default}"
        + _applied(f.all_directives())
    )


def print_type(t: SType) -> str:
    dirs = t.directives + t.late
    head = _description(t.description)
    if t.kind in ("object", "interface", "input"):
        keyword = {"object": "type", "interface": "interface", "input": "input"}[t.kind]
        impls = " implements " + " & ".join(t.interfaces) if t.interfaces else ""
        fields = [_field(f, t.kind == "input", i == 0) for i, f in enumerate(t.fields.values())]
        return (
            head
            + f"{keyword} {t.name}{impls}"
            + _applied(dirs, True, bool(fields))
            + (" " if not dirs and fields else "")
            + _block(fields)
        )
    if t.kind == "union":
        members = " = " + " | ".join(t.members) if t.members else ""
        return head + f"union {t.name}" + _applied(dirs, True, bool(t.members)) + members
    if t.kind == "enum":
        values = [
            _description(v.description, INDENT, i == 0) + INDENT + v.name + _applied(v.directives + v.late)
            for i, v in enumerate(t.values.values())
        ]
        return (
            head
            + f"enum {t.name}"
            + _applied(dirs, True, bool(values))
            + (" " if not dirs and values else "")
            + _block(values)
        )
    return head + f"scalar {t.name}" + _applied(dirs, True, False)


def print_directive_def(d: SDirectiveDef) -> str:
    return (
        _description(d.description)
        + f"directive @{d.name}{_args(d.args)}"
        + (" repeatable" if d.repeatable else "")
        + " on "
        + " | ".join(d.locations)
    )


def print_supergraph(sg: Supergraph) -> str:
    jv = f"v{sg.join_version[0]}.{sg.join_version[1]}"
    links = [
        directive("link", [("url", print_string(LINK))]),
        directive("link", [("url", print_string(f"https://specs.apollo.dev/join/{jv}")), ("for", "EXECUTION")]),
    ]
    if sg.uses_tag:
        links.append(directive("link", [("url", print_string("https://specs.apollo.dev/tag/v0.3"))]))
    if sg.uses_inaccessible:
        links.append(
            directive(
                "link",
                [
                    ("url", print_string("https://specs.apollo.dev/inaccessible/v0.2")),
                    ("for", "SECURITY"),
                ],
            )
        )
    links.extend(
        directive("link", [("url", print_string(SPEC_URL[name])), ("for", "SECURITY")]) for name in sg.access_control
    )
    uses_cost_spec = sg.uses_cost or sg.uses_list_size
    if uses_cost_spec:
        cost_link: list[tuple[str, str | None]] = [("url", print_string("https://specs.apollo.dev/cost/v0.1"))]
        if sg.uses_list_size:
            cost_link.append(("import", '["@listSize"]'))
        links.append(directive("link", cost_link))
    roots = [f"{INDENT}{k}: {sg.roots[k]}" for k in ("query", "mutation", "subscription") if k in sg.roots]
    schema = "schema" + _applied(links, True, bool(roots)) + _block(roots)

    spec = {**_LINK_DEFS, **_join_defs(sg.join_version)}
    if sg.uses_tag:
        spec["tag"] = _TAG
    if sg.uses_inaccessible:
        spec["inaccessible"] = _INACCESSIBLE
    if uses_cost_spec:
        # Apollo always defines @cost with the spec; @listSize keeps its name only when imported.
        list_size = "listSize" if sg.uses_list_size else "cost__listSize"
        spec["cost"] = _COST
        spec[list_size] = _LIST_SIZE.format(name=list_size)
    for name in sg.access_control:
        spec[name] = DEFINITIONS[name]
        if name in SCALARS:
            spec[SCALARS[name]] = f"scalar {SCALARS[name]}"
    graphs = [
        f"  {value} {directive('join__graph', [('name', print_string(n)), ('url', print_string(u))])}"
        for value, n, u in sg.graphs
    ]
    spec["join__Graph"] = "enum join__Graph " + _block(graphs)

    directive_names = [n for n, text in spec.items() if text.startswith("directive")]
    directive_text = {n: spec[n] for n in directive_names}
    directive_text.update({n: print_directive_def(d) for n, d in sg.directive_defs.items()})
    type_text = {n: t for n, t in spec.items() if n not in directive_names}
    type_text.update({n: print_type(t) for n, t in sg.types.items()})
    parts = [schema]
    parts += [directive_text[n] for n in sorted(directive_text, key=collation_key)]
    parts += [type_text[n] for n in sorted(type_text, key=collation_key)]
    return "\n\n".join(parts)
