"""Repair a log file that DuckDB rejected, so that one bad value cannot hide the whole file.

DuckDB rejects a whole file for one string with a lone UTF-16 surrogate escape
(``"\\ud800"``), which JSON's grammar allows (RFC 8259, section 8.2). It does the same for
bytes that are not UTF-8, and for one line of a JSON lines file that is not JSON. A value in a
logged API call could thus hide every record delivered with it.

This reader writes each lone surrogate escape and each byte sequence that is not UTF-8 as
U+FFFD, drops a leading byte order mark, and leaves out the lines that Python's JSON parser
rejects. Everything else stays as the file has it, so DuckDB then reads the repaired text
exactly as it reads a file: numbers keep their text, and the first of repeated keys counts.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass, field

from siemgen.hunt.logs import LogFile, LogFormat, records_problem

# The maximum bytes, once decompressed, that this reader keeps in memory for one file.
MAX_BYTES = 256 * 1024 * 1024

_REPLACEMENT = "\ufffd"
_REPLACEMENT_ESCAPE = "\\ufffd"
# A run of backslashes, then u and four hex digits: a \u escape when the run is odd, because
# each pair of backslashes is an escaped backslash.
_UNICODE_ESCAPE = re.compile(r"(\\+)u([0-9a-fA-F]{4})")


class UnreadableLog(Exception):
    """The file cannot be read as CloudTrail records; the message is the reason."""


class TooLargeToRepair(UnreadableLog):
    """The file is larger than ``MAX_BYTES`` once decompressed, so it was not repaired."""


@dataclass
class RepairedLog:
    """The JSON of one file after repair, and what the repair changed or left out."""

    document: str | None = None
    """The repaired JSON object of a delivered file."""
    lines: list[str] = field(default_factory=list)
    """The repaired lines of a JSON lines file that Python's parser reads."""
    line_count: int = 0
    """Lines of a JSON lines file that are not blank."""
    bad_lines: int = 0
    """Lines of a JSON lines file that are not JSON, left out."""
    replacements: int = 0
    """Lone surrogate escapes and byte sequences that are not UTF-8, now U+FFFD."""


def repair_log(log_file: LogFile) -> RepairedLog:
    """Read and repair ``log_file``, raising UnreadableLog with the reason when it cannot."""
    text, replacements = _decode(_read_bytes(log_file))
    result = RepairedLog(replacements=replacements)
    if log_file.format is LogFormat.LINES:
        _repair_lines(text, result)
    else:
        _repair_document(text, result)
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
        raise UnreadableLog("gzip data is damaged or followed by other data") from error
    except OSError as error:
        raise UnreadableLog(f"cannot read the file: {error.strerror or error}") from error
    if len(data) > MAX_BYTES:
        raise TooLargeToRepair(
            f"the file is larger than {MAX_BYTES} bytes once decompressed, the most the repair "
            "reader takes"
        )
    return data


def _decode(data: bytes) -> tuple[str, int]:
    """Return the text of ``data`` without a leading byte order mark, and how many byte
    sequences that are not UTF-8 were read as U+FFFD."""
    try:
        text = data.decode("utf-8")
        replaced = 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        # A U+FFFD that the file itself contains decodes to U+FFFD too, so only the extra ones
        # stand for bytes that are not UTF-8.
        replaced = text.count(_REPLACEMENT) - data.count(_REPLACEMENT.encode("utf-8"))
    text, surrogates = _replace_lone_surrogates(text.removeprefix("\ufeff"))
    return text, replaced + surrogates


def _replace_lone_surrogates(text: str) -> tuple[str, int]:
    """Return ``text`` with every \\u escape of a lone surrogate written as \\ufffd."""
    if "\\u" not in text:
        return text, 0
    escapes = [m for m in _UNICODE_ESCAPE.finditer(text) if len(m[1]) % 2 == 1]
    parts: list[str] = []
    start = 0
    replaced = 0
    index = 0
    while index < len(escapes):
        escape = escapes[index]
        code = int(escape[2], 16)
        if 0xD800 <= code <= 0xDBFF and index + 1 < len(escapes):
            following = escapes[index + 1]
            # A high surrogate directly followed by a low one is a valid pair.
            if following.start() + len(following[1]) - 1 == escape.end() and (
                0xDC00 <= int(following[2], 16) <= 0xDFFF
            ):
                index += 2
                continue
        if 0xD800 <= code <= 0xDFFF:
            backslash = escape.end(1) - 1
            parts += [text[start:backslash], _REPLACEMENT_ESCAPE]
            start = escape.end()
            replaced += 1
        index += 1
    parts.append(text[start:])
    return "".join(parts), replaced


def _repair_document(text: str, result: RepairedLog) -> None:
    try:
        document = json.loads(text)
    except RecursionError:
        # Deeper than Python's parser goes; DuckDB reads the text or names the problem.
        result.document = text
        return
    except ValueError as error:
        raise UnreadableLog(f"not valid JSON ({error})") from error
    records = document.get("Records") if isinstance(document, dict) else None
    has_records = isinstance(document, dict) and "Records" in document
    problem = records_problem(_kind(document), _kind(records) if has_records else None)
    if problem is not None:
        raise UnreadableLog(problem)
    result.document = text


def _kind(value: object) -> str:
    """Return the JSON kind of a parsed value in words, as ``records_problem`` takes it."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


def _repair_lines(text: str, result: RepairedLog) -> None:
    for line in text.split("\n"):
        if not line.strip():
            continue
        result.line_count += 1
        try:
            json.loads(line)
        except RecursionError:
            pass
        except ValueError:
            result.bad_lines += 1
            continue
        result.lines.append(line)
    if result.line_count and result.bad_lines == result.line_count:
        if result.line_count == 1:
            raise UnreadableLog("not valid JSON: its one line is not JSON")
        raise UnreadableLog(f"not valid JSON: none of its {result.line_count} lines is JSON")
