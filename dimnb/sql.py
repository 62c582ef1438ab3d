"""The one home for building SQL: identifiers are quoted here, values always travel as parameters.

Builders return ``(sql, params)`` pairs using DuckDB's ``$name`` placeholders.
Reserved parameter names: those starting with ``actor_`` and ``why_`` (set by
dimnb.access); every other builder prefixes its own names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_identifier(name: str) -> str:
    """Quote a SQL identifier; rejects anything that is not a plain identifier (never user text)."""
    if not _IDENTIFIER_RE.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def referenced_params(sql: str) -> set[str]:
    return set(_PARAM_RE.findall(sql))


@dataclass
class Fragment:
    """A piece of SQL and the parameters it binds (only those it references: DuckDB rejects extras)."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        used = referenced_params(self.sql)
        missing = used - set(self.params)
        if missing:
            raise ValueError(f"SQL references unbound parameter(s): {sorted(missing)}")
        self.params = {k: v for k, v in self.params.items() if k in used}

    def __and__(self, other: "Fragment") -> "Fragment":
        clash = set(self.params) & set(other.params)
        clash = {k for k in clash if self.params[k] != other.params[k]}
        if clash:
            raise ValueError(f"parameter name clash: {sorted(clash)}")
        return Fragment(f"({self.sql}) AND ({other.sql})", {**self.params, **other.params})


TRUE = Fragment("TRUE")
FALSE = Fragment("FALSE")


def all_of(fragments: list[Fragment]) -> Fragment:
    result = TRUE
    for fragment in fragments:
        result = result & fragment
    return result
