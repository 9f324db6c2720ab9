"""Admission: what a document may cost before the router parses, validates or plans it.

Checked in this order, each before the next step can be asked to do anything expensive:

1. :func:`check_text` — the document's bytes (``limits.max_document_bytes``) and the bytes of
   each string, block string and comment in it (``limits.max_token_bytes``), by a regular
   expression running in C: graphql-core's lexer reads characters one at a time in Python,
   so a 1 MB block string or comment held the event loop 0.4 to 0.5 s before the token limit
   could apply.
2. parsing under the token limit, then :func:`router.limits.check_shape` (depth, aliases, fields).
3. :func:`check_overlap` — the work of validation's OverlappingFieldsCanBeMerged rule,
   counted before validation runs. That rule compares every pair of fields sharing a
   response key in a selection set *with its fragments expanded* (and, for each pair,
   their sub-selections, recursively), and every pair of fragments spread in one
   selection set: ``{ ...F0 … ...F199 }`` with each fragment selecting ``products`` is
   ~20,000 pairs and held the loop 1.5 s. The count stops as soon as it passes
   ``limits.max_overlap_pairs`` (its own cost is bounded by that budget).

Every refusal here is a :class:`~router.errors.RouterError` with an ``extensions.code``
(and ``limit``). Every request the pipeline refuses, here or in a later stage, is counted
in ``shopgraph_router_refusals_total{reason}`` (the ``limit``, else the code, lower-cased)
and logged at INFO (a client's bad request), WARNING for 5xx, by :func:`note_refusal`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
)
from prometheus_client import Counter

from router.errors import RouterError, error

log = logging.getLogger("shopgraph.router")

REFUSALS = Counter(
    "shopgraph_router_refusals",
    "Requests refused before they were served, by reason (rate, cost, document limits, APQ store, busy).",
    ["reason"],
)

# Strings, block strings and comments: the tokens whose size is not bounded by the token count.
_BLOCK = r'"""(?:[^"\\]|\\.|"(?!""))*"""'
_STRING = r'"(?:[^"\\\n\r]|\\.)*"'
_COMMENT = r"#[^\n\r]*"
_LONG_TOKENS = re.compile(f"{_BLOCK}|{_STRING}|{_COMMENT}")


@functools.cache
def _long_word(n: int) -> re.Pattern[str]:
    """A name or number (anything but punctuation, quotes and ignored characters) longer than ``n``."""
    return re.compile(r'[^\s,!$&()\[\]{}:=@|."#]{' + str(n + 1) + ",}")


def note_refusal(e: RouterError) -> str:
    """Count and log a request the pipeline refused (one place: Pipeline.prepare); its reason."""
    ext = e.errors[0].get("extensions", {}) if e.errors else {}
    reason = str(ext.get("limit") or e.code or "unknown").lower()
    REFUSALS.labels(reason).inc()
    log.log(logging.WARNING if e.status >= 500 else logging.INFO, "request refused (%s): %s", reason, e)
    return reason


def _limit(message: str, code: str, limit: str, status: int = 400) -> RouterError:
    return RouterError([error(message, code, limit=limit)], status)


def check_text(text: str, max_bytes: int, max_token_bytes: int) -> None:
    """Refuse a document over ``max_bytes``, or holding a string/comment over ``max_token_bytes``."""
    size = len(text.encode()) if len(text) * 4 > max_bytes else len(text)  # (utf-8: at most 4 bytes a char)
    if size > max_bytes:
        raise _limit(
            f"The document is {size:,} bytes; the maximum is {max_bytes:,}.",
            "GRAPHQL_PARSE_FAILED",
            "MAX_DOCUMENT_BYTES",
        )
    if len(text) <= max_token_bytes:
        return
    for m in _LONG_TOKENS.finditer(text):
        if m.end() - m.start() > max_token_bytes:
            kind = "comment" if text[m.start()] == "#" else "string"
            raise _limit(
                f"A {kind} in the document is longer than {max_token_bytes:,} bytes (send large values as variables).",
                "GRAPHQL_PARSE_FAILED",
                "MAX_TOKEN_BYTES",
            )
    long_word = _long_word(max_token_bytes).search(_LONG_TOKENS.sub(" ", text))
    if long_word is not None:
        raise _limit(
            f"A name or number in the document is longer than {max_token_bytes:,} bytes.",
            "GRAPHQL_PARSE_FAILED",
            "MAX_TOKEN_BYTES",
        )


# Selections collected (fragments expanded) while counting, per pair of the budget: collecting is
# cheaper than comparing, but a document can make validation collect far more than it compares.
COLLECT_PER_PAIR = 40


class _Budget(Exception):
    pass


def check_overlap(doc: DocumentNode, max_pairs: int) -> None:
    """Refuse a document whose field-merging validation would compare more than ``max_pairs``
    pairs of fields (fragments expanded), counted as validation would walk them."""
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    count = collected = 0
    max_collected = max_pairs * COLLECT_PER_PAIR

    def charge(n: int) -> None:
        nonlocal count
        count += n
        if count > max_pairs:
            raise _Budget

    def collect() -> None:
        nonlocal collected
        collected += 1
        if collected > max_collected:
            raise _Budget

    def expand(ss: SelectionSetNode | None, into: dict[str, list[FieldNode]], seen: set[str]) -> None:
        """Fields of ``ss`` by response key, fragments expanded (each fragment once, as graphql-core does)."""
        if ss is None:
            return
        for s in ss.selections:
            collect()
            if isinstance(s, FieldNode):
                into.setdefault((s.alias or s.name).value, []).append(s)
            elif isinstance(s, InlineFragmentNode):
                expand(s.selection_set, into, seen)
            elif isinstance(s, FragmentSpreadNode):
                name = s.name.value
                # Validation compares this fragment with every other one spread here, and with the fields.
                charge(len(seen))
                frag = frags.get(name)
                if name in seen or frag is None:
                    continue
                seen.add(name)
                expand(frag.selection_set, into, seen)

    def fields_of(ss: SelectionSetNode | None) -> dict[str, list[FieldNode]]:
        out: dict[str, list[FieldNode]] = {}
        expand(ss, out, set())
        return out

    def between(a: SelectionSetNode | None, b: SelectionSetNode | None) -> None:
        if a is None or b is None:
            return
        fa, fb = fields_of(a), fields_of(b)
        for key, xs in fa.items():
            ys = fb.get(key)
            if not ys:
                continue
            for x in xs:
                for y in ys:
                    charge(1)
                    between(x.selection_set, y.selection_set)

    def within(ss: SelectionSetNode) -> None:
        for fields in fields_of(ss).values():
            for i, x in enumerate(fields):
                for y in fields[i + 1 :]:
                    charge(1)
                    between(x.selection_set, y.selection_set)

    try:
        for ss in _selection_sets(doc.definitions):
            within(ss)
    except _Budget:
        raise _limit(
            f"Validating this document would compare more than {max_pairs:,} pairs of fields "
            "(fragments expanded); simplify it.",
            "GRAPHQL_VALIDATION_FAILED",
            "MAX_OVERLAP_PAIRS",
        ) from None


def _selection_sets(nodes: Iterable[Node]) -> Iterable[SelectionSetNode]:
    """Every selection set written in the document (validation visits each once)."""
    stack: list[SelectionSetNode] = []
    for d in nodes:
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode):
            stack.append(d.selection_set)
    while stack:
        ss = stack.pop()
        yield ss
        for s in ss.selections:
            if isinstance(s, FieldNode | InlineFragmentNode) and s.selection_set is not None:
                stack.append(s.selection_set)
