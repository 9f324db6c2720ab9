"""The supergraph being built: plain containers, directives kept as printed text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SArg:
    name: str
    type: str
    description: str | None = None
    default: str | None = None
    directives: list[str] = field(default_factory=list)


@dataclass
class SField:
    name: str
    type: str = ""
    description: str | None = None
    args: dict[str, SArg] = field(default_factory=dict)
    directives: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # merged after everything else, as Apollo does
    default: str | None = None  # input fields only

    def all_directives(self) -> list[str]:
        return self.directives + self.late


@dataclass
class SEnumValue:
    name: str
    description: str | None = None
    directives: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)


@dataclass
class SType:
    kind: str
    name: str
    description: str | None = None
    directives: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    fields: dict[str, SField] = field(default_factory=dict)
    interfaces: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    values: dict[str, SEnumValue] = field(default_factory=dict)


@dataclass
class SDirectiveDef:
    name: str
    args: list[SArg]
    repeatable: bool
    locations: list[str]
    description: str | None = None


@dataclass
class Supergraph:
    join_version: tuple[int, int]
    graphs: list[tuple[str, str, str]]  # (enum value, name, url)
    roots: dict[str, str]
    types: dict[str, SType]
    directive_defs: dict[str, SDirectiveDef]
    uses_tag: bool
    uses_inaccessible: bool
    # demand control (the cost spec): kept so the router can estimate operation costs
    uses_cost: bool = False
    uses_list_size: bool = False
    access_control: tuple[str, ...] = ()  # the access-control directives used (router/composition/access.py)
