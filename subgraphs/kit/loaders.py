"""Helpers for per-request dataloaders: one query per batch, results in key order."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


def parse_uuid(value: object) -> uuid.UUID | None:
    """An ID from the client: a malformed one simply matches nothing."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def one_per_key(keys: Sequence[K], rows: Iterable[R], key_of: Callable[[R], K]) -> list[R | None]:
    """Align rows to keys: a missing key gets None (a dataloader's contract)."""
    found = {key_of(r): r for r in rows}
    return [found.get(k) for k in keys]


def many_per_key(keys: Sequence[K], rows: Iterable[R], key_of: Callable[[R], K]) -> list[list[R]]:
    groups: dict[K, list[R]] = defaultdict(list)
    for r in rows:
        groups[key_of(r)].append(r)
    return [groups.get(k, []) for k in keys]
