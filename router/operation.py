"""Normalized operations: fragments inlined, directives pre-printed.

Both the planner (to build subgraph queries) and the response shaper (to walk
results) consume this form, so it is computed once per cached document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    print_ast,
)
from graphql.language import Visitor, visit

# A condition: (is_include, literal_or_variable_name). Literal: bool.
Cond = tuple[bool, "bool | str"]


@dataclass(eq=False)
class Field:
    key: str
    name: str
    args: str = ""  # printed "(a: 1)" or ""
    dirs: str = ""  # printed @include/@skip (and nothing else)
    conds: tuple[Cond, ...] = ()
    sels: list[Sel] | None = None
    variables: frozenset[str] = frozenset()
    denied: bool = False  # unauthorized for this request: shaped as null with an error (router/authorization.py)


@dataclass(eq=False)
class Frag:
    type_cond: str | None
    sels: list[Sel] = field(default_factory=list)
    dirs: str = ""
    conds: tuple[Cond, ...] = ()
    variables: frozenset[str] = frozenset()
    defer: str | None = None  # @defer: its label ("" without one); never sent to subgraphs


Sel = Field | Frag


class _VarCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _vars_of(nodes: Any) -> frozenset[str]:
    c = _VarCollector()
    for n in nodes:
        visit(n, c)
    return frozenset(c.names)


def _conds(directives: tuple[DirectiveNode, ...] | None) -> tuple[str, tuple[Cond, ...], list[Any]]:
    printed: list[str] = []
    conds: list[Cond] = []
    nodes: list[Any] = []
    for d in directives or ():
        name = d.name.value
        if name not in ("include", "skip"):
            continue  # other executable directives are not forwarded
        arg = d.arguments[0].value if d.arguments else None
        if isinstance(arg, VariableNode):
            conds.append((name == "include", arg.name.value))
        else:
            conds.append((name == "include", bool(getattr(arg, "value", False))))
        printed.append(print_ast(d))
        nodes.append(d)
    return (" " + " ".join(printed)) if printed else "", tuple(conds), nodes


def _defer(directives: tuple[DirectiveNode, ...] | None, off: frozenset[str]) -> str | None:
    """The label of an @defer that applies, "" without one. `if: false` does not apply, nor
    `if: $v` with ``v`` in ``off`` (the variables that are false in this request)."""
    for d in directives or ():
        if d.name.value != "defer":
            continue
        args = {a.name.value: a.value for a in d.arguments or ()}
        cond = args.get("if")
        if isinstance(cond, VariableNode):
            if cond.name.value in off:
                return None
        elif cond is not None and getattr(cond, "value", True) is False:
            return None
        label = args.get("label")
        return str(getattr(label, "value", "")) if label is not None else ""
    return None


def normalize(
    sel_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    off: frozenset[str] = frozenset(),
) -> list[Sel]:
    out: list[Sel] = []
    for s in sel_set.selections if sel_set else ():
        dirs, conds, dnodes = _conds(s.directives)
        if isinstance(s, FieldNode):
            args = ""
            var_nodes: list[Any] = list(dnodes)
            if s.arguments:
                args = "(" + ", ".join(print_ast(a) for a in s.arguments) + ")"
                var_nodes.extend(s.arguments)
            out.append(
                Field(
                    key=s.alias.value if s.alias else s.name.value,
                    name=s.name.value,
                    args=args,
                    dirs=dirs,
                    conds=conds,
                    sels=normalize(s.selection_set, fragments, off) if s.selection_set else None,
                    variables=_vars_of(var_nodes),
                )
            )
        elif isinstance(s, InlineFragmentNode):
            out.append(
                Frag(
                    s.type_condition.name.value if s.type_condition else None,
                    normalize(s.selection_set, fragments, off),
                    dirs,
                    conds,
                    _vars_of(dnodes),
                    _defer(s.directives, off),
                )
            )
        elif isinstance(s, FragmentSpreadNode):
            fd = fragments[s.name.value]
            out.append(
                Frag(
                    fd.type_condition.name.value,
                    normalize(fd.selection_set, fragments, off),
                    dirs,
                    conds,
                    _vars_of(dnodes),
                    _defer(s.directives, off),
                )
            )
    return out


def conds_pass(conds: tuple[Cond, ...], variables: dict[str, Any]) -> bool:
    for is_include, v in conds:
        val = variables.get(v) if isinstance(v, str) else v
        if bool(val) != is_include:
            return False
    return True


@dataclass
class Operation:
    kind: str  # query | mutation | subscription
    name: str | None
    sels: list[Sel]
    var_defs: dict[str, str]  # name -> printed definition "$x: Int = 3"
    node: OperationDefinitionNode


def build_operation(
    op: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode], defer_off: frozenset[str] = frozenset()
) -> Operation:
    """``defer_off``: variables false in the request, so the ``@defer(if: $v)`` they gate do not apply."""
    var_defs = {v.variable.name.value: print_ast(v) for v in op.variable_definitions or ()}
    return Operation(
        op.operation.value,
        op.name.value if op.name else None,
        normalize(op.selection_set, fragments, defer_off),
        var_defs,
        op,
    )


def defer_variables(op: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]) -> frozenset[str]:
    """The variables of ``@defer(if: $v)`` in the operation (fragments it spreads included):
    its plan depends on their values."""
    found: set[str] = set()
    seen: set[str] = set()

    def walk(sel_set: SelectionSetNode | None) -> None:
        for s in sel_set.selections if sel_set else ():
            if isinstance(s, (InlineFragmentNode, FragmentSpreadNode)):
                for d in s.directives or ():
                    if d.name.value == "defer":
                        found.update(
                            a.value.name.value
                            for a in d.arguments or ()
                            if a.name.value == "if" and isinstance(a.value, VariableNode)
                        )
            if isinstance(s, FragmentSpreadNode):
                if s.name.value not in seen:
                    seen.add(s.name.value)
                    walk(fragments[s.name.value].selection_set)
            elif isinstance(s, (FieldNode, InlineFragmentNode)):
                walk(s.selection_set)

    walk(op.selection_set)
    return frozenset(found)
