"""Run Athena SQL on CloudTrail records with DuckDB, keeping Athena's semantics.

The table has the columns and types of the Athena CloudTrail table (``siemgen.fields``), and
records are loaded as Athena's JsonSerDe reads them. ``to_duckdb`` transpiles the SQL with
sqlglot and replaces the functions whose DuckDB counterparts behave differently.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from siemgen.backends.athena_tables import quote_table
from siemgen.errors import ConfigError
from siemgen.fields import ATHENA_COLUMNS

logger = logging.getLogger(__name__)

DEFAULT_TABLE = "cloudtrail_logs"

JSON_SCALAR_MACRO = "siemgen_json_scalar"
JSON_EXTRACT_MACRO = "siemgen_json_extract"
IP_HEX_MACRO = "siemgen_ip_hex"

_MACROS = (
    # Trino's json_extract_scalar and json_extract return NULL for text that is not valid JSON,
    # such as an additionalEventData of "MFAUsed=No", where DuckDB's JSON functions raise
    # "Malformed JSON". CASE evaluates its THEN branch only on the rows where json_valid is
    # true. With DuckDB 2.0.1, try() took four times as long as this guard over a million rows
    # of which one in a hundred was text.
    # NOTE: Trino parses the text only as far as the path, so it still finds $.a in
    # '{"a": 1, broken', where these macros return NULL.
    f"CREATE OR REPLACE MACRO {JSON_EXTRACT_MACRO}(doc, path) AS "
    "CASE WHEN json_valid(doc) THEN json_extract(doc, path) END",
    # json_value returns NULL for objects and arrays, as Trino's json_extract_scalar does, and
    # the scalar as JSON, which json_extract_string unquotes. So the document is parsed twice,
    # by json_valid and json_value, where json_type and json_extract_string would add a third.
    f"CREATE OR REPLACE MACRO {JSON_SCALAR_MACRO}(doc, path) AS "
    "CASE WHEN json_valid(doc) THEN json_extract_string(json_value(doc, path), '$') END",
    # An IP address as 32 hex digits of its IPv6 form, IPv4 as IPv4-mapped (::ffff:a.b.c.d)
    # the way Trino's IPADDRESS type stores it, or NULL for text that is not an address.
    # NOTE: IPv6 text with a dotted IPv4 tail (::ffff:192.0.2.1) gives NULL here, while Trino
    # parses it; CloudTrail writes IPv4 sources in dotted form.
    "CREATE OR REPLACE MACRO siemgen_ipv4_hex(a) AS CASE "
    "WHEN regexp_full_match(a, '[0-9]{1,3}([.][0-9]{1,3}){3}') "
    "AND list_max(list_transform(string_split(a, '.'), lambda o: CAST(o AS INTEGER))) <= 255 "
    "THEN '00000000000000000000ffff' || array_to_string(list_transform(string_split(a, '.'), "
    "lambda o: lpad(lower(to_hex(CAST(o AS INTEGER))), 2, '0')), '') END",
    "CREATE OR REPLACE MACRO siemgen_ipv6_groups(a) AS CASE "
    "WHEN strpos(a, '::') > 0 THEN list_concat("
    "CASE WHEN split_part(a, '::', 1) = '' THEN []::VARCHAR[] "
    "ELSE string_split(split_part(a, '::', 1), ':') END, "
    "list_transform(range(8 - len(CASE WHEN split_part(a, '::', 1) = '' THEN []::VARCHAR[] "
    "ELSE string_split(split_part(a, '::', 1), ':') END) - len(CASE WHEN split_part(a, '::', 2) "
    "= '' THEN []::VARCHAR[] ELSE string_split(split_part(a, '::', 2), ':') END)), "
    "lambda i: '0'), "
    "CASE WHEN split_part(a, '::', 2) = '' THEN []::VARCHAR[] "
    "ELSE string_split(split_part(a, '::', 2), ':') END) "
    "ELSE string_split(a, ':') END",
    "CREATE OR REPLACE MACRO siemgen_ipv6_hex(a) AS CASE "
    "WHEN regexp_full_match(a, '[0-9a-fA-F:]{2,39}') AND a NOT LIKE '%::%::%' "
    "AND a NOT LIKE '%:::%' AND len(siemgen_ipv6_groups(lower(a))) = 8 "
    "AND list_bool_and(list_transform(siemgen_ipv6_groups(lower(a)), "
    "lambda g: regexp_full_match(g, '[0-9a-f]{1,4}'))) "
    "THEN array_to_string(list_transform(siemgen_ipv6_groups(lower(a)), "
    "lambda g: lpad(g, 4, '0')), '') END",
    f"CREATE OR REPLACE MACRO {IP_HEX_MACRO}(a) AS "
    "coalesce(siemgen_ipv4_hex(a), siemgen_ipv6_hex(a))",
)


def network_hex_bounds(network: str) -> tuple[str, str]:
    """Return the first and last address of a network as 32 hex digits of the IPv6 form."""
    net = ipaddress.ip_network(network, strict=False)
    if isinstance(net, ipaddress.IPv4Network):
        mapped = ipaddress.IPv6Network(
            f"::ffff:{net.network_address}/{96 + net.prefixlen}", strict=False
        )
        first, last = mapped.network_address, mapped.broadcast_address
    else:
        first, last = net.network_address, net.broadcast_address
    return f"{int(first):032x}", f"{int(last):032x}"


# Hive and Athena DDL types.


def _split_top_level(text: str) -> list[str]:
    """Split a type list on commas that are not inside ``<...>``."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if current:
        parts.append("".join(current).strip())
    return parts


def duckdb_type(hive_type: str) -> str:
    """Translate an Athena DDL type (``STRING``, ``STRUCT<...>``, ...) to a DuckDB type."""
    text = hive_type.strip()
    upper = text.upper()
    if upper == "STRING":
        return "VARCHAR"
    if upper.startswith("ARRAY<") and text.endswith(">"):
        return duckdb_type(text[6:-1]) + "[]"
    if upper.startswith("MAP<") and text.endswith(">"):
        key, value = _split_top_level(text[4:-1])
        return f"MAP({duckdb_type(key)}, {duckdb_type(value)})"
    if upper.startswith("STRUCT<") and text.endswith(">"):
        members = []
        for member in _split_top_level(text[7:-1]):
            name, _, member_type = member.partition(":")
            members.append(f"{name.strip()} {duckdb_type(member_type)}")
        return "STRUCT(" + ", ".join(members) + ")"
    if upper in ("BOOLEAN", "BIGINT", "INT", "DOUBLE", "TIMESTAMP"):
        return upper
    raise ValueError(f"unsupported Athena column type {hive_type!r}")


# Records as the JsonSerDe reads them.


def _serde_text(value: Any) -> str | None:
    """Return a JSON value as a STRING column reads it: objects and arrays as JSON text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _serde_value(value: Any, hive_type: str) -> Any:
    """Convert one JSON value to the Python value of a column of the given Athena type."""
    text = hive_type.strip()
    upper = text.upper()
    if value is None:
        return None
    if upper.startswith("STRUCT<"):
        if not isinstance(value, Mapping):
            return None
        lowered = {str(key).lower(): item for key, item in value.items()}
        result: dict[str, Any] = {}
        for member in _split_top_level(text[7:-1]):
            name, _, member_type = member.partition(":")
            result[name.strip()] = _serde_value(lowered.get(name.strip()), member_type)
        return result
    if upper.startswith("ARRAY<"):
        if not isinstance(value, list):
            return None
        return [_serde_value(item, text[6:-1]) for item in value]
    if upper.startswith("MAP<"):
        if not isinstance(value, Mapping):
            return None
        _, value_type = _split_top_level(text[4:-1])
        return {str(key): _serde_value(item, value_type) for key, item in value.items()}
    return _serde_text(value)


def serde_row(record: Mapping[str, Any], partition_column: str | None = None) -> dict[str, Any]:
    """Return one raw CloudTrail record as the Athena table's row (column name -> value).

    Keys match columns case-insensitively, as the Hive JsonSerDe matches them.
    """
    lowered = {str(key).lower(): value for key, value in record.items()}
    row = {name: _serde_value(lowered.get(name), hive_type) for name, hive_type in ATHENA_COLUMNS}
    if partition_column is not None:
        event_time = row.get("eventtime")
        row[partition_column] = (
            event_time[:10].replace("-", "/") if isinstance(event_time, str) else None
        )
    return row


# The DuckDB connection.


def error_message(error: BaseException) -> str:
    """Return a DuckDB error's message on one line, without the query that follows it.

    DuckDB appends the query and a caret line after "LINE n:".
    """
    return " ".join(str(error).split("\nLINE ", 1)[0].split())


def prepare_connection(con: duckdb.DuckDBPyConnection, sql: Iterable[str] | None = None) -> None:
    """Create the macros that SQL from ``to_duckdb`` calls.

    With ``sql``, only the macros that those statements call, directly or through another
    macro, are created: each costs DuckDB about 2 ms to bind.
    """
    statements = list(_MACROS) if sql is None else _macros_called(list(sql))
    for statement in statements:
        con.execute(statement)


_MACRO_NAME = re.compile(r"CREATE OR REPLACE MACRO (\w+)\(")


def _macros_called(sql: list[str]) -> list[str]:
    """Return the statements of the macros that ``sql`` calls, in ``_MACROS`` order."""
    statements = {}
    for statement in _MACROS:
        match = _MACRO_NAME.match(statement)
        assert match is not None, statement
        statements[match[1]] = statement
    texts = list(sql)
    needed: set[str] = set()
    while texts:
        text = texts.pop().lower()
        for name, statement in statements.items():
            if name not in needed and name in text:
                needed.add(name)
                texts.append(statement)
    return [statement for name, statement in statements.items() if name in needed]


def create_cloudtrail_table(
    con: duckdb.DuckDBPyConnection,
    table: str = DEFAULT_TABLE,
    partition_column: str | None = None,
) -> None:
    """Create the Athena CloudTrail table in DuckDB, with a partition column if one is named."""
    prepare_connection(con)
    columns = [f"{name} {duckdb_type(hive_type)}" for name, hive_type in ATHENA_COLUMNS]
    if partition_column is not None:
        _check_column(partition_column)
        columns.append(f'"{partition_column}" VARCHAR')
    con.execute(f"CREATE TABLE {quote_table(table)} ({', '.join(columns)})")


def _check_column(name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ConfigError(
            f"invalid partition column {name!r}",
            hint="use a lowercase column name of letters, digits and underscores",
        )


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(f"DESCRIBE {quote_table(table)}").fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


def load_records(
    con: duckdb.DuckDBPyConnection,
    records: Iterable[Mapping[str, Any]],
    table: str = DEFAULT_TABLE,
) -> None:
    """Insert raw CloudTrail records into a table made by ``create_cloudtrail_table``."""
    columns = _table_columns(con, table)
    names = {name for name, _ in columns}
    partition = next((name for name in names if name not in dict(ATHENA_COLUMNS)), None)
    structure = json.dumps({name: column_type for name, column_type in columns})
    rows = [json.dumps(serde_row(record, partition), ensure_ascii=False) for record in records]
    if not rows:
        return
    column_list = ", ".join(f'"{name}"' for name, _ in columns)
    select_list = ", ".join(f'row."{name}"' for name, _ in columns)
    # One statement for all rows: a prepared INSERT per record costs about 5 ms each.
    con.execute(
        f"INSERT INTO {quote_table(table)} ({column_list}) "
        f"SELECT {select_list} FROM (SELECT json_transform_strict(CAST(unnest(?) AS JSON), ?) "
        "AS row)",
        [rows, structure],
    )


def to_duckdb(athena_sql: str) -> str:
    """Transpile Athena (Trino) SQL to DuckDB SQL with the same results on the same rows.

    The result calls functions that ``prepare_connection`` registers, which
    ``create_cloudtrail_table`` does.
    """
    # sqlglot takes about a tenth of a second to import, and a hunt whose rules all come
    # from its cache never transpiles, so the transpiler is imported on first use.
    from siemgen.engines.transpile import transpile

    return transpile(athena_sql)


def matching_event_ids(
    con: duckdb.DuckDBPyConnection, athena_sql: str, table: str = DEFAULT_TABLE
) -> set[str]:
    """Run Athena SQL (a full query, or a bare condition on ``table``) and return eventids."""
    text = athena_sql.strip()
    if not re.match(r"(?is)^(--[^\n]*\n\s*)*select\b", text):
        text = f"SELECT eventid FROM {quote_table(table)} WHERE {text}"
    query = to_duckdb(text)
    rows = con.execute(f"SELECT eventid FROM ({query}) AS matched").fetchall()
    return {str(row[0]) for row in rows if row[0] is not None}
