"""Run every rule over CloudTrail records in one DuckDB pass, isolating unreadable files.

DuckDB reads each file with ``read_json_objects`` and ``from_json`` with an explicit
structure that holds only the columns the rules and the output need. (With DuckDB 2.0.1,
``read_json`` with an explicit ``columns`` list of nested types took about 17 times as long
on the same files; see docs/benchmarks.md.) One query per batch of files computes, for each
file, its record counts and the list of records that match any rule.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import duckdb

from siemgen.engines.duckdb import prepare_connection
from siemgen.hunt.detections import Detection
from siemgen.hunt.logs import LogFile, LogFormat, TimeRange, uncompressed_size
from siemgen.hunt.schema import Selection

logger = logging.getLogger(__name__)

# Files are read in batches of about this many bytes on disk. A batch is one query, and when a
# file in it turns out unreadable, the rest of the batch is read again; the size bounds that
# extra work while keeping enough files per query to use every thread.
BATCH_BYTES = 32 * 1024 * 1024
MAX_BATCH_FILES = 4096
# DuckDB's default limit on one JSON value; a CloudTrail file is one JSON object.
MIN_OBJECT_BYTES = 16 * 1024 * 1024

# DuckDB errors that come from the data in a file rather than from the query.
DATA_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.IOException,
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
)

REQUIRED_FIELDS: tuple[tuple[str, str], ...] = (
    ("eventtime", "eventTime"),
    ("eventid", "eventID"),
    ("eventsource", "eventSource"),
    ("eventname", "eventName"),
)
"""Athena column and raw name of the fields every CloudTrail record carries."""

# Each bit of a BIGINT mask column tells whether one rule matched a row.
MASK_BITS = 63

HIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_time", "eventtime"),
    ("event_id", "eventid"),
    ("event_source", "eventsource"),
    ("event_name", "eventname"),
    ("region", "awsregion"),
    ("source_ip", "sourceipaddress"),
    ("error_code", "errorcode"),
    ("account", "recipientaccountid"),
    ("identity_type", "useridentity.type"),
    ("identity_arn", "useridentity.arn"),
    ("principal_id", "useridentity.principalid"),
    ("user_name", "useridentity.username"),
    ("invoked_by", "useridentity.invokedby"),
)
"""Field of ``Hit`` and the SQL expression that fills it, in the order of the fields."""


class Hit(NamedTuple):
    """One record that matched at least one rule."""

    file: str
    event_time: str | None
    event_id: str | None
    event_source: str | None
    event_name: str | None
    region: str | None
    source_ip: str | None
    error_code: str | None
    account: str | None
    identity_type: str | None
    identity_arn: str | None
    principal_id: str | None
    user_name: str | None
    invoked_by: str | None
    rules: tuple[int, ...]
    """Indexes of the matching rules in the hunt's detection list."""

    @property
    def identity(self) -> str | None:
        """Return the caller as an analyst names it: the ARN, else the best identifier."""
        if self.identity_arn:
            return self.identity_arn
        if self.invoked_by:
            return self.invoked_by
        return self.user_name or self.principal_id or self.identity_type


@dataclass
class FileScan:
    """What one query found in one file."""

    name: str
    records: int
    in_range: int
    missing: dict[str, int]
    """Raw name of each required field to the number of records that lack it."""
    empty_records: int
    """Records that have none of the required fields."""
    hits: list[Hit] = field(default_factory=list)


@dataclass
class BatchResult:
    """The files one scan read, and the files it could not read with the reason."""

    files: dict[str, FileScan] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def sql_literal(text: str) -> str:
    """Quote text as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_list(items: Sequence[str]) -> str:
    """Quote a list of strings as a DuckDB list literal."""
    return "[" + ", ".join(sql_literal(item) for item in items) + "]"


def _time_bound(moment: dt.datetime) -> str:
    naive = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"TIMESTAMP {sql_literal(naive.isoformat(sep=' '))}"


def time_condition(time_range: TimeRange) -> str:
    """Return the SQL condition that keeps records whose eventTime is in ``time_range``."""
    if time_range.is_open:
        return "TRUE"
    # NOTE: DuckDB's cast to TIMESTAMP ignores a numeric UTC offset such as +02:00; CloudTrail
    # writes eventTime in UTC with a Z suffix, which the cast reads correctly.
    moment = "TRY_CAST(eventtime AS TIMESTAMP)"
    parts = []
    if time_range.since is not None:
        parts.append(f"{moment} >= {_time_bound(time_range.since)}")
    if time_range.until is not None:
        parts.append(f"{moment} <= {_time_bound(time_range.until)}")
    return "coalesce(" + " AND ".join(parts) + ", FALSE)"


class Scanner:
    """Build and run the hunt query for one set of detections on one DuckDB connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        detections: Sequence[Detection],
        selection: Selection,
        time_range: TimeRange,
    ) -> None:
        self.con = con
        self.detections = list(detections)
        self.selection = selection
        self.time_range = time_range
        prepare_connection(con)

    def record_structure(self) -> str:
        """Return the ``from_json`` structure of one record as JSON text."""
        return self.selection.key()

    def json_source(self, files: Sequence[LogFile]) -> str:
        """Return SQL that yields one row per record of the given JSON files."""
        parts = []
        delivered = [log_file for log_file in files if log_file.format is LogFormat.RECORDS]
        lines = [log_file for log_file in files if log_file.format is LogFormat.LINES]
        record = self.record_structure()
        if delivered:
            object_bytes = max(MIN_OBJECT_BYTES, *(uncompressed_size(f) + 1 for f in delivered))
            structure = '{"Records":[' + record + "]}"
            parts.append(
                "SELECT filename AS source_file, "
                f"unnest(from_json(json, {sql_literal(structure)}).Records, max_depth := 2) "
                f"FROM read_json_objects({sql_list([f.name for f in delivered])}, "
                f"format = 'unstructured', filename = true, maximum_object_size = {object_bytes})"
            )
        if lines:
            parts.append(
                "SELECT filename AS source_file, "
                f"unnest(from_json(json, {sql_literal(record)})) "
                f"FROM read_json_objects({sql_list([f.name for f in lines])}, "
                "format = 'newline_delimited', filename = true)"
            )
        return " UNION ALL BY NAME ".join(parts)

    def _any_rule(self) -> str:
        conditions = [detection.fast_condition for detection in self.detections]
        return " OR ".join(f"({condition})" for condition in conditions) or "FALSE"

    def _rule_masks(self) -> list[str]:
        """Return one BIGINT expression per 63 rules, with bit ``i`` set when rule ``i`` matches."""
        masks = []
        for start in range(0, max(len(self.detections), 1), MASK_BITS):
            terms = [
                f"(CASE WHEN coalesce({detection.fast_condition}, FALSE) "
                f"THEN {1 << bit} ELSE 0 END)"
                for bit, detection in enumerate(self.detections[start : start + MASK_BITS])
            ]
            masks.append("CAST(" + (" + ".join(terms) or "0") + " AS BIGINT)")
        return masks

    def hunt_query(self, source: str) -> str:
        """Return the query that summarises each file of ``source`` and lists its hits."""
        fields = ", ".join(f"{name} := {expression}" for name, expression in HIT_COLUMNS)
        in_range = time_condition(self.time_range)
        # The hit struct is built only for rows that reach the THEN branches, and the rule
        # conditions run only on rows in the time range.
        masks = ", ".join(
            f"mask_{index} := {mask}" for index, mask in enumerate(self._rule_masks())
        )
        hit = (
            f"CASE WHEN {in_range} THEN CASE WHEN {self._any_rule()} THEN struct_pack("
            f"{fields}, {masks}) END END"
        )
        missing = ", ".join(
            f"count(*) FILTER (WHERE {column} IS NULL) AS missing_{column}"
            for column, _ in REQUIRED_FIELDS
        )
        empty = " AND ".join(f"{column} IS NULL" for column, _ in REQUIRED_FIELDS)
        return (
            "SELECT source_file, count(*) AS records, "
            f"count(*) FILTER (WHERE {in_range}) AS in_range, {missing}, "
            f"count(*) FILTER (WHERE {empty}) AS empty_records, "
            "list(hit) FILTER (WHERE hit IS NOT NULL) AS hits "
            f"FROM (SELECT *, {hit} AS hit FROM ({source}) AS records) AS scanned "
            "GROUP BY source_file"
        )

    def run(self, source: str) -> dict[str, FileScan]:
        """Run the hunt query over ``source`` and return each file's counts and hits.

        The per-file result is kept in a temporary table so the hits come back as flat rows,
        which DuckDB hands to Python much faster than lists of structs. DuckDB errors
        propagate.
        """
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE hunt_batch AS {self.hunt_query(source)}")
        try:
            rows = self.con.execute(
                "SELECT source_file, records, in_range, "
                + ", ".join(f"missing_{column}" for column, _ in REQUIRED_FIELDS)
                + ", empty_records FROM hunt_batch"
            ).fetchall()
            hit_rows = self.con.execute(
                "SELECT source_file, unnest(hits, max_depth := 2) FROM hunt_batch"
            ).fetchall()
        finally:
            self.con.execute("DROP TABLE IF EXISTS hunt_batch")
        results: dict[str, FileScan] = {}
        for row in rows:
            name = str(row[0])
            missing = {
                raw: int(count)
                for (_, raw), count in zip(REQUIRED_FIELDS, row[3:7], strict=True)
                if count
            }
            results[name] = FileScan(
                name=name,
                records=int(row[1]),
                in_range=int(row[2]),
                missing=missing,
                empty_records=int(row[7]),
            )
        for hit_row in hit_rows:
            results[str(hit_row[0])].hits.append(_hit(hit_row))
        return results

    def match_query(self, source: str) -> str:
        """Return the query that lists the records of ``source`` that match any rule."""
        fields = ", ".join(f"{expression} AS {name}" for name, expression in HIT_COLUMNS)
        masks = ", ".join(
            f"{mask} AS mask_{index}" for index, mask in enumerate(self._rule_masks())
        )
        in_range = time_condition(self.time_range)
        return (
            f"SELECT source_file, {fields}, {masks} "
            f"FROM ({source}) AS records WHERE {in_range} AND ({self._any_rule()})"
        )

    def matches(self, source: str) -> list[Hit]:
        """Return the records of ``source`` that match any rule, without per-file counts."""
        return [_hit(row) for row in self.con.execute(self.match_query(source)).fetchall()]

    def range_counts(self, source: str) -> dict[str, int]:
        """Return how many records of each file of ``source`` are inside the time range."""
        query = (
            f"SELECT source_file, count(*) FILTER (WHERE {time_condition(self.time_range)}) "
            f"FROM ({source}) AS records GROUP BY source_file"
        )
        return {str(name): int(count) for name, count in self.con.execute(query).fetchall()}

    def scan_files(
        self, files: Sequence[LogFile], progress: Callable[[int], None] | None = None
    ) -> BatchResult:
        """Scan JSON log files batch by batch, reporting each unreadable file with its reason."""
        result = BatchResult()
        for batch in batches(files):
            isolate(batch, result, lambda part: self.run(self.json_source(part)))
            if progress is not None:
                progress(sum(log_file.size for log_file in batch))
        return result


def isolate(
    batch: Sequence[LogFile],
    result: BatchResult,
    run: Callable[[Sequence[LogFile]], dict[str, FileScan]],
) -> None:
    """Run ``run`` on ``batch``; on a data error, find the unreadable files and skip them.

    DuckDB names the file in most read errors. That file is tried alone and the rest of the
    batch again; otherwise the batch is split in halves until each failing file stands alone.
    """
    pending: list[Sequence[LogFile]] = [batch]
    while pending:
        part = pending.pop()
        try:
            result.files.update(run(part))
            continue
        except DATA_ERRORS as error:
            message = _error_text(error)
            if len(part) == 1:
                logger.debug("file %s failed: %s", part[0].name, message)
                result.failed[part[0].name] = file_reason(message, part[0].name)
                continue
            named = _named_file(part, message)
        if named is not None:
            pending.append([log_file for log_file in part if log_file is not named])
            pending.append([named])
        else:
            middle = len(part) // 2
            pending.append(part[middle:])
            pending.append(part[:middle])


def _error_text(error: duckdb.Error) -> str:
    """Return DuckDB's message on one line, without the error class prefix."""
    text = " ".join(str(error).split())
    for prefix in ("IO Error: ", "Invalid Input Error: ", "Conversion Error: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def file_reason(message: str, name: str) -> str:
    """Return a DuckDB read error as the reason a file was skipped, without its path."""
    detail = message.replace(f' in file "{name}"', "").replace(f": {name}", "")
    detail = detail.replace(f'"{name}"', "the file").strip()
    if detail.startswith("Unexpected end of GZIP stream"):
        return "gzip data is truncated (DuckDB: Unexpected end of GZIP stream)"
    if detail.startswith("Malformed JSON"):
        return f"not valid JSON (DuckDB: {detail})"
    return f"cannot read the file (DuckDB: {detail})"


def _named_file(files: Sequence[LogFile], message: str) -> LogFile | None:
    named = [log_file for log_file in files if log_file.name in message]
    if not named:
        return None
    return max(named, key=lambda log_file: len(log_file.name))


_MASKED = 1 + len(HIT_COLUMNS)


def _hit(row: tuple[Any, ...]) -> Hit:
    """Build a Hit from a row of source file, the ``HIT_COLUMNS`` and the rule masks."""
    rules: list[int] = []
    for word, mask in enumerate(row[_MASKED:]):
        remaining = int(mask)
        while remaining:
            lowest = remaining & -remaining
            rules.append(word * MASK_BITS + lowest.bit_length() - 1)
            remaining ^= lowest
    return Hit._make((*row[:_MASKED], tuple(rules)))


def batches(files: Sequence[LogFile], batch_bytes: int = BATCH_BYTES) -> list[list[LogFile]]:
    """Split files into consecutive batches of about ``batch_bytes`` on disk each."""
    groups: list[list[LogFile]] = []
    current: list[LogFile] = []
    size = 0
    for log_file in files:
        if current and (size + log_file.size > batch_bytes or len(current) >= MAX_BATCH_FILES):
            groups.append(current)
            current, size = [], 0
        current.append(log_file)
        size += log_file.size
    if current:
        groups.append(current)
    return groups
