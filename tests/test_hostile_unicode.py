"""Non-ASCII values in case-insensitive Athena comparisons, run on DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sigma.rule import SigmaRule

from siemgen.convert import Converter
from siemgen.engines.duckdb import create_cloudtrail_table, load_records, matching_event_ids
from siemgen.rules import RuleFile


@pytest.fixture(scope="module")
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    database = duckdb.connect()
    create_cloudtrail_table(database)
    yield database
    database.close()


def athena_query(key: str, value: str) -> str:
    data: dict[str, Any] = {
        "title": "Unicode",
        "id": "5f4d5e1e-8c6b-4b8e-9c8e-1a2b3c4d5e6f",
        "status": "test",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": {"selection": {key: value}, "condition": "selection"},
        "level": "low",
    }
    rule = RuleFile(Path("unicode.yml"), "unicode", "", data, SigmaRule.from_dict(data))
    return Converter().convert(rule, "athena", "sql")


def matches(connection: duckdb.DuckDBPyConnection, key: str, value: str, agent: str) -> bool:
    connection.execute("DELETE FROM cloudtrail_logs")
    load_records(connection, [{"eventID": "e", "userAgent": agent}])
    return matching_event_ids(connection, athena_query(key, value)) == {"e"}


# Letters whose upper case is one character, so any case folding maps the two to each other.
@pytest.mark.parametrize("letter", ["é", "Σ", "Å", "ǅ", "中", "😀"])
@pytest.mark.parametrize("key", ["userAgent", "userAgent|contains", "userAgent|startswith"])
def test_value_matches_itself_and_other_case(
    connection: duckdb.DuckDBPyConnection, key: str, letter: str
) -> None:
    value = f"agent {letter}"
    assert matches(connection, key, value, value)
    assert matches(connection, key, value, value.upper())


@pytest.mark.parametrize("key", ["userAgent", "userAgent|contains"])
def test_sharp_s_matches_itself(connection: duckdb.DuckDBPyConnection, key: str) -> None:
    assert matches(connection, key, "agent ß", "agent ß")
    assert matches(connection, key, "agent ß", "AGENT ẞ")


# Python's str.lower() maps these two otherwise than the engines' lower(): İ to i plus a
# combining dot, and a final Σ to ς.
@pytest.mark.parametrize("key", ["userAgent", "userAgent|contains"])
def test_dotted_capital_i_matches_itself(connection: duckdb.DuckDBPyConnection, key: str) -> None:
    assert matches(connection, key, "agent İ", "agent İ")
    assert matches(connection, key, "agent İ", "AGENT İ")


@pytest.mark.parametrize("key", ["userAgent", "userAgent|endswith"])
def test_final_sigma_matches_itself(connection: duckdb.DuckDBPyConnection, key: str) -> None:
    assert matches(connection, key, "ΟΔΟΣ", "ΟΔΟΣ")
    assert matches(connection, key, "ΟΔΟΣ", "οδοσ")
