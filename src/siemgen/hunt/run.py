"""Hunt: run Sigma rules over CloudTrail log files on disk and collect the matching records."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb

from siemgen.engines.duckdb import error_message, prepare_connection
from siemgen.errors import ConfigError, OutputError, SiemgenError
from siemgen.hunt.cache import MANIFEST, CacheEntry, ParquetCache, parquet_source, prepare_folder
from siemgen.hunt.detections import DETECTIONS_FILE, Detection, DetectionCache, compile_rules
from siemgen.hunt.isolation import DATA_ERRORS, batches, file_reason, isolate
from siemgen.hunt.logs import (
    GZIP_MAGIC,
    LOG_SUFFIXES,
    Discovery,
    LogFile,
    LogFormat,
    Skipped,
    TimeRange,
    check_outside,
    classify,
    find_log_files,
    missing_path_error,
    precheck,
    records_problem,
)
from siemgen.hunt.matches import MatchTable
from siemgen.hunt.results import BatchResult, FileScan, Hit
from siemgen.hunt.scan import Scanner
from siemgen.hunt.schema import OUTPUT_PATHS, Selection, select_columns
from siemgen.hunt.sql import sql_list
from siemgen.output import reject_input
from siemgen.rules import RULE_INPUT_SUFFIXES, find_rule_files, load_collection, rule_inputs
from siemgen.terminal import counted

logger = logging.getLogger(__name__)


class Progress(Protocol):
    """A receiver of scan progress, in bytes of log files."""

    def start(self, total_bytes: int) -> None:
        """Set the number of bytes the scan will read."""

    def advance(self, scanned_bytes: int) -> None:
        """Count bytes just scanned."""


@dataclass
class RuleSet:
    """The rules of a hunt: those that run and those that cannot, with the reason."""

    detections: list[Detection]
    errors: list[SiemgenError]
    other_logsources: int
    """Rules for a log source other than AWS CloudTrail, which a hunt leaves out."""

    def shared_id_warnings(self) -> list[str]:
        """Return a line for each rule whose id an earlier rule already has.

        Both rules still run, but the output names a rule by its id and title only, so their
        matches may be impossible to tell apart.
        """
        first: dict[str, Detection] = {}
        lines = []
        for detection in self.detections:
            if not detection.rule_id:
                continue
            earlier = first.setdefault(detection.rule_id, detection)
            if earlier is not detection:
                lines.append(
                    f"{detection.path}: rule id {detection.rule_id} is already used by "
                    f"{earlier.path}; give each rule its own id to tell their matches apart"
                )
        return lines


def load_rules(paths: Iterable[Path], cache: Path | None = None) -> RuleSet:
    """Load and convert the rules under ``paths``; raise ConfigError when there are none.

    With a ``cache`` folder, converted rules are kept there and reused while the rule file
    and siemgen's code stay the same; when every rule is in it, no rule is parsed again.
    """
    rule_paths = list(paths)
    rule_files = find_rule_files(rule_paths)
    if not rule_files:
        listed = ", ".join(str(path) for path in rule_paths)
        raise ConfigError(
            f"no rule files (*.yml, *.yaml) found in {listed}",
            hint="pass a rule file or folder with --rules",
        )
    if cache is not None:
        prepare_folder(cache)
    detection_cache = DetectionCache(cache) if cache is not None else None
    if detection_cache is not None:
        known = detection_cache.rule_set(rule_files)
        if known is not None:
            detections, others = known
            return RuleSet(detections=detections, errors=[], other_logsources=others)
    collection = load_collection(rule_paths)
    cloudtrail = []
    others = 0
    for rule_file in collection.rules:
        logsource = rule_file.rule.logsource
        if logsource.product == "aws" and logsource.service == "cloudtrail":
            cloudtrail.append(rule_file)
        else:
            logger.debug("rule %s is for another log source; left out", rule_file.path)
            others += 1
            if detection_cache is not None:
                detection_cache.put_other_logsource(rule_file)
    detections, conversion_errors = compile_rules(cloudtrail, cache=detection_cache)
    if detection_cache is not None:
        try:
            detection_cache.save()
        except OSError as error:
            raise OutputError(
                f"cannot write the rule cache: {error.strerror or error}",
                path=detection_cache.path,
                hint="pass a writable folder to --cache",
            ) from error
    errors: list[SiemgenError] = [*collection.errors, *conversion_errors]
    return RuleSet(detections=detections, errors=errors, other_logsources=others)


@dataclass
class HuntResult:
    """Everything a hunt found and everything it could not read."""

    detections: list[Detection]
    matches: MatchTable
    """The matching records, in a table on the hunt's DuckDB connection."""
    files: list[FileScan] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pruned_folders: int = 0
    pruned_files: int = 0
    cached_files: int = 0

    @property
    def records(self) -> int:
        """Return the number of records read."""
        return sum(scan.records for scan in self.files)

    @property
    def files_read_in_part(self) -> int:
        """Return the number of files read without the lines that are not JSON."""
        return sum(1 for scan in self.files if scan.bad_lines)

    @property
    def records_in_range(self) -> int:
        """Return the number of records read whose eventTime is inside the time range."""
        return sum(scan.in_range for scan in self.files)

    @functools.cached_property
    def hits(self) -> list[Hit]:
        """Return the matching records, sorted by eventTime, eventID and file."""
        return self.matches.hits()

    def rule_counts(self) -> list[tuple[Detection, int]]:
        """Return each detection with its number of matching records, in detection order."""
        return list(zip(self.detections, self.matches.rule_counts(), strict=True))


def connect(detections: Sequence[Detection] | None = None) -> duckdb.DuckDBPyConnection:
    """Open the in-memory DuckDB connection a hunt runs on, with siemgen's macros created.

    With ``detections``, only the macros their conditions call are created.
    """
    # The hunt writes nothing but its output and the cache: no spilling to a temporary folder
    # and no extension downloads.
    con = duckdb.connect(
        ":memory:",
        config={
            "temp_directory": "",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    conditions = None if detections is None else [d.fast_condition for d in detections]
    prepare_connection(con, conditions)
    return con


class Hunt:
    """One hunt: the detections, the time range and the optional cache, over a set of files."""

    def __init__(
        self,
        detections: Sequence[Detection],
        time_range: TimeRange | None = None,
        cache: Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.detections = list(detections)
        self.time_range = time_range or TimeRange()
        self.cache = ParquetCache(cache) if cache is not None else None
        self.progress = progress
        paths = [path for detection in self.detections for path in detection.paths]
        self.selection = select_columns([*paths, *OUTPUT_PATHS])
        self.con = connect(self.detections)
        # Set for each run with a cache: the Parquet file each log file was written to, and
        # the columns written, which include the columns the cache had before.
        self._written: dict[str, Path] = {}
        self._written_columns = self.selection
        self._cache_failed = False

    def run(self, paths: Iterable[Path], output: Path | None = None) -> HuntResult:
        """Find the log files under ``paths``, scan them and return what matched.

        The cache folder and the ``output`` file, where the results will go, are never read
        as logs: a walk leaves them out, and naming one as a log path raises ConfigError.
        """
        ignore = {}
        if output is not None:
            ignore[output.resolve()] = "the output file"
        if self.cache is not None:
            ignore[self.cache.folder.resolve()] = "the cache folder"
        discovery = find_log_files(paths, self.time_range, ignore, CACHE_FILES)
        result = HuntResult(
            detections=self.detections,
            matches=MatchTable(self.con, len(self.detections)),
            skipped=list(discovery.skipped),
            pruned_folders=discovery.pruned_folders,
            pruned_files=discovery.pruned_files,
        )
        readable = self._precheck(discovery, result)
        if self.progress is not None:
            self.progress.start(sum(log_file.size for log_file in readable))
        if self.cache is not None:
            result.warnings.extend(self.cache.warnings)
            scanned = BatchResult()
            try:
                self._scan_with_cache(readable, scanned, result)
            except BaseException:
                # No manifest entry will point at what this run wrote, so nothing would
                # ever delete it.
                self.cache.discard_written()
                raise
        else:
            scanner = self._scanner(self.selection, result.matches)
            advance = self.progress.advance if self.progress is not None else None
            scanned = scanner.scan_files(readable, advance)
        self._check_absent(readable, scanned)
        self._collect(readable, scanned, result)
        if self.cache is not None:
            self._record_cache(readable, scanned, result)
        return result

    def _scanner(self, selection: Selection, matches: MatchTable) -> Scanner:
        return Scanner(self.con, self.detections, selection, self.time_range, matches)

    def _precheck(self, discovery: Discovery, result: HuntResult) -> list[LogFile]:
        readable = []
        for log_file in discovery.files:
            reason = precheck(log_file)
            if reason is None:
                readable.append(log_file)
            else:
                result.skipped.append(Skipped(log_file.path, reason))
        return readable

    def _scan_with_cache(
        self, files: list[LogFile], scanned: BatchResult, result: HuntResult
    ) -> None:
        assert self.cache is not None
        cached, missing = self.cache.lookup(files, self.selection)
        for group in cached.values():
            try:
                self._scan_cached(group, scanned, result.matches)
            except duckdb.Error as error:
                # A damaged or edited Parquet file: its log files are read from JSON again.
                reason = error_message(error)
                result.warnings.append(
                    f"{self.cache.folder}: cached records of {len(group)} log files are "
                    f"unreadable ({reason}); those logs are read again"
                )
                for log_file, _ in group:
                    scanned.files.pop(log_file.name, None)
                    missing.append(log_file)
                continue
            result.cached_files += len(group)
            if self.progress is not None:
                self.progress.advance(sum(log_file.size for log_file, _ in group))
        self._written = {}
        self._written_columns = self.cache.widened(missing, self.selection)
        scanner = self._scanner(self._written_columns, result.matches)
        for batch in batches(missing):
            # A file that DuckDB cannot read and Python's parser can is not cached, so it is
            # read, and warned about, again on every hunt.
            isolate(
                batch,
                scanned,
                lambda part: self._write_and_scan(scanner, part, result),
                scanner.rescue,
            )
            if self.progress is not None:
                self.progress.advance(sum(log_file.size for log_file in batch))

    def _write_and_scan(
        self, scanner: Scanner, part: Sequence[LogFile], result: HuntResult
    ) -> dict[str, FileScan]:
        """Copy some log files to the cache and scan the copy, or scan the JSON if that fails."""
        assert self.cache is not None
        if self._cache_failed:
            return scanner.scan_part(part)
        try:
            target = self.cache.write(self.con, scanner.json_source(part), part, scanner.selection)
        except OutputError as error:
            # The results do not depend on the cache, so the hunt goes on without it.
            self._cache_failed = True
            result.warnings.append(f"{error}; the rest of this hunt is not cached")
            return scanner.scan_part(part)
        for log_file in part:
            self._written[log_file.name] = target
        return scanner.scan_parquet(str(target))

    def _scan_cached(
        self, group: list[tuple[LogFile, CacheEntry]], scanned: BatchResult, matches: MatchTable
    ) -> None:
        """Run the rules over cached records; the per-file counts come from the manifest."""
        # NOTE: with every rule over 1M cached records (31,416 matches) a hunt from the cache
        # takes about 0.11 of the hunt that wrote it, not 0.1. Start-up and exit, decoding
        # the reported columns of every record and rendering 25 MB of matches cost more than
        # the filter (docs/benchmarks.md).
        assert self.cache is not None
        entries = [entry for _, entry in group]
        scanner = self._scanner(self.selection, matches)
        source = parquet_source(self.cache, entries)
        in_range = None if self.time_range.is_open else scanner.range_counts(source)
        current = {entry.name: log_file.name for log_file, entry in group}
        for log_file, entry in group:
            scanned.files[log_file.name] = FileScan(
                name=log_file.name,
                records=entry.records,
                in_range=entry.records if in_range is None else in_range.get(entry.name, 0),
                missing=dict(entry.missing),
                empty_records=entry.empty_records,
            )
        scanner.insert_matches(source, names=current)

    def _check_absent(self, files: list[LogFile], scanned: BatchResult) -> None:
        """Find why a file gave no records: an empty Records array, or another JSON shape."""
        absent = [
            log_file
            for log_file in files
            if log_file.name not in scanned.files and log_file.name not in scanned.failed
        ]
        for log_file in absent:
            if log_file.format is LogFormat.LINES:
                scanned.files[log_file.name] = FileScan(log_file.name)
                continue
            reason = self._shape_problem(log_file)
            if reason is None:
                scanned.files[log_file.name] = FileScan(log_file.name)
            else:
                scanned.failed[log_file.name] = reason

    def _shape_problem(self, log_file: LogFile) -> str | None:
        query = (
            "SELECT json_type(json), json_type(json, '$.Records') "
            f"FROM read_json_objects({sql_list([log_file.name])}, format = 'unstructured')"
        )
        try:
            rows = self.con.execute(query).fetchall()
        except DATA_ERRORS as error:
            return file_reason(" ".join(str(error).split()), log_file)
        if not rows:
            if log_file.compressed:
                return "file is empty once decompressed"
            return "file holds only whitespace"
        for top, records in rows:
            problem = records_problem(
                _json_kind(top), None if records is None else _json_kind(records)
            )
            if problem is not None:
                return problem
        return None

    def _collect(self, files: list[LogFile], scanned: BatchResult, result: HuntResult) -> None:
        not_cloudtrail = []
        for log_file in files:
            reason = scanned.failed.get(log_file.name)
            if reason is not None:
                result.skipped.append(Skipped(log_file.path, reason))
                continue
            scan = scanned.files[log_file.name]
            if scan.records and scan.empty_records == scan.records:
                result.skipped.append(
                    Skipped(
                        log_file.path,
                        f"no CloudTrail records: none of its {scan.records} records has "
                        "eventTime, eventID, eventSource or eventName",
                    )
                )
                not_cloudtrail.append(log_file.name)
                continue
            if scan.missing:
                lacking = ", ".join(
                    f"{count} {'lacks' if count == 1 else 'lack'} {raw}"
                    for raw, count in sorted(scan.missing.items())
                )
                result.warnings.append(
                    f"{log_file.path}: of {scan.records} records, {lacking}; "
                    "they were scanned anyway"
                )
            if scan.bad_lines:
                bad = (
                    "is not valid JSON and was"
                    if scan.bad_lines == 1
                    else "are not valid JSON and were"
                )
                result.warnings.append(
                    f"{log_file.path}: {scan.bad_lines} of its {counted(scan.lines, 'line')} "
                    f"{bad} left out; the others were scanned"
                )
            if scan.replacements:
                found = counted(
                    scan.replacements,
                    "lone UTF-16 surrogate or byte sequence that is not UTF-8",
                    "lone UTF-16 surrogates or byte sequences that are not UTF-8",
                )
                result.warnings.append(
                    f"{log_file.path}: it contains {found}, which DuckDB rejects; the file was "
                    "read with U+FFFD in place of each"
                )
            result.files.append(scan)
        # A rule may match a record without any of the four fields, as on errorCode alone,
        # but a file of such records is reported as skipped, so its matches go too.
        result.matches.drop_files(not_cloudtrail)

    def _record_cache(self, files: list[LogFile], scanned: BatchResult, result: HuntResult) -> None:
        assert self.cache is not None
        good = {scan.name: scan for scan in result.files}
        for log_file in files:
            target = self._written.get(log_file.name)
            scan = good.get(log_file.name)
            if target is not None and scan is not None:
                self.cache.record(log_file, target, self._written_columns, scan)
        try:
            self.cache.save()
        except OutputError as error:
            result.warnings.append(f"{error}; the next hunt reads these logs from JSON again")


_JSON_KINDS = {
    "ARRAY": "an array",
    "OBJECT": "an object",
    "VARCHAR": "a string",
    "BOOLEAN": "a boolean",
    "NULL": "null",
}


def _json_kind(duckdb_json_type: object) -> str:
    """Return a DuckDB ``json_type`` result in JSON's own words."""
    name = str(duckdb_json_type)
    return _JSON_KINDS.get(name, "a number" if name in ("BIGINT", "UBIGINT", "DOUBLE") else name)


# The files a hunt writes in its cache folder that a log file name could match. A folder
# holding both is a hunt's cache, which a walk leaves out even when it is not this hunt's.
CACHE_FILES = frozenset({MANIFEST, DETECTIONS_FILE})


def check_paths(
    paths: Sequence[Path], rules: Sequence[Path], output: Path | None, cache: Path | None
) -> None:
    """Raise ConfigError when the hunt's output or cache would overlap what it reads.

    Checked before the rules load, since loading them with a cache writes to the cache.
    """
    for path in paths:
        try:
            missing = not path.exists()
        except OSError:
            continue  # the walk reports a path it cannot read
        if missing:
            raise missing_path_error(path)
    if output is not None:
        reject_input(output, "--output", paths, LOG_SUFFIXES, "log files")
        reject_log_overwrite(output)
        inputs = rule_inputs(rules)
        reject_input(output, "--output", inputs, RULE_INPUT_SUFFIXES, "rule and test files")
        if cache is not None:
            reject_input(output, "--output", [cache], None, "cache files")
    if cache is None:
        return
    folder = cache.resolve()
    for path in paths:
        check_outside(path, {folder: "the cache folder"})
        root = path.resolve()
        try:
            if not (folder.is_dir() and root.is_dir() and folder.is_relative_to(root)):
                continue
            foreign = sorted(
                found
                for found in folder.rglob("*")
                if classify(found) is not None and found.name not in CACHE_FILES and found.is_file()
            )
        except OSError:
            continue  # the walk reports a path it cannot read
        if foreign:
            raise ConfigError(
                f"the cache folder inside {str(path)!r} contains "
                f"{counted(len(foreign), 'log file')}, which the hunt would leave out",
                path=foreign[0],
                hint="pass an empty folder, or one a hunt made, to --cache",
            )


# Keys of a CloudTrail record; a hunt's own JSON lines start with "rule_id" instead.
_RECORD_KEYS = (b'"eventTime"', b'"eventID"', b'"eventSource"', b'"eventName"')
_RECORDS_OBJECT = re.compile(rb'\{\s*"Records"\s*:')
# How many of its first lines decide whether a JSON lines file is a log, so that a first line
# cut short, or a file that starts with other data, still counts.
_LINES_LOOKED_AT = 20


def reject_log_overwrite(output: Path) -> None:
    """Raise ConfigError when ``output`` is an existing CloudTrail log file.

    A log file is gzip, a JSON object whose first key is ``Records`` (compact or indented), or
    JSON lines with a CloudTrail record among their first lines. Only a regular file is read:
    reading a pipe such as ``/dev/stdout`` would wait for input that never comes.
    """
    try:
        if not output.is_file():
            return
        with output.open("rb") as stream:
            start = stream.read(64 * 1024)
    except OSError:
        return
    text = start.lstrip(b"\xef\xbb\xbf \t\r\n")
    lines = [line.strip() for line in text.split(b"\n")[:_LINES_LOOKED_AT]]
    is_lines_log = any(
        line.startswith(b"{")
        and not line.startswith(b'{"rule_id"')
        and any(key in line for key in _RECORD_KEYS)
        for line in lines
    )
    if start.startswith(GZIP_MAGIC) or _RECORDS_OBJECT.match(text) or is_lines_log:
        raise ConfigError(
            "the --output file is a CloudTrail log file",
            path=output,
            hint="write the results to a new file or to one an earlier hunt wrote",
        )


def hunt(
    paths: Iterable[Path],
    rules: Iterable[Path] = (Path("sigma"),),
    time_range: TimeRange | None = None,
    cache: Path | None = None,
    progress: Progress | None = None,
) -> tuple[RuleSet, HuntResult]:
    """Run the rules under ``rules`` over the CloudTrail logs under ``paths``."""
    paths, rules = list(paths), list(rules)
    check_paths(paths, rules, None, cache)
    rule_set = load_rules(rules, cache)
    if not rule_set.detections:
        raise SiemgenError(
            f"none of the {len(rule_set.errors)} rules can run in a hunt",
            hint="fix the rule errors listed above",
        )
    runner = Hunt(rule_set.detections, time_range, cache, progress)
    return rule_set, runner.run(paths)
