"""Transpile Athena (Trino) SQL to DuckDB SQL that gives the same results on the same rows.

sqlglot does the translation. ``_rewrite`` then replaces each function whose DuckDB
counterpart behaves differently, with a form or a macro of ``siemgen.engines.duckdb`` that
keeps Athena's meaning.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from siemgen.engines.duckdb import (
    IP_HEX_MACRO,
    JSON_EXTRACT_MACRO,
    JSON_SCALAR_MACRO,
    network_hex_bounds,
)
from siemgen.errors import ConversionError


def _json_path_text(node: exp.Expression) -> str:
    """Return the JSONPath argument of a JSON function as text."""
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    if isinstance(node, exp.JSONPath):
        return str(node.sql(dialect="presto")).strip("'").replace("''", "'")
    raise ConversionError(f"unsupported JSON path argument {node.sql()!r}")


def _rewrite(node: exp.Expression) -> exp.Expression:
    """Replace Trino functions whose DuckDB form differs in meaning."""
    if isinstance(node, exp.JSONExtractScalar):
        path = _json_path_text(node.expression)
        return exp.Anonymous(
            this=JSON_SCALAR_MACRO, expressions=[node.this, exp.Literal.string(path)]
        )
    if isinstance(node, exp.JSONExtract):
        path = _json_path_text(node.expression)
        return exp.Anonymous(
            this=JSON_EXTRACT_MACRO, expressions=[node.this, exp.Literal.string(path)]
        )
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "any_match":
        array, function = node.expressions
        filtered = exp.Anonymous(this="list_filter", expressions=[array, function])
        return exp.Paren(
            this=exp.GT(
                this=exp.Anonymous(this="len", expressions=[filtered]),
                expression=exp.Literal.number(0),
            )
        )
    if isinstance(node, exp.JSONFormat):
        return exp.Cast(this=node.this, to=exp.DataType.build("VARCHAR"))
    if isinstance(node, exp.ArrayContains) and isinstance(node.expression, exp.TryCast | exp.Cast):
        target = node.expression.args.get("to")
        if (
            isinstance(target, exp.DataType)
            and target.this == exp.DataType.Type.IPADDRESS
            and isinstance(node.this, exp.Literal)
        ):
            first, last = network_hex_bounds(str(node.this.this))
            address = exp.Anonymous(this=IP_HEX_MACRO, expressions=[node.expression.this])
            return exp.Paren(
                this=exp.Between(
                    this=address,
                    low=exp.Literal.string(first),
                    high=exp.Literal.string(last),
                )
            )
    if isinstance(node, exp.Try) and isinstance(node.this, exp.FromISO8601Timestamp):
        return exp.TryCast(this=node.this.this, to=exp.DataType.build("TIMESTAMPTZ"))
    return node


def transpile(athena_sql: str) -> str:
    """Transpile Athena SQL to DuckDB SQL, as ``siemgen.engines.duckdb.to_duckdb`` documents."""
    try:
        tree = sqlglot.parse_one(athena_sql, read="athena")
    except sqlglot.errors.ParseError as error:
        raise ConversionError(
            f"Athena SQL does not parse: {error}", target="athena", hint="report the rule"
        ) from error
    # A replaced node keeps its children unvisited, so repeat until nothing changes.
    rewritten = tree
    previous = None
    while previous != (text := rewritten.sql(dialect="duckdb")):
        previous = text
        rewritten = rewritten.transform(_rewrite)
    return str(text)
