"""Split log files into batches and find the unreadable files in a batch that failed."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import duckdb

from siemgen.hunt.fallback import TooLargeToRepair, UnreadableLog
from siemgen.hunt.logs import LogFile, LogFormat
from siemgen.hunt.results import BatchResult, FileScan

logger = logging.getLogger(__name__)

# Files are read in batches of about this many bytes on disk, one query per batch. When a file
# in a batch is unreadable, the rest of the batch is read again, so the size bounds that extra
# work. It still puts enough files in one query to keep every thread busy.
BATCH_BYTES = 32 * 1024 * 1024
MAX_BATCH_FILES = 4096

# DuckDB errors that come from the data in a file rather than from the query.
# NOTE: a rule condition that fails on some value (a CAST rather than a TRY_CAST) also raises
# a ConversionException, and the file holding that value is then reported as unreadable.
DATA_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.IOException,
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
)

ScanPart = Callable[[Sequence[LogFile]], dict[str, FileScan]]
"""Scan some files and return each file's counts and hits; DuckDB errors propagate."""

Rescue = Callable[[LogFile], FileScan]
"""Repair and scan one file that DuckDB rejected; raise UnreadableLog when that fails too."""


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


def isolate(
    batch: Sequence[LogFile], result: BatchResult, scan: ScanPart, rescue: Rescue | None = None
) -> None:
    """Run ``scan`` on ``batch``; on a data error, find the unreadable files and skip them.

    DuckDB names the file in most read errors. That file is tried alone and the rest of the
    batch again. Otherwise the batch is split in halves until each failing file is alone. A
    file that fails alone is given to ``rescue``, and skipped only if that fails too.
    """
    pending: list[Sequence[LogFile]] = [batch]
    while pending:
        part = pending.pop()
        try:
            result.files.update(scan(part))
            continue
        except DATA_ERRORS as error:
            message = error_text(error)
            if len(part) == 1:
                logger.debug("file %s failed: %s", part[0].name, message)
                _rescue_or_skip(part[0], file_reason(message, part[0]), result, rescue)
                continue
            named = _named_file(part, message)
        if named is not None:
            pending.append([log_file for log_file in part if log_file is not named])
            pending.append([named])
        else:
            middle = len(part) // 2
            pending.append(part[middle:])
            pending.append(part[:middle])


def _rescue_or_skip(
    log_file: LogFile, reason: str, result: BatchResult, rescue: Rescue | None
) -> None:
    """Record the file as read by ``rescue``, or as skipped with the most precise reason."""
    if rescue is not None:
        try:
            result.files[log_file.name] = rescue(log_file)
            return
        except TooLargeToRepair as error:
            # DuckDB's reason comes first, because the repair's gives only why it did not try.
            reason = f"{reason}; {error}"
        except UnreadableLog as error:
            # The repair's reason names the line and column of bad JSON, which DuckDB's does
            # not.
            reason = str(error)
        except DATA_ERRORS as error:
            logger.debug("file %s failed again after its repair: %s", log_file.name, error)
    result.failed[log_file.name] = reason


def error_text(error: duckdb.Error) -> str:
    """Return DuckDB's message on one line, without the error class prefix."""
    text = " ".join(str(error).split())
    for prefix in ("IO Error: ", "Invalid Input Error: ", "Conversion Error: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


_OBJECT_LIMIT = re.compile(r'"maximum_object_size" of (\d+) bytes exceeded')


def file_reason(message: str, log_file: LogFile) -> str:
    """Return a DuckDB read error as the reason a file was skipped, without its path."""
    name = log_file.name
    detail = message.replace(f' in file "{name}"', "").replace(f": {name}", "")
    detail = detail.replace(f'"{name}"', "the file").strip()
    if detail.startswith("Unexpected end of GZIP stream"):
        return "gzip data is truncated (DuckDB: Unexpected end of GZIP stream)"
    if detail.startswith("Input is not a GZIP stream"):
        # The first bytes were checked before the scan, so the bad data follows a gzip member.
        return "gzip data is damaged or followed by other data (DuckDB: Input is not a GZIP stream)"
    limit = _OBJECT_LIMIT.search(detail)
    if limit is not None:
        return _too_large(log_file, int(limit[1]))
    if detail.startswith("Malformed JSON"):
        return f"not valid JSON (DuckDB: {detail})"
    return f"cannot read the file (DuckDB: {detail})"


def _too_large(log_file: LogFile, limit: int) -> str:
    if log_file.format is LogFormat.LINES:
        return (
            f"a line is longer than DuckDB's limit for one JSON value ({limit} bytes); "
            "drop the oversized record from the file"
        )
    return (
        f"the JSON object is larger than {limit} bytes, the size the gzip trailer gives; "
        "the trailer holds the size modulo 4 GiB, so decompress a file of 4 GiB or more"
    )


def _named_file(files: Sequence[LogFile], message: str) -> LogFile | None:
    named = [log_file for log_file in files if log_file.name in message]
    if not named:
        return None
    return max(named, key=lambda log_file: len(log_file.name))
