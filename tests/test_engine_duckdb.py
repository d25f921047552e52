"""Tests of the DuckDB engine: table layout, JsonSerDe loading and Trino function semantics."""

from __future__ import annotations

import duckdb
import pytest

from siemgen.engines.duckdb import (
    create_cloudtrail_table,
    duckdb_type,
    load_records,
    matching_event_ids,
    network_hex_bounds,
    prepare_connection,
    serde_row,
    to_duckdb,
)
from siemgen.errors import ConversionError
from siemgen.fields import ATHENA_COLUMNS


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    create_cloudtrail_table(connection)
    return connection


def scalar(con: duckdb.DuckDBPyConnection, athena_sql: str) -> object:
    row = con.execute(to_duckdb(athena_sql)).fetchone()
    assert row is not None
    return row[0]


def test_duckdb_type_nested() -> None:
    assert duckdb_type("STRING") == "VARCHAR"
    assert duckdb_type("ARRAY<STRUCT<arn: STRING, type: STRING>>") == (
        "STRUCT(arn VARCHAR, type VARCHAR)[]"
    )
    assert duckdb_type("MAP<STRING, STRING>") == "MAP(VARCHAR, VARCHAR)"


def test_duckdb_type_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="'UNION<x>'"):
        duckdb_type("UNION<x>")


def test_table_has_athena_columns(con: duckdb.DuckDBPyConnection) -> None:
    names = [row[0] for row in con.execute("DESCRIBE cloudtrail_logs").fetchall()]
    assert names == [name for name, _ in ATHENA_COLUMNS]


def test_serde_row_json_text_booleans_and_missing() -> None:
    row = serde_row(
        {
            "eventID": "1",
            "readOnly": True,
            "requestParameters": {"a": [1, "x"], "b": None},
            "userIdentity": {
                "Type": "Root",
                "sessionContext": {"attributes": {"mfaAuthenticated": "false"}},
            },
            "resources": [{"ARN": "arn:1", "accountId": "9"}],
        }
    )
    assert row["readonly"] == "true"
    assert row["requestparameters"] == '{"a":[1,"x"],"b":null}'
    assert row["errorcode"] is None
    assert row["useridentity"]["type"] == "Root"
    assert row["useridentity"]["arn"] is None
    assert row["useridentity"]["sessioncontext"]["attributes"]["mfaauthenticated"] == "false"
    assert row["resources"] == [{"arn": "arn:1", "accountid": "9", "type": None}]


def test_load_records_round_trip(con: duckdb.DuckDBPyConnection) -> None:
    load_records(
        con,
        [
            {
                "eventID": "a",
                "readOnly": False,
                "userIdentity": {"arn": "arn:x"},
                "resources": [{"ARN": "r"}],
            },
            {"eventID": "b"},
        ],
    )
    rows = con.execute(
        "SELECT eventid, readonly, useridentity.arn, resources[1].arn "
        "FROM cloudtrail_logs ORDER BY eventid"
    ).fetchall()
    assert rows == [("a", "false", "arn:x", "r"), ("b", None, None, None)]


def test_load_no_records(con: duckdb.DuckDBPyConnection) -> None:
    load_records(con, [])
    assert con.execute("SELECT count(*) FROM cloudtrail_logs").fetchone() == (0,)


def test_json_extract_scalar_returns_null_for_objects(con: duckdb.DuckDBPyConnection) -> None:
    doc = """'{"a": {"b": 1}, "c": [1], "d": "x", "e": null, "f": true}'"""
    assert scalar(con, f"SELECT json_extract_scalar({doc}, '$.a')") is None
    assert scalar(con, f"SELECT json_extract_scalar({doc}, '$.c')") is None
    assert scalar(con, f"SELECT json_extract_scalar({doc}, '$.d')") == "x"
    assert scalar(con, f"SELECT json_extract_scalar({doc}, '$.e')") is None
    assert scalar(con, f"SELECT json_extract_scalar({doc}, '$.f')") == "true"
    assert scalar(con, f"SELECT json_extract_scalar({doc}, '$.a.b')") == "1"


# Text that Trino's JSON functions fail to parse, so that they return NULL. CloudTrail writes
# some additionalEventData this way.
NOT_JSON = ["MFAUsed=No", "", "arn:aws:iam::111122223333:user/bob", "{'a': 1}", '{"a": ']


@pytest.mark.parametrize("text", NOT_JSON)
@pytest.mark.parametrize(
    "expression",
    [
        "json_extract_scalar(doc, '$.a')",
        "json_extract(doc, '$.a')",
        "json_format(json_extract(doc, '$.a')) <> 'null'",
        "any_match(try_cast(json_extract(doc, '$.a') AS ARRAY(JSON)), "
        "e1 -> json_extract_scalar(e1, '$.b') = 'x')",
    ],
)
def test_json_functions_return_null_for_text(
    con: duckdb.DuckDBPyConnection, text: str, expression: str
) -> None:
    literal = "'" + text.replace("'", "''") + "'"
    assert scalar(con, f"SELECT {expression} FROM (SELECT {literal} AS doc)") is None


@pytest.mark.parametrize(
    ("column", "key"),
    [
        ("additionalEventData", "MFAUsed"),
        ("requestParameters", "bucketName"),
        ("responseElements", "ConsoleLogin"),
    ],
)
def test_json_keys_of_text_columns_are_null(
    con: duckdb.DuckDBPyConnection, column: str, key: str
) -> None:
    load_records(
        con,
        [
            {"eventID": "object", column: {key: "x", "items": [{"b": "y"}]}},
            {"eventID": "text", column: f"{key}=x"},
            {"eventID": "absent"},
        ],
    )
    name = column.lower()
    assert matching_event_ids(con, f"json_extract_scalar({name}, '$.{key}') = 'x'") == {"object"}
    assert matching_event_ids(con, f"json_extract_scalar({name}, '$.{key}') IS NULL") == {
        "text",
        "absent",
    }
    assert matching_event_ids(con, f"json_format(json_extract({name}, '$.items')) <> 'null'") == {
        "object"
    }
    search = (
        f"any_match(try_cast(json_extract({name}, '$.items') AS ARRAY(JSON)), "
        "e1 -> json_extract_scalar(e1, '$.b') = 'y')"
    )
    assert matching_event_ids(con, search) == {"object"}


@pytest.mark.parametrize(
    ("network", "address", "expected"),
    [
        ("10.0.0.0/8", "10.255.255.255", True),
        ("10.0.0.0/8", "11.0.0.0", False),
        ("10.0.0.0/8", "ec2.amazonaws.com", None),
        ("10.0.0.0/8", "10.0.0.256", None),
        ("192.0.2.0/24", "::ffff:c000:201", True),
        ("2001:db8::/32", "2001:DB8:0:0:0:0:0:1", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("::/0", "::", True),
        ("2001:db8::/32", "2001:db8::1::2", None),
    ],
)
def test_cidr_contains(
    con: duckdb.DuckDBPyConnection, network: str, address: str, expected: bool | None
) -> None:
    sql = f"SELECT contains('{network}', try_cast('{address}' AS IPADDRESS))"
    assert scalar(con, sql) is expected


def test_network_hex_bounds_ipv4_mapped() -> None:
    assert network_hex_bounds("10.0.0.0/8") == (
        "00000000000000000000ffff0a000000",
        "00000000000000000000ffff0affffff",
    )


def test_any_match_over_struct_array(con: duckdb.DuckDBPyConnection) -> None:
    load_records(
        con, [{"eventID": "a", "resources": [{"ARN": "x"}, {"ARN": "y"}]}, {"eventID": "b"}]
    )
    assert matching_event_ids(con, "any_match(resources, r -> r.arn = 'y')") == {"a"}
    assert matching_event_ids(
        con, "NOT coalesce(any_match(resources, r -> r.arn = 'y'), false)"
    ) == {"b"}


def test_like_escape_and_lower(con: duckdb.DuckDBPyConnection) -> None:
    assert scalar(con, "SELECT lower('A_%B') LIKE 'a\\_\\%b' ESCAPE '\\'") is True
    assert scalar(con, "SELECT 'AxyB' LIKE 'A\\_B' ESCAPE '\\'") is False


def test_regexp_like_is_a_search(con: duckdb.DuckDBPyConnection) -> None:
    assert scalar(con, "SELECT regexp_like('xxabcxx', 'abc')") is True
    assert scalar(con, "SELECT regexp_like('ABC', '(?i)^abc$')") is True


def test_matching_event_ids_full_query(con: duckdb.DuckDBPyConnection) -> None:
    load_records(con, [{"eventID": "a", "eventName": "X"}, {"eventID": "b", "eventName": "Y"}])
    sql = "-- title\nSELECT eventname, eventid FROM cloudtrail_logs WHERE (eventname = 'X')"
    assert matching_event_ids(con, sql) == {"a"}


def test_to_duckdb_rejects_bad_sql() -> None:
    with pytest.raises(ConversionError, match="does not parse"):
        to_duckdb("SELECT FROM WHERE (")


def test_connection_gets_only_called_macros() -> None:
    def macros(sql: list[str]) -> set[str]:
        con = duckdb.connect()
        prepare_connection(con, sql)
        rows = con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'siemgen_%'"
        ).fetchall()
        return {str(row[0]) for row in rows}

    assert macros(["eventname = 'x'"]) == set()
    assert macros(["SIEMGEN_JSON_SCALAR(additionaleventdata, '$.MFAUsed') = 'No'"]) == {
        "siemgen_json_scalar"
    }
    assert macros(["siemgen_ip_hex(sourceipaddress) BETWEEN 'a' AND 'b'"]) == {
        "siemgen_ip_hex",
        "siemgen_ipv4_hex",
        "siemgen_ipv6_hex",
        "siemgen_ipv6_groups",
    }
