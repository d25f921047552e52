"""Write hunt results as a table, JSON lines, CSV or one JSON document, and summarise them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, TextIO

from siemgen.errors import ConfigError
from siemgen.hunt.detections import Detection
from siemgen.hunt.results import IDENTITY_FIELDS, REPORTED_FIELDS, Hit
from siemgen.hunt.run import HuntResult, RuleSet
from siemgen.terminal import counted, padded, printable, shortened, width

FORMATS = ("table", "jsonl", "csv", "json")

TABLE_COLUMNS = ("rule", "level", "time", "event", "identity", "source IP", "region")

TABLE_CELL_LIMIT = 100
"""The maximum terminal columns of a table cell; longer values are cut with an ellipsis."""

CSV_COLUMNS = (
    "rule_id",
    "rule",
    "level",
    "event_time",
    "event_id",
    "event_source",
    "event_name",
    "region",
    "source_ip",
    "error_code",
    "account",
    "identity",
    "identity_type",
    "identity_arn",
    "principal_id",
    "user_name",
    "invoked_by",
    "file",
)


def _csv_values(fields: dict[str, Any]) -> list[Any]:
    """Return the values of the CSV columns after the rule's three, in column order."""
    caller = fields["userIdentity"]
    return [
        *(fields[raw] for raw, _ in REPORTED_FIELDS),
        fields["identity"],
        *(caller[raw] for raw, _ in IDENTITY_FIELDS),
        fields["file"],
    ]


# The format an --output file's suffix names when --format is not given.
_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def default_format(output_name: str | None, terminal: bool) -> str:
    """Return the format of a hunt without --format.

    An output file's suffix names it, such as ``hits.csv``. Otherwise the results are a table
    on a terminal and JSON lines anywhere else.
    """
    if output_name is not None:
        suffix = "." + output_name.rsplit(".", 1)[-1].lower() if "." in output_name else ""
        return _SUFFIX_FORMATS.get(suffix, "jsonl")
    return "table" if terminal else "jsonl"


def check_format(name: str) -> str:
    """Return ``name`` when it is an output format, else raise ConfigError."""
    if name not in FORMATS:
        raise ConfigError(
            f"unknown output format {name!r}; choose one of {', '.join(FORMATS)}",
        )
    return name


def _action(fields: dict[str, Any]) -> str:
    """Return the call as an IAM action name, e.g. ``iam:PutUserPolicy``."""
    service = (fields["eventSource"] or "").split(".", 1)[0]
    name = fields["eventName"] or ""
    return f"{service}:{name}" if service else name


def _rule_members(detection: Detection) -> dict[str, Any]:
    return {"rule_id": detection.rule_id, "rule": detection.title, "level": detection.level}


def hit_records(hit: Hit, detections: Sequence[Detection]) -> list[dict[str, Any]]:
    """Return the matches of one record, one JSON object per rule, with CloudTrail's names."""
    fields = hit.fields()
    return [{**_rule_members(detections[index]), **fields} for index in hit.rules]


def write_table(result: HuntResult, stream: TextIO) -> None:
    """Write the matches as a table with aligned columns, one row per rule and record.

    A value longer than ``TABLE_CELL_LIMIT`` columns is cut, so that one huge field cannot
    widen every row; the other formats keep every value whole.
    """
    rows: list[tuple[str, ...]] = []
    for hit in result.hits:
        fields = hit.fields()
        record = (
            fields["eventTime"] or "",
            _action(fields),
            fields["identity"] or "",
            fields["sourceIPAddress"] or "",
            fields["awsRegion"] or "",
        )
        for index in hit.rules:
            detection = result.detections[index]
            cells = (detection.title, detection.level, *record)
            rows.append(tuple(shortened(printable(cell), TABLE_CELL_LIMIT) for cell in cells))
    if not rows:
        return
    widths = [max(width(row[column]) for row in [TABLE_COLUMNS, *rows]) for column in range(7)]
    for row in [TABLE_COLUMNS, *rows]:
        line = [padded(cell, columns) for cell, columns in zip(row, widths, strict=True)]
        stream.write("  ".join(line).rstrip() + "\n")


def jsonl_bytes(result: HuntResult) -> bytes:
    """Return one compact JSON object per rule and record, as ``hit_records`` gives them."""
    prefixes = [
        json.dumps(_rule_members(detection), ensure_ascii=False, separators=(",", ":"))[:-1] + ","
        for detection in result.detections
    ]
    return result.matches.json_lines(prefixes)


# A spreadsheet reads a cell that starts with one of these as a formula. OWASP ASVS
# requirement 1.2.10 lists them, with a leading single quote as the escape.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


def spreadsheet_text(value: Any) -> Any:
    """Return a CSV cell that a spreadsheet shows as text, never runs as a formula.

    Text that starts with a formula character gets a leading single quote, which spreadsheets
    take as the mark of a text cell.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(result: HuntResult, stream: TextIO) -> None:
    """Write the matches as CSV (RFC 4180) with a header row.

    Log values and rule titles are untrusted, so each cell passes through ``spreadsheet_text``.
    """
    # Rows end in CRLF as RFC 4180 has them, so the writer quotes a value holding a lone
    # carriage return. Unquoted, a CSV reader would end the row there.
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for hit in result.hits:
        values = _csv_values(hit.fields())
        for index in hit.rules:
            detection = result.detections[index]
            row = [detection.rule_id, detection.title, detection.level, *values]
            writer.writerow([spreadsheet_text(value) for value in row])


def _unicode(value: object) -> str:
    """Return ``str(value)`` with the bytes of a non-UTF-8 file name as ``\\x`` escapes.

    Python keeps such bytes in a path as lone surrogates, which UTF-8 output cannot encode.
    """
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def write_json(result: HuntResult, rule_set: RuleSet, stream: TextIO) -> None:
    """Write one JSON document with the matches, the per-rule counts and the skipped inputs."""
    document = {
        "hits": [record for hit in result.hits for record in hit_records(hit, result.detections)],
        "rules": [
            {
                "rule_id": detection.rule_id,
                "rule": detection.title,
                "level": detection.level,
                "file": _unicode(detection.path),
                "hits": count,
            }
            for detection, count in result.rule_counts()
        ],
        "files": len(result.files),
        "cached_files": result.cached_files,
        "records": result.records,
        "records_in_range": result.records_in_range,
        "skipped": [
            {"path": _unicode(skipped.path), "reason": _unicode(skipped.reason)}
            for skipped in result.skipped
        ],
        "warnings": [_unicode(warning) for warning in result.warnings],
        "rule_errors": [_unicode(error) for error in rule_set.errors],
    }
    stream.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def render_results(result: HuntResult, rule_set: RuleSet, output_format: str) -> bytes:
    """Return the results in ``output_format`` (one of ``FORMATS``) as UTF-8."""
    if output_format == "jsonl":
        return jsonl_bytes(result)
    text = io.StringIO()
    if output_format == "table":
        write_table(result, text)
    elif output_format == "csv":
        write_csv(result, text)
    else:
        write_json(result, rule_set, text)
    return text.getvalue().encode("utf-8")


def summary_lines(result: HuntResult, rule_set: RuleSet) -> list[str]:
    """Return the per-rule counts and the totals, for stderr."""
    lines = []
    matched = sorted(
        ((count, detection) for detection, count in result.rule_counts() if count),
        key=lambda item: (-item[0], item[1].title),
    )
    width = max((len(str(count)) for count, _ in matched), default=1)
    for count, detection in matched:
        lines.append(f"{count:>{width}}  {detection.title} ({detection.level})")
    quiet = len(result.detections) - len(matched)
    if quiet:
        lines.append(f"{quiet} of {counted(len(result.detections), 'rule')} matched nothing")

    files = counted(len(result.files), "file")
    if result.cached_files:
        files += f" ({result.cached_files} from the cache)"
    totals = [
        f"{counted(result.records, 'record')} in {files}",
        counted(result.matches.count(), "matching record"),
    ]
    if result.records_in_range != result.records:
        totals.insert(1, f"{result.records_in_range} in the time range")
    lines.append("; ".join(totals))

    if result.pruned_folders or result.pruned_files:
        lines.append(
            f"left out by date: {counted(result.pruned_folders, 'folder')} and "
            f"{counted(result.pruned_files, 'file')} outside the time range"
        )

    notes = []
    if result.skipped:
        skipped = counted(len(result.skipped), "file or folder", "files or folders")
        notes.append(f"{skipped} skipped")
    if result.files_read_in_part:
        notes.append(f"{counted(result.files_read_in_part, 'file')} read in part")
    if rule_set.errors:
        notes.append(f"{counted(len(rule_set.errors), 'rule')} could not run")
    if rule_set.other_logsources:
        notes.append(f"{counted(rule_set.other_logsources, 'rule')} for other log sources left out")
    if notes:
        lines.append("; ".join(notes))
    return lines
