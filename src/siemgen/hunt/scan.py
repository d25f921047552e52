"""Run every rule over CloudTrail records in one DuckDB pass per batch of files.

DuckDB reads each file with ``read_json_objects`` and ``from_json`` with an explicit
structure that contains only the columns the rules and the output need. With DuckDB 2.0.1,
``read_json`` with an explicit ``columns`` list of nested types was far slower on the same
files (docs/benchmarks.md has the figures).

A delivered file is one JSON object, so its query returns the first record of each object with
the object's record count, and otherwise only the records that match a rule or lack a required
field. JSON lines files and Parquet copies have no object per file, so their query groups the
records by file. Each query's result goes to a temporary table, from which Python fetches the
per-file counts and DuckDB copies the matches to the hunt's ``MatchTable``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from siemgen.hunt.detections import Detection
from siemgen.hunt.fallback import repair_log
from siemgen.hunt.isolation import batches, isolate
from siemgen.hunt.logs import LogFile, LogFormat, TimeRange
from siemgen.hunt.matches import MatchTable
from siemgen.hunt.results import HIT_COLUMNS, MASK_BITS, REQUIRED_FIELDS, BatchResult, FileScan
from siemgen.hunt.schema import Selection
from siemgen.hunt.screen import screen_condition
from siemgen.hunt.sql import (
    delivered_objects,
    delivered_records,
    line_records,
    object_records,
    object_structure,
    sql_literal,
    text_records,
    time_condition,
)

_FIELDS = ", ".join(f"{expression} AS {name}" for name, expression in HIT_COLUMNS)
# NOTE: a record counts as lacking a field only when the field is absent or null, so an
# eventTime that names no time ("yesterday") is not warned about; such a record sorts first.
_MISSING = ", ".join(f"{column} IS NULL AS missing_{column}" for column, _ in REQUIRED_FIELDS)
_INCOMPLETE = " OR ".join(f"{column} IS NULL" for column, _ in REQUIRED_FIELDS)


class Scanner:
    """Build and run the hunt queries for one set of detections on one DuckDB connection.

    The connection must have siemgen's macros, which ``siemgen.hunt.run.connect`` creates.
    The records that match go to ``matches``; the scan methods return the per-file counts.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        detections: Sequence[Detection],
        selection: Selection,
        time_range: TimeRange,
        matches: MatchTable,
    ) -> None:
        self.con = con
        self.detections = list(detections)
        self.selection = selection
        self.time_range = time_range
        self.matches = matches

    def record_structure(self) -> str:
        """Return the ``from_json`` structure of one record as JSON text."""
        return self.selection.key()

    def json_source(self, files: Sequence[LogFile]) -> str:
        """Return SQL that yields one row per record of the given JSON files."""
        delivered = [log_file for log_file in files if log_file.format is LogFormat.RECORDS]
        lines = [log_file for log_file in files if log_file.format is LogFormat.LINES]
        parts = []
        if delivered:
            parts.append(delivered_records(delivered, self.record_structure()))
        if lines:
            parts.append(line_records(lines, self.record_structure()))
        return " UNION ALL BY NAME ".join(parts)

    def _any_rule(self) -> str:
        """Return the condition that a record matches some rule, its screen first.

        DuckDB evaluates the rules only on the records that pass the screen.
        """
        conditions = [detection.fast_condition for detection in self.detections]
        rules = " OR ".join(f"({condition})" for condition in conditions) or "FALSE"
        screen = screen_condition((d.screen, d.fast_condition) for d in self.detections)
        return rules if screen is None else f"({screen}) AND ({rules})"

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

    # Delivered files: the first record of each object, and the records to report.

    def delivered_query(self, files: Sequence[LogFile]) -> str:
        """Return the query over delivered files: the first record of each object, then hits.

        Every row is a record. The first record of each JSON object (``position`` 0) comes
        with the object's record count and is always returned, so every file with records
        appears. The other rows are the records that match a rule inside the time range or
        lack a required field. A record that matches no rule in range has masks of zero.
        """
        in_range = time_condition(self.time_range)
        if self.time_range.is_open:
            count_in_range = "len(parsed.Records)"
        else:
            inside = time_condition(self.time_range, column="r.eventtime")
            count_in_range = f"len(list_filter(parsed.Records, lambda r: {inside}))"
        masks = ", ".join(
            f"CASE WHEN {in_range} THEN {mask} ELSE 0 END AS mask_{index}"
            for index, mask in enumerate(self._rule_masks())
        )
        # The two lists unnest side by side, giving each record its position in the object.
        records = (
            "SELECT source_file, len(parsed.Records) AS file_records, "
            f"{count_in_range} AS file_in_range, unnest(parsed.Records) AS record, "
            "unnest(range(len(parsed.Records))) AS position "
            f"FROM ({delivered_objects(files, self.record_structure())}) AS objects"
        )
        flat = (
            "SELECT source_file, file_records, file_in_range, position, unnest(record) "
            f"FROM ({records}) AS records"
        )
        return (
            f"SELECT source_file, position, file_records, file_in_range, {_MISSING}, "
            f"{_FIELDS}, {masks} FROM ({flat}) AS flat "
            f"WHERE position = 0 OR {_INCOMPLETE} OR ({in_range} AND ({self._any_rule()}))"
        )

    def run_delivered(self, files: Sequence[LogFile]) -> dict[str, FileScan]:
        """Scan delivered files; a file with no records is left out of the result."""
        lacking = ", ".join(
            f"count(*) FILTER (WHERE missing_{column})" for column, _ in REQUIRED_FIELDS
        )
        empty = " AND ".join(f"missing_{column}" for column, _ in REQUIRED_FIELDS)
        with self._batch_table(self.delivered_query(files)) as table:
            rows = self.con.execute(
                "SELECT source_file, sum(file_records) FILTER (WHERE position = 0), "
                f"sum(file_in_range) FILTER (WHERE position = 0), {lacking}, "
                f"count(*) FILTER (WHERE {empty}) FROM {table} GROUP BY source_file"
            ).fetchall()
            columns = ", ".join([*(name for name, _ in HIT_COLUMNS), *self.matches.masks])
            matched = " OR ".join(f"{mask} <> 0" for mask in self.matches.masks)
            self.matches.insert(
                f"SELECT source_file AS file, {columns} FROM {table} WHERE {matched}"
            )
        return {str(row[0]): _file_scan(row) for row in rows}

    # Records without an object per file: grouped by file.

    def grouped_query(self, source: str) -> str:
        """Return the query that summarises each file of ``source`` and lists its hits."""
        fields = ", ".join(f"{name} := {expression}" for name, expression in HIT_COLUMNS)
        in_range = time_condition(self.time_range)
        masks = ", ".join(
            f"mask_{index} := {mask}" for index, mask in enumerate(self._rule_masks())
        )
        # The hit struct is built only for rows that reach the THEN branches, and the rule
        # conditions run only on rows in the time range.
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

    def run_grouped(self, source: str, parameters: Sequence[object] = ()) -> dict[str, FileScan]:
        """Run the grouped query over ``source`` and return each file's counts.

        ``parameters`` are the values of the ``?`` placeholders in ``source``.
        """
        lacking = ", ".join(f"missing_{column}" for column, _ in REQUIRED_FIELDS)
        with self._batch_table(self.grouped_query(source), parameters) as table:
            rows = self.con.execute(
                f"SELECT source_file, records, in_range, {lacking}, empty_records FROM {table}"
            ).fetchall()
            self.matches.insert(
                f"SELECT source_file AS file, unnest(hits, max_depth := 2) FROM {table}"
            )
        return {str(row[0]): _file_scan(row) for row in rows}

    @contextmanager
    def _batch_table(self, query: str, parameters: Sequence[object] = ()) -> Iterator[str]:
        """Keep the result of ``query`` in a temporary table while the block reads it.

        Python reads the counts and DuckDB copies the matches from the table, so the JSON
        is scanned once. DuckDB data errors from the scan propagate.
        """
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE hunt_batch AS {query}", list(parameters))
        try:
            yield "hunt_batch"
        finally:
            self.con.execute("DROP TABLE IF EXISTS hunt_batch")

    # Cached records: matches only, since the manifest has the counts.

    def match_query(self, source: str) -> str:
        """Return the query that lists the records of ``source`` that match any rule."""
        masks = ", ".join(
            f"{mask} AS mask_{index}" for index, mask in enumerate(self._rule_masks())
        )
        in_range = time_condition(self.time_range)
        return (
            f"SELECT source_file, {_FIELDS}, {masks} "
            f"FROM ({source}) AS records WHERE {in_range} AND ({self._any_rule()})"
        )

    def insert_matches(self, source: str, names: Mapping[str, str]) -> None:
        """Add the records of ``source`` that match any rule to the match table.

        ``names`` maps each ``source_file`` of ``source`` to the file name the hunt reports,
        which differs when the hunt names a cached file by another path.
        """
        if any(cached != current for cached, current in names.items()):
            pairs = ", ".join(
                f"({sql_literal(cached)}, {sql_literal(current)})"
                for cached, current in names.items()
            )
            source = (
                "SELECT records.* REPLACE (names.current AS source_file) "
                f"FROM ({source}) AS records JOIN (VALUES {pairs}) AS names(cached, current) "
                "ON records.source_file = names.cached"
            )
        self.matches.insert(
            f"SELECT source_file AS file, matched.* EXCLUDE (source_file) "
            f"FROM ({self.match_query(source)}) AS matched"
        )

    def range_counts(self, source: str) -> dict[str, int]:
        """Return how many records of each file of ``source`` are inside the time range."""
        query = (
            f"SELECT source_file, count(*) FILTER (WHERE {time_condition(self.time_range)}) "
            f"FROM ({source}) AS records GROUP BY source_file"
        )
        return {str(name): int(count) for name, count in self.con.execute(query).fetchall()}

    # Log files from disk.

    def scan_part(self, files: Sequence[LogFile]) -> dict[str, FileScan]:
        """Scan some JSON log files of any format; DuckDB errors propagate.

        The scan adds its matches only if it succeeds for every file, because a failed part
        is scanned again in smaller parts.
        """
        delivered = [log_file for log_file in files if log_file.format is LogFormat.RECORDS]
        lines = [log_file for log_file in files if log_file.format is LogFormat.LINES]
        with self._transaction():
            results = self.run_delivered(delivered) if delivered else {}
            if lines:
                results.update(self.run_grouped(line_records(lines, self.record_structure())))
        return results

    def rescue(self, log_file: LogFile) -> FileScan:
        """Repair a file that DuckDB rejected, then scan the repaired text.

        Raises UnreadableLog with the reason when the file cannot be repaired. DuckDB errors
        from the scan propagate and add no matches.
        """
        repaired = repair_log(log_file)
        structure = self.record_structure()
        parameters: list[object]
        if repaired.document is not None:
            objects = (
                f"SELECT ? AS source_file, from_json(?, {object_structure(structure)}) AS parsed"
            )
            source = object_records(objects)
            parameters = [log_file.name, repaired.document]
        else:
            texts = "(SELECT unnest(?::VARCHAR[]) AS json) AS texts"
            source = text_records("?", texts, structure)
            parameters = [log_file.name, repaired.lines]
        with self._transaction():
            scans = self.run_grouped(source, parameters)
        scan = scans.get(log_file.name, FileScan(log_file.name))
        scan.lines = repaired.line_count
        scan.bad_lines = repaired.bad_lines
        scan.replacements = repaired.replacements
        return scan

    def scan_parquet(self, path: str) -> dict[str, FileScan]:
        """Scan a Parquet copy of log files; DuckDB errors propagate and add no matches."""
        with self._transaction():
            return self.run_grouped(f"SELECT * FROM read_parquet({sql_literal(path)})")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Run the block as one DuckDB transaction, undone if the block raises."""
        self.con.begin()
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()

    def scan_files(
        self, files: Sequence[LogFile], progress: Callable[[int], None] | None = None
    ) -> BatchResult:
        """Scan JSON log files batch by batch, reporting each unreadable file with its reason."""
        result = BatchResult()
        for batch in batches(files):
            isolate(batch, result, self.scan_part, self.rescue)
            if progress is not None:
                progress(sum(log_file.size for log_file in batch))
        return result


def _file_scan(row: Sequence[Any]) -> FileScan:
    """Build a FileScan from a row of counts.

    The row contains the file name, its records, its records in the time range, the records
    lacking each ``REQUIRED_FIELDS`` column and the records lacking all of them.
    """
    lacking = row[3 : 3 + len(REQUIRED_FIELDS)]
    missing = {
        raw: int(count) for (_, raw), count in zip(REQUIRED_FIELDS, lacking, strict=True) if count
    }
    return FileScan(
        name=str(row[0]),
        records=int(row[1] or 0),
        in_range=int(row[2] or 0),
        missing=missing,
        empty_records=int(row[-1]),
    )
