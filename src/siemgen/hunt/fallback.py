"""Read a log file that DuckDB rejected with Python's JSON parser, keeping what can be kept.

DuckDB rejects a whole file for one value it cannot read: a string with a lone UTF-16
surrogate escape (``"\\ud800"``), which JSON's grammar allows (RFC 8259, section 8.2), or
one line of a JSON lines file that is not JSON. A value in a logged API call could thus hide
the whole file from a hunt. This reader takes the records that parse, writes each lone
surrogate as U+FFFD, and counts what it changed or left out, so the hunt can warn of it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any

from siemgen.hunt.logs import LogFile, LogFormat

# The maximum bytes, once decompressed, that this reader keeps in memory for one file.
MAX_BYTES = 256 * 1024 * 1024

_REPLACEMENT = "\ufffd"


class UnreadableLog(Exception):
    """The file cannot be read as CloudTrail records; the message is the reason."""


@dataclass
class FallbackRead:
    """The records of one file as JSON texts, and what the reader changed or left out."""

    records: list[str]
    bad_lines: int = 0
    """Lines of a JSON lines file that are not JSON, left out."""
    lines: int = 0
    """Lines of a JSON lines file that are not blank."""
    repaired_strings: int = 0
    """Strings with a lone surrogate, or bytes that are not UTF-8, written as U+FFFD."""


def read_fallback(log_file: LogFile) -> FallbackRead:
    """Read ``log_file`` with Python, raising UnreadableLog with the reason when it cannot."""
    data = _read_bytes(log_file)
    try:
        text = data.decode("utf-8")
        repaired = 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        repaired = 1
    result = FallbackRead(records=[], repaired_strings=repaired)
    try:
        if log_file.format is LogFormat.LINES:
            _read_lines(text, result)
        else:
            _read_object(text, result)
    except RecursionError as error:
        raise UnreadableLog("not valid JSON: values are nested too deeply") from error
    return result


def _read_bytes(log_file: LogFile) -> bytes:
    try:
        if log_file.compressed:
            with gzip.open(log_file.path, "rb") as stream:
                data = stream.read(MAX_BYTES + 1)
        else:
            with log_file.path.open("rb") as stream:
                data = stream.read(MAX_BYTES + 1)
    except EOFError as error:
        raise UnreadableLog("gzip data is truncated") from error
    except (gzip.BadGzipFile, zlib.error) as error:
        raise UnreadableLog(f"gzip data is damaged or followed by other data ({error})") from error
    except OSError as error:
        raise UnreadableLog(f"cannot read the file: {error.strerror or error}") from error
    if len(data) > MAX_BYTES:
        raise UnreadableLog(f"the file is larger than {MAX_BYTES} bytes once decompressed")
    return data


def _read_object(text: str, result: FallbackRead) -> None:
    try:
        document = _loads(text)
    except ValueError as error:
        raise UnreadableLog(f"not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise UnreadableLog(
            'not a CloudTrail log file: the JSON is not an object with a "Records" array'
        )
    records = document.get("Records")
    if not isinstance(records, list):
        found = "missing" if records is None else "not an array"
        raise UnreadableLog(f'not a CloudTrail log file: "Records" is {found}')
    for record in records:
        result.records.append(_dumps(record, result))


def _read_lines(text: str, result: FallbackRead) -> None:
    for line in text.split("\n"):
        if not line.strip():
            continue
        result.lines += 1
        try:
            record = _loads(line)
        except ValueError:
            result.bad_lines += 1
            continue
        result.records.append(_dumps(record, result))
    if result.lines and result.bad_lines == result.lines:
        raise UnreadableLog(f"not valid JSON: none of its {result.lines} lines is JSON")


def _loads(text: str) -> Any:
    """Parse JSON as DuckDB does: the first of repeated keys counts, and NaN is invalid."""
    return json.loads(text, object_pairs_hook=_first_pairs, parse_constant=_reject_constant)


def _first_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _dumps(record: Any, result: FallbackRead) -> str:
    """Return a record as JSON text with every lone surrogate written as U+FFFD."""
    return json.dumps(_repaired(record, result), ensure_ascii=False)


def _repaired(value: Any, result: FallbackRead) -> Any:
    if isinstance(value, str):
        return _repaired_text(value, result)
    if isinstance(value, list):
        return [_repaired(item, result) for item in value]
    if isinstance(value, dict):
        return {_repaired_text(key, result): _repaired(item, result) for key, item in value.items()}
    return value


def _repaired_text(text: str, result: FallbackRead) -> str:
    if text.isascii() or not any(_is_surrogate(char) for char in text):
        return text
    result.repaired_strings += 1
    # The parser has already joined each valid pair into one character, so every surrogate
    # left in the string is a lone one.
    return "".join(_REPLACEMENT if _is_surrogate(char) else char for char in text)


def _is_surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udfff"
