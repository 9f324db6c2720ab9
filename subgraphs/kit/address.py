"""Postal address rules, the same wherever an address is entered (account, checkout)."""

from __future__ import annotations

import re
from typing import Any

from .domain import DomainError
from .domain import ErrorCode as Code
from .inputs import camel

ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
REQUIRED_ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country")
ADDRESS_LIMITS = {"name": 200, "line1": 200, "line2": 200, "city": 100, "region": 100, "postal_code": 20, "phone": 40}


def clean_address(fields: dict[str, Any], *, partial: bool, path: tuple[str, ...] = ("input",)) -> dict[str, Any]:
    """Trim and check an address. ``fields`` holds only what the client sent;
    ``partial`` (updates) lets required fields be absent, never empty."""
    values: dict[str, Any] = {}
    for key, raw in fields.items():
        where = [*path, camel(key)]
        value = str(raw).strip() if raw is not None else ""
        if not value:
            if key in REQUIRED_ADDRESS_FIELDS:
                raise DomainError(Code.REQUIRED, f"{camel(key)} is required.", where)
            values[key] = None
        elif key == "country":
            if not re.fullmatch(r"[A-Za-z]{2}", value):
                raise DomainError(Code.INVALID, "Use a two-letter ISO country code.", where)
            values[key] = value.upper()
        elif len(value) > ADDRESS_LIMITS.get(key, 200):
            raise DomainError(Code.TOO_LONG, f"{camel(key)} is too long.", where)
        else:
            values[key] = value
    if not partial:
        for key in REQUIRED_ADDRESS_FIELDS:
            if key not in values:
                raise DomainError(Code.REQUIRED, f"{camel(key)} is required.", [*path, camel(key)])
    return values
