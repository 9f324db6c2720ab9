"""The metric names a PromQL expression reads (enough of PromQL for our rules and panels)."""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TEMPLATE = re.compile(r"\$\{?\w+\}?")  # Grafana variables ($__rate_interval, ${operation})
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf"}
)


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects (functions, keywords, labels and durations left out)."""
    text = _STRING.sub('""', expr)
    text = _TEMPLATE.sub("1m", text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function call or an operator
        if text[: match.start()].rstrip().endswith(tuple("0123456789.")):  # 5m, 1e3
            continue
        names.add(word)
    return names
