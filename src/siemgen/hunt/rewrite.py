"""Rewrite DuckDB conditions so that DuckDB evaluates less of them on each row.

The hunt runs many rules over every record. DuckDB evaluates a CASE branch only on the rows
that reach it, so AND and OR become CASE wherever that keeps which rows are TRUE.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from siemgen.errors import ConversionError


def _truth(node: exp.Expr) -> exp.Expr:
    """Rewrite AND and OR as CASE so DuckDB skips the right side when the left decides it.

    DuckDB evaluates both sides of AND and OR on every row when the result is a column, but
    a CASE branch only on the rows that reach it. The rewrite keeps which rows are TRUE, not
    the NULLs, so it applies only where the result is read as a truth value: the top of a
    condition and the first argument of ``COALESCE(x, FALSE)``.
    """
    if isinstance(node, exp.Paren):
        return _truth(node.this)
    if isinstance(node, exp.And):
        return exp.Case(
            ifs=[exp.If(this=_truth(node.this), true=_truth(node.expression))],
            default=exp.false(),
        )
    if isinstance(node, exp.Or):
        return exp.Case(
            ifs=[exp.If(this=_truth(node.this), true=exp.true())],
            default=_truth(node.expression),
        )
    if isinstance(node, exp.Not):
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        if _is_false_coalesce(inner):
            return exp.Not(this=_coalesce_truth(inner))
        return node
    if _is_false_coalesce(node):
        return _coalesce_truth(node)
    return node


def _is_false_coalesce(node: exp.Expr) -> bool:
    if not isinstance(node, exp.Coalesce):
        return False
    rest = node.expressions
    return len(rest) == 1 and isinstance(rest[0], exp.Boolean) and not rest[0].this


def _coalesce_truth(node: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=_truth(node.this), expressions=[exp.false()])


def short_circuit(condition: str) -> str:
    """Return a DuckDB condition that is TRUE on exactly the rows where ``condition`` is."""
    try:
        tree = sqlglot.parse_one(condition, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise ConversionError(f"the DuckDB condition does not parse: {error}") from error
    return str(_truth(tree).sql(dialect="duckdb"))
