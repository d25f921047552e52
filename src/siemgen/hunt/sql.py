"""SQL text for the hunt: literals, the time condition and the queries that read log files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from siemgen.hunt.logs import LogFile, TimeRange, uncompressed_size

# DuckDB's default limit on one JSON value; a delivered CloudTrail file is one JSON object.
MIN_OBJECT_BYTES = 16 * 1024 * 1024


def sql_literal(text: str) -> str:
    """Quote text as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_list(items: Sequence[str]) -> str:
    """Quote a list of strings as a DuckDB list literal."""
    return "[" + ", ".join(sql_literal(item) for item in items) + "]"


def _time_bound(moment: dt.datetime) -> str:
    naive = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"TIMESTAMP {sql_literal(naive.isoformat(sep=' '))}"


def event_moment(column: str = "eventtime") -> str:
    """Return SQL for the moment an eventTime text names, or NULL when it names none."""
    # NOTE: DuckDB's cast to TIMESTAMP ignores a numeric UTC offset such as +02:00; CloudTrail
    # writes eventTime in UTC with a Z suffix, which the cast reads correctly.
    # DuckDB also casts the words epoch and infinity; a CloudTrail time starts with its year.
    return (
        f"CASE WHEN substr({column}, 1, 1) BETWEEN '0' AND '9' "
        f"THEN TRY_CAST({column} AS TIMESTAMP) END"
    )


def time_condition(time_range: TimeRange, column: str = "eventtime") -> str:
    """Return the SQL condition that keeps records whose ``column`` is in ``time_range``."""
    if time_range.is_open:
        return "TRUE"
    moment = event_moment(column)
    parts = []
    if time_range.since is not None:
        parts.append(f"{moment} >= {_time_bound(time_range.since)}")
    if time_range.until is not None:
        parts.append(f"{moment} <= {_time_bound(time_range.until)}")
    return "coalesce(" + " AND ".join(parts) + ", FALSE)"


def object_structure(record_structure: str) -> str:
    """Return the ``from_json`` structure of a delivered file's object as SQL text."""
    return sql_literal('{"Records":[' + record_structure + "]}")


def delivered_objects(files: Sequence[LogFile], record_structure: str) -> str:
    """Return SQL with one row per JSON object of delivered log files, parsed as ``parsed``.

    ``parsed.Records`` is the list of records read with ``record_structure``, or NULL when
    the object has no ``Records`` array.
    """
    object_bytes = max(MIN_OBJECT_BYTES, *(uncompressed_size(f) + 1 for f in files))
    return (
        f"SELECT filename AS source_file, from_json(json, {object_structure(record_structure)}) "
        f"AS parsed FROM read_json_objects({sql_list([f.name for f in files])}, "
        f"format = 'unstructured', filename = true, maximum_object_size = {object_bytes})"
    )


def object_records(objects: str) -> str:
    """Return SQL with one row per record of ``objects``.

    ``objects`` has the ``source_file`` and ``parsed`` columns that ``delivered_objects`` gives.
    """
    return f"SELECT source_file, unnest(parsed.Records, max_depth := 2) FROM ({objects}) AS objects"


def delivered_records(files: Sequence[LogFile], record_structure: str) -> str:
    """Return SQL with one row per record of delivered log files."""
    return object_records(delivered_objects(files, record_structure))


def text_records(source_file: str, texts: str, record_structure: str) -> str:
    """Return SQL with one row per record of ``texts``, a source of one record's JSON per row.

    ``texts`` has the JSON in a ``json`` column, and ``source_file`` is the SQL expression of
    the file name.
    """
    # NOTE: a line that holds a JSON array, not an object, reads as one record with no fields,
    # so its records are not scanned; the warning about missing fields is all that shows it.
    return (
        f"SELECT {source_file} AS source_file, "
        f"unnest(from_json(json, {sql_literal(record_structure)})) FROM {texts}"
    )


def line_records(files: Sequence[LogFile], record_structure: str) -> str:
    """Return SQL with one row per line of JSON lines log files."""
    lines = (
        f"read_json_objects({sql_list([f.name for f in files])}, "
        "format = 'newline_delimited', filename = true)"
    )
    return text_records("filename", lines, record_structure)
