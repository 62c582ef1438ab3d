"""The access rule's conditions as a small expression tree, rendered to DuckDB SQL and to Spark.

``dimnb.access`` builds the tree (which calls a scope admits, which recordings
are playable); this module only renders it. One tree, several renderings, so
the DuckDB listing and a Spark DataFrame cannot drift apart:

- ``to_duckdb`` gives a ``Fragment`` (SQL with ``$name`` parameters), the exact
  text dimnb's queries have always embedded;
- ``to_spark_sql`` gives Spark SQL with ``:name`` parameters (for
  ``spark.sql(text, args=...)``);
- ``to_spark_column`` gives a ``pyspark.sql.Column`` (values bound as literals).

Leaves name a *table role* (``calls`` or ``recordings``) and a column; the
renderer maps each role to the alias or DataFrame the query uses. Values
always travel as parameters or literals, never inside SQL text, except the
recording states, which are fixed words of the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dimnb.sql import FALSE, TRUE, Fragment

CALLS, RECORDINGS = "calls", "recordings"
_WORD_RE = re.compile(r"^[a-z_]+$")


class Expr:
    """A boolean condition on a call row (and its recording's row)."""

    def __and__(self, other: Expr) -> Expr:
        return And((self, other))


@dataclass(frozen=True)
class Const(Expr):
    value: bool


@dataclass(frozen=True)
class ListHas(Expr):
    """The array column ``table.column`` holds ``value`` (bound as parameter ``param``)."""

    table: str
    column: str
    param: str
    value: str


@dataclass(frozen=True)
class OneOf(Expr):
    """``table.column`` is one of a few fixed words of the schema (recording states)."""

    table: str
    column: str
    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.words or not all(_WORD_RE.match(w) for w in self.words):
            raise ValueError(f"OneOf takes fixed lower-case words, not {self.words!r}")


@dataclass(frozen=True)
class Or(Expr):
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class And(Expr):
    terms: tuple[Expr, ...]


ALWAYS, NEVER = Const(True), Const(False)


def params(expr: Expr) -> dict[str, Any]:
    """Every parameter the tree binds (the same name always with the same value)."""
    found: dict[str, Any] = {}

    def walk(node: Expr) -> None:
        if isinstance(node, ListHas):
            if found.get(node.param, node.value) != node.value:
                raise ValueError(f"parameter name clash: {node.param}")
            found[node.param] = node.value
        elif isinstance(node, (Or, And)):
            for term in node.terms:
                walk(term)

    walk(expr)
    return found


# ---------------------------------------------------------------------------- DuckDB


def to_duckdb(expr: Expr, aliases: dict[str, str]) -> Fragment:
    """The condition as DuckDB SQL (``$name`` parameters); ``aliases`` maps table roles to query aliases."""
    if isinstance(expr, Const):
        return TRUE if expr.value else FALSE
    if isinstance(expr, And):
        result = to_duckdb(expr.terms[0], aliases)
        for term in expr.terms[1:]:
            result = result & to_duckdb(term, aliases)
        return result
    return Fragment(_duckdb_text(expr, aliases), params(expr))


def _duckdb_text(expr: Expr, aliases: dict[str, str]) -> str:
    if isinstance(expr, ListHas):
        # One list_contains per value: twice as fast as list_has_any with a list parameter (bench/scope.py).
        return f"list_contains({aliases[expr.table]}.{expr.column}, ${expr.param})"
    if isinstance(expr, OneOf):
        return f"{aliases[expr.table]}.{expr.column} IN (" + ", ".join(f"'{w}'" for w in expr.words) + ")"
    if isinstance(expr, Or):
        return "(" + " OR ".join(_duckdb_text(t, aliases) for t in expr.terms) + ")"
    if isinstance(expr, And):
        return " AND ".join(f"({_duckdb_text(t, aliases)})" for t in expr.terms)
    if isinstance(expr, Const):
        return "TRUE" if expr.value else "FALSE"
    raise TypeError(f"not an access expression: {expr!r}")


# ---------------------------------------------------------------------------- Spark


def to_spark_sql(expr: Expr, aliases: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The condition as Spark SQL with ``:name`` parameters, and the values for ``spark.sql(..., args=)``."""

    def text(node: Expr) -> str:
        if isinstance(node, Const):
            return "TRUE" if node.value else "FALSE"
        if isinstance(node, ListHas):
            return f"array_contains({aliases[node.table]}.{node.column}, :{node.param})"
        if isinstance(node, OneOf):
            return f"{aliases[node.table]}.{node.column} IN (" + ", ".join(f"'{w}'" for w in node.words) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(text(t) for t in node.terms) + ")"
        if isinstance(node, And):
            return "(" + " AND ".join(text(t) for t in node.terms) + ")"
        raise TypeError(f"not an access expression: {node!r}")

    return text(expr), params(expr)


def to_spark_column(expr: Expr, columns: dict[str, Any] | None = None) -> Any:
    """The condition as a ``pyspark.sql.Column``.

    ``columns`` maps a table role to a function from a column name to a
    Column (default: ``F.col(name)``, for a DataFrame holding the role's
    columns unqualified). A NULL array is an empty one (no match), as in DuckDB.
    """
    from pyspark.sql import functions as F

    def column(table: str, name: str) -> Any:
        if columns and table in columns:
            return columns[table](name)
        return F.col(name)

    def build(node: Expr) -> Any:
        if isinstance(node, Const):
            return F.lit(node.value)
        if isinstance(node, ListHas):
            return F.coalesce(F.array_contains(column(node.table, node.column), F.lit(node.value)), F.lit(False))
        if isinstance(node, OneOf):
            return column(node.table, node.column).isin(list(node.words))
        if isinstance(node, (Or, And)):
            result = build(node.terms[0])
            for term in node.terms[1:]:
                result = (result | build(term)) if isinstance(node, Or) else (result & build(term))
            return result
        raise TypeError(f"not an access expression: {node!r}")

    return build(expr)
