"""Find CloudTrail log files on disk, prune them by the dates in their paths and pre-check them.

A trail delivers gzip files of ``{"Records": [...]}`` to
``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/``, or with an organization trail to
``AWSLogs/<o-id>/<account>/CloudTrail/...``. The date folders are the UTC delivery date, and
digest and Insights files sit in the sibling ``CloudTrail-Digest`` and ``CloudTrail-Insight``
folders, which hold no management or data events.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from siemgen.errors import ConfigError

logger = logging.getLogger(__name__)

SKIPPED_FOLDERS = frozenset({"CloudTrail-Digest", "CloudTrail-Insight"})

# A file in a folder dated D contains records delivered on day D. CloudTrail delivers a record
# about 15 minutes after the call on average, but a file may contain older records that were
# delivered late, and delivery time and event time come from different clocks. So a dated
# file is kept when its day, widened by this margin on each side, overlaps the range. Pruning
# drops a record whose eventTime is in range only if it was delivered more than a day away.
DATE_MARGIN = dt.timedelta(days=1)

GZIP_MAGIC = b"\x1f\x8b"
"""The first two bytes of every gzip file (RFC 1952)."""
_DAY = dt.timedelta(days=1)


class LogFormat(StrEnum):
    """The layout of the records in a log file."""

    RECORDS = "records"
    """A JSON object with a ``Records`` array, as CloudTrail delivers to S3."""
    LINES = "lines"
    """One JSON record per line."""


_SUFFIXES: tuple[tuple[str, LogFormat, bool], ...] = (
    (".json.gz", LogFormat.RECORDS, True),
    (".json", LogFormat.RECORDS, False),
    (".jsonl.gz", LogFormat.LINES, True),
    (".jsonl", LogFormat.LINES, False),
    (".ndjson.gz", LogFormat.LINES, True),
    (".ndjson", LogFormat.LINES, False),
)
LOG_SUFFIXES = tuple(suffix for suffix, _, _ in _SUFFIXES)


@dataclass(frozen=True)
class LogFile:
    """One log file to read, with the format and delivery date its name and folders give."""

    path: Path
    size: int
    mtime_ns: int
    format: LogFormat
    compressed: bool
    day: dt.date | None
    """UTC delivery date from the ``CloudTrail/<region>/YYYY/MM/DD`` folders, if present."""
    resolved: Path
    """The absolute path with symbolic links resolved, which identifies the file."""
    inode: tuple[int, int]
    """The device and inode numbers, the same for every hard link to the file."""

    @property
    def name(self) -> str:
        """Return the path as DuckDB is given it and reports it back."""
        return str(self.path)


@dataclass(frozen=True)
class Skipped:
    """A file or folder that was not scanned, and the reason."""

    path: Path
    reason: str


@dataclass(frozen=True)
class TimeRange:
    """The eventTime window of a hunt, both ends included, in UTC."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def keeps_days(self, first: dt.date, last: dt.date) -> bool:
        """Tell whether files delivered from ``first`` to ``last`` may hold records in range."""
        start = _shifted(dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC), -DATE_MARGIN)
        end = _shifted(dt.datetime.combine(last, dt.time(), tzinfo=dt.UTC), _DAY + DATE_MARGIN)
        if self.since is not None and end <= self.since:
            return False
        return self.until is None or start <= self.until

    @property
    def is_open(self) -> bool:
        """Tell whether the range has no bounds at all."""
        return self.since is None and self.until is None


def _shifted(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """Return ``moment + delta``, stopping at the first or last moment Python can hold."""
    try:
        return moment + delta
    except OverflowError:
        limit = dt.datetime.max if delta > dt.timedelta() else dt.datetime.min
        return limit.replace(tzinfo=dt.UTC)


def _iso_date(text: str) -> dt.date | None:
    """Return the date when ``text`` is an ISO 8601 date alone, in any of its forms."""
    # The forms are 2024-03-01, 20240301, 2024-W09-5 and 2024W095, all without a time.
    if "T" in text.upper() or " " in text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def parse_time(text: str, *, end_of_day: bool = False) -> dt.datetime:
    """Parse an ISO 8601 date or date-time as UTC, raising ConfigError when it is invalid.

    A date alone means midnight, or the last microsecond of that day with ``end_of_day``, so
    ``--until 2024-03-01`` includes all of 1 March. A date-time without an offset is UTC.
    """
    value = text.strip()
    try:
        day = _iso_date(value)
        if day is not None:
            return dt.datetime.combine(day, dt.time.max if end_of_day else dt.time(), dt.UTC)
        moment = dt.datetime.fromisoformat(value)
    except ValueError as error:
        raise ConfigError(
            f"invalid date or time {text!r}",
            hint="write an ISO 8601 date or date-time in UTC, e.g. 2024-03-01 or "
            "2024-03-01T12:30:00Z",
        ) from error
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as error:
        raise ConfigError(
            f"date or time {text!r} falls outside the years 1 to 9999 in UTC",
            hint="give a time between 0001-01-01 and 9999-12-31 UTC",
        ) from error


def records_problem(document: str, records: str | None) -> str | None:
    """Return why a JSON document is not a CloudTrail log file, or None when it is one.

    ``document`` is the kind of the whole document and ``records`` that of its ``Records``
    member, in words such as ``an object`` or ``an array``, or None when it is missing.
    """
    if document != "an object":
        return (
            f"not a CloudTrail log file: the JSON is {document}, not an object with a "
            '"Records" array'
        )
    if records != "an array":
        found = "missing" if records is None else f"{records}, not an array"
        return f'not a CloudTrail log file: "Records" is {found}'
    return None


def classify(path: Path) -> tuple[LogFormat, bool] | None:
    """Return the format and compression a file name declares, or None for other files."""
    name = path.name.lower()
    for suffix, log_format, compressed in _SUFFIXES:
        if name.endswith(suffix):
            return log_format, compressed
    return None


def _date_parts(parts: tuple[str, ...]) -> tuple[int, int | None, int | None] | None:
    """Return (year, month, day) from the folders after ``CloudTrail/<region>/``."""
    for index, part in enumerate(parts):
        if part != "CloudTrail" or index + 2 >= len(parts):
            continue
        numbers: list[int] = []
        for piece in parts[index + 2 : index + 5]:
            if not re.fullmatch(r"\d{2}|\d{4}", piece):
                break
            numbers.append(int(piece))
        if not numbers or numbers[0] < 1000:
            continue
        year = numbers[0]
        month = numbers[1] if len(numbers) > 1 else None
        day = numbers[2] if len(numbers) > 2 else None
        return year, month, day
    return None


def folder_days(path: Path) -> tuple[dt.date, dt.date] | None:
    """Return the first and last day a dated folder (or a file inside one) can cover."""
    found = _date_parts(path.parts)
    if found is None:
        return None
    year, month, day = found
    try:
        if month is None:
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
        if day is None:
            first = dt.date(year, month, 1)
            following = dt.date(year + month // 12, month % 12 + 1, 1)
            return first, following - _DAY
        exact = dt.date(year, month, day)
    except ValueError:
        return None
    return exact, exact


@dataclass
class Discovery:
    """The log files found under the hunt's paths, and what was skipped or pruned."""

    files: list[LogFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pruned_folders: int = 0
    """Dated folders left out because of the time range, without listing their contents."""
    pruned_files: int = 0
    """Files in dated folders left out because of the time range."""
    other_trail_folders: int = 0
    """``SKIPPED_FOLDERS`` left out: digest and Insights files, which hold no events."""


def _log_file(path: Path, stat: os.stat_result, resolved: Path | None = None) -> LogFile | None:
    """Return the LogFile of a file with a log file name, or None for any other file.

    ``resolved`` is the file's resolved path when the caller knows it.
    """
    kind = classify(path)
    if kind is None:
        return None
    days = folder_days(path.parent)
    day = days[0] if days is not None and days[0] == days[1] else None
    return LogFile(
        path=path,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        format=kind[0],
        compressed=kind[1],
        day=day,
        resolved=resolved or path.resolve(),
        inode=_identity(stat),
    )


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


class _Walker:
    """Walk folders depth first in name order, pruning dated folders outside the range."""

    def __init__(
        self,
        time_range: TimeRange,
        found: Discovery,
        ignored: set[tuple[int, int]],
        markers: frozenset[str],
    ) -> None:
        self.time_range = time_range
        self.found = found
        self.ignored = ignored
        self.markers = markers
        # Folders already walked, by device and inode, so a symbolic link loop ends and a
        # folder named twice, or inside another one named, is walked once.
        self.visited: set[tuple[int, int]] = set()

    def walked(self, folder: Path) -> bool:
        """Tell whether ``folder`` was already walked, as itself or through a link."""
        return _identity(folder.stat()) in self.visited

    def walk(self, folder: Path) -> Iterator[LogFile]:
        try:
            identity = _identity(folder.stat())
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            self.found.skipped.append(Skipped(folder, f"cannot list folder: {error.strerror}"))
            return
        if identity in self.visited:
            return
        self.visited.add(identity)
        if self.markers and self.markers <= {entry.name for entry in entries}:
            return
        # Resolved once per folder: a file that is not a link resolves to its name there.
        resolved_folder = folder.resolve()
        for entry in entries:
            path = Path(entry.path)
            try:
                if _identity(entry.stat()) in self.ignored:
                    continue
                if entry.is_dir():
                    yield from self._folder(path)
                elif entry.is_file():
                    resolved = None if entry.is_symlink() else resolved_folder / entry.name
                    log_file = _log_file(path, entry.stat(), resolved)
                    if log_file is not None:
                        yield log_file
            except OSError as error:
                self.found.skipped.append(Skipped(path, f"cannot read: {error.strerror}"))

    def _folder(self, path: Path) -> Iterator[LogFile]:
        if path.name in SKIPPED_FOLDERS:
            self.found.other_trail_folders += 1
            return
        days = folder_days(path)
        if days is not None and not self.time_range.keeps_days(*days):
            self.found.pruned_folders += 1
            return
        yield from self.walk(path)


def missing_path_error(path: Path) -> ConfigError:
    """Return the error for a log path that does not exist, naming a dangling link as such."""
    if os.path.lexists(path):
        message = "log path is a symbolic link to nothing: its target is missing or a link loop"
    else:
        message = "log path not found"
    return ConfigError(message, path=path, hint="pass CloudTrail log files or folders of them")


def check_outside(path: Path, ignore: Mapping[Path, str]) -> None:
    """Raise ConfigError when a log path is, or lies inside, a path the hunt writes."""
    resolved = path.resolve()
    for ignored, what in ignore.items():
        if resolved == ignored:
            where = what
        elif ignored.is_dir() and resolved.is_relative_to(ignored):
            where = f"inside {what}"
        else:
            continue
        raise ConfigError(
            f"the log path is {where}, which the hunt writes",
            path=path,
            hint=f"pass log files or folders outside {what}",
        )


def _ignored_identities(ignore: Mapping[Path, str]) -> set[tuple[int, int]]:
    identities = set()
    for path in ignore:
        try:
            identities.add(_identity(path.stat()))
        except OSError:
            continue
    return identities


def find_log_files(
    paths: Iterable[Path],
    time_range: TimeRange | None = None,
    ignore: Mapping[Path, str] | None = None,
    markers: frozenset[str] = frozenset(),
) -> Discovery:
    """Find the log files under ``paths`` and prune the dated ones outside ``time_range``.

    ``ignore`` maps resolved paths the hunt writes (its output file, its cache folder) to
    what they are: a walk leaves them out, and a log path that is one of them, or inside
    one, raises ConfigError. So does a path that does not exist. A walk also leaves out a
    folder that contains every file name in ``markers``, such as another hunt's cache. A folder
    without log files and a file whose name is not a log file name are recorded as skipped.
    """
    window = time_range or TimeRange()
    ignore = ignore or {}
    found = Discovery()
    walker = _Walker(window, found, _ignored_identities(ignore), markers)
    seen: set[tuple[int, int]] = set()
    for path in paths:
        try:
            exists = path.exists()
            is_folder = exists and path.is_dir()
        except OSError as error:
            found.skipped.append(Skipped(path, f"cannot read: {error.strerror}"))
            continue
        if not exists:
            raise missing_path_error(path)
        check_outside(path, ignore)
        if is_folder:
            if walker.walked(path):
                continue
            pruned_before = found.pruned_folders
            other_before = found.other_trail_folders
            walked = 0
            for log_file in walker.walk(path):
                walked += 1
                _add(found, seen, log_file, window)
            if not walked and found.pruned_folders == pruned_before:
                reason = f"folder holds no CloudTrail log files ({', '.join(LOG_SUFFIXES)})"
                if found.other_trail_folders > other_before:
                    reason += "; CloudTrail-Digest and CloudTrail-Insight folders are left out"
                found.skipped.append(Skipped(path, reason))
            continue
        named = _log_file(path, path.stat())
        if named is None:
            found.skipped.append(
                Skipped(path, "not a log file name; expected one of " + ", ".join(LOG_SUFFIXES))
            )
            continue
        _add(found, seen, named, window)
    return found


def _add(
    found: Discovery, seen: set[tuple[int, int]], log_file: LogFile, window: TimeRange
) -> None:
    # By inode, so that a file reached through a symbolic or hard link is read once.
    if log_file.inode in seen:
        return
    seen.add(log_file.inode)
    if log_file.day is not None and not window.keeps_days(log_file.day, log_file.day):
        found.pruned_files += 1
        return
    found.files.append(log_file)


# DuckDB expands these characters in a file path as a glob pattern.
_GLOB_CHARACTERS = frozenset("*?[")


def precheck(log_file: LogFile) -> str | None:
    """Return why a file cannot be read, from its first bytes, or None when it may be read."""
    if _GLOB_CHARACTERS & set(log_file.name):
        return "the path contains *, ? or [, which DuckDB reads as a pattern; rename the file"
    try:
        log_file.name.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8, which DuckDB cannot open; rename the file"
    if log_file.size == 0:
        return "file is empty"
    try:
        with log_file.path.open("rb") as handle:
            head = handle.read(2)
    except PermissionError:
        return "permission denied"
    except OSError as error:
        return f"cannot open file: {error.strerror}"
    if log_file.compressed and head != GZIP_MAGIC:
        return "not gzip-compressed, although the name ends in .gz"
    return None


def uncompressed_size(log_file: LogFile) -> int:
    """Estimate the size of a file once decompressed, for DuckDB's object size limit.

    The last four bytes of a gzip file are the uncompressed size modulo 2**32 (RFC 1952).
    """
    if not log_file.compressed:
        return log_file.size
    try:
        with log_file.path.open("rb") as handle:
            handle.seek(-4, os.SEEK_END)
            trailer = handle.read(4)
    except OSError:
        return log_file.size
    return int.from_bytes(trailer, "little") if len(trailer) == 4 else log_file.size
