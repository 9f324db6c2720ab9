"""Representations read by the reader made once per fetch (``executor._reader``) are the ones the
selection describes (``executor._extract``: same fields, same order, the fetch's typename), and two
objects share a representation (one entry in ``_entities``) exactly when their JSON is equal."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from router.executor import _extract, _reader
from router.operation import Field, Frag, Sel
from router.plan import Representation

TYPENAME = Field("__typename", "__typename")
SELECTIONS: dict[str, tuple[Sel, ...]] = {
    "typename and key": (TYPENAME, Field("_fk_id", "id")),
    "key alone": (Field("id", "id"),),
    "requires": (TYPENAME, Field("_fk_upc", "upc"), Field("_fk_price", "price"), Field("weight", "weight")),
    "typename last": (Field("sku", "sku"), TYPENAME),
    "aliased typename": (Field("t", "__typename"), Field("id", "id")),
    "nested": (TYPENAME, Field("id", "id"), Field("owner", "owner", sels=[Field("id", "id")])),
    "fragment": (TYPENAME, Frag("Book", [Field("id", "id")])),
    "one name twice": (TYPENAME, Field("id", "id"), Field("_fk_id", "id")),
}
VALUES: list[Any] = ["1", 1, 1.0, True, None, "x", {"id": "1"}, [1]]


def _objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"__typename": "Book"}]  # a field missing: no representation
    for a, b in itertools.product(VALUES, repeat=2):
        out.append({"__typename": "Book", "id": a})  # "_fk_id" missing
        out.append(
            {"__typename": "Book", "t": "Book", "id": a, "_fk_id": a, "_fk_upc": a, "upc": b, "_fk_price": b}
            | {"weight": 3, "sku": a, "owner": {"id": b} if b is not None else None}
        )
    return out


@pytest.mark.parametrize("name", list(SELECTIONS))
def test_readers_read_what_the_selection_describes(name: str) -> None:
    how = Representation("Media", SELECTIONS[name])
    key_of, rep_of = _reader(how)
    seen: dict[Any, bytes] = {}
    for obj in _objects():
        want = _extract(obj, how.selection)
        key = key_of(obj)
        if want is None:
            assert key is None
            continue
        want["__typename"] = "Media"
        assert key is not None
        rep = rep_of(obj)
        assert list(rep.items()) == list(want.items())
        as_json = orjson.dumps(rep, option=orjson.OPT_SORT_KEYS)
        # one key per JSON, one JSON per key
        assert seen.setdefault(key, as_json) == as_json
    assert len(set(seen.values())) == len(seen)
