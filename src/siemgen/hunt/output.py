"""Write hunt results as a table, JSON lines, CSV or one JSON document, and summarise them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any, TextIO

from siemgen.errors import ConfigError
from siemgen.hunt.detections import Detection
from siemgen.hunt.results import Hit
from siemgen.hunt.run import HuntResult, RuleSet

FORMATS = ("table", "jsonl", "csv", "json")

TABLE_COLUMNS = ("rule", "level", "time", "event", "identity", "source IP", "region")

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
    "file",
)


def check_format(name: str) -> str:
    """Return ``name`` when it is an output format, else raise ConfigError."""
    if name not in FORMATS:
        raise ConfigError(
            f"unknown output format {name!r}; choose one of {', '.join(FORMATS)}",
        )
    return name


def matches(result: HuntResult) -> Iterator[tuple[Detection, Hit]]:
    """Yield one (rule, record) pair per rule that a record matched, in time order."""
    for hit in result.hits:
        for index in hit.rules:
            yield result.detections[index], hit


def _action(hit: Hit) -> str:
    """Return the call as an IAM action name, e.g. ``iam:PutUserPolicy``."""
    service = (hit.event_source or "").split(".", 1)[0]
    name = hit.event_name or ""
    return f"{service}:{name}" if service else name


def _rule_members(detection: Detection) -> dict[str, Any]:
    return {"rule_id": detection.rule_id, "rule": detection.title, "level": detection.level}


def _hit_members(hit: Hit) -> dict[str, Any]:
    return {
        "eventTime": hit.event_time,
        "eventID": hit.event_id,
        "eventSource": hit.event_source,
        "eventName": hit.event_name,
        "awsRegion": hit.region,
        "sourceIPAddress": hit.source_ip,
        "errorCode": hit.error_code,
        "recipientAccountId": hit.account,
        "identity": hit.identity,
        "userIdentity": {
            "type": hit.identity_type,
            "arn": hit.identity_arn,
            "principalId": hit.principal_id,
            "userName": hit.user_name,
            "invokedBy": hit.invoked_by,
        },
        "file": hit.file,
    }


def hit_record(detection: Detection, hit: Hit) -> dict[str, Any]:
    """Return one match as a JSON object with CloudTrail's own field names."""
    return {**_rule_members(detection), **_hit_members(hit)}


def _printable(text: str) -> str:
    """Return ``text`` with control and format characters written as escapes.

    The table goes to a terminal, and a log record is untrusted input: an escape sequence in
    a field could retitle or redraw the terminal, and a bidirectional override could reorder
    what the analyst reads.
    """
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def write_table(result: HuntResult, stream: TextIO) -> None:
    """Write the matches as a table with aligned columns, one row per rule and record."""
    rows = [
        tuple(
            _printable(cell)
            for cell in (
                detection.title,
                detection.level,
                hit.event_time or "",
                _action(hit),
                hit.identity or "",
                hit.source_ip or "",
                hit.region or "",
            )
        )
        for detection, hit in matches(result)
    ]
    if not rows:
        return
    widths = [max(len(row[column]) for row in [TABLE_COLUMNS, *rows]) for column in range(7)]
    for row in [TABLE_COLUMNS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        stream.write("  ".join(cells).rstrip() + "\n")


# The members of ``hit_record`` after the rule's, as JSON with a %s for each value, in the
# order of ``_hit_values``. Filling it in gives the text json.dumps gives, at a third of
# the cost, which matters for hunts with many matches.
_HIT_MEMBERS = (
    '"eventTime": %s, "eventID": %s, "eventSource": %s, "eventName": %s, "awsRegion": %s, '
    '"sourceIPAddress": %s, "errorCode": %s, "recipientAccountId": %s, "identity": %s, '
    '"userIdentity": {"type": %s, "arn": %s, "principalId": %s, "userName": %s, '
    '"invokedBy": %s}, "file": %s}\n'
)


def _hit_values(hit: Hit) -> tuple[str | None, ...]:
    return (
        hit.event_time,
        hit.event_id,
        hit.event_source,
        hit.event_name,
        hit.region,
        hit.source_ip,
        hit.error_code,
        hit.account,
        hit.identity,
        hit.identity_type,
        hit.identity_arn,
        hit.principal_id,
        hit.user_name,
        hit.invoked_by,
        hit.file,
    )


def write_jsonl(result: HuntResult, stream: TextIO) -> None:
    """Write one JSON object per rule and record: ``hit_record`` as one line of JSON."""
    prefixes = [
        json.dumps(_rule_members(detection), ensure_ascii=False)[:-1] + ", "
        for detection in result.detections
    ]
    for hit in result.hits:
        members = _HIT_MEMBERS % tuple(
            "null" if value is None else encode_basestring(value) for value in _hit_values(hit)
        )
        stream.writelines(prefixes[index] + members for index in hit.rules)


def write_csv(result: HuntResult, stream: TextIO) -> None:
    """Write the matches as CSV with a header row."""
    # NOTE: values are written as the logs have them, so a value starting with = or + can run
    # as a formula when a spreadsheet opens the file.
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for detection, hit in matches(result):
        writer.writerow(
            [
                detection.rule_id,
                detection.title,
                detection.level,
                hit.event_time,
                hit.event_id,
                hit.event_source,
                hit.event_name,
                hit.region,
                hit.source_ip,
                hit.error_code,
                hit.account,
                hit.identity,
                hit.file,
            ]
        )


def write_json(result: HuntResult, rule_set: RuleSet, stream: TextIO) -> None:
    """Write one JSON document with the matches, the per-rule counts and the skipped inputs."""
    document = {
        "hits": [hit_record(detection, hit) for detection, hit in matches(result)],
        "rules": [
            {
                "rule_id": detection.rule_id,
                "rule": detection.title,
                "level": detection.level,
                "file": detection.path,
                "hits": count,
            }
            for detection, count in result.rule_counts()
        ],
        "files": len(result.files),
        "cached_files": result.cached_files,
        "records": result.records,
        "records_in_range": result.records_in_range,
        "skipped": [
            {"path": str(skipped.path), "reason": skipped.reason} for skipped in result.skipped
        ],
        "rule_errors": [str(error) for error in rule_set.errors],
    }
    stream.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def write_results(
    result: HuntResult, rule_set: RuleSet, output_format: str, stream: TextIO
) -> None:
    """Write the results in ``output_format`` (one of ``FORMATS``)."""
    if output_format == "table":
        write_table(result, stream)
    elif output_format == "jsonl":
        write_jsonl(result, stream)
    elif output_format == "csv":
        write_csv(result, stream)
    else:
        write_json(result, rule_set, stream)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def summary_lines(result: HuntResult, rule_set: RuleSet) -> list[str]:
    """Return the per-rule counts and the totals, for stderr."""
    lines = []
    counted = sorted(
        ((count, detection) for detection, count in result.rule_counts() if count),
        key=lambda item: (-item[0], item[1].title),
    )
    width = max((len(str(count)) for count, _ in counted), default=1)
    for count, detection in counted:
        lines.append(f"{count:>{width}}  {detection.title} ({detection.level})")
    quiet = len(result.detections) - len(counted)
    if quiet:
        lines.append(f"{quiet} of {len(result.detections)} rules matched nothing")

    files = f"{len(result.files)} files"
    if result.cached_files:
        files += f" ({result.cached_files} from the cache)"
    totals = [f"{result.records} records in {files}", f"{len(result.hits)} matching records"]
    if result.records_in_range != result.records:
        totals.insert(1, f"{result.records_in_range} in the time range")
    lines.append("; ".join(totals))

    if result.pruned_folders or result.pruned_files:
        lines.append(
            f"left out by date: {_count(result.pruned_folders, 'folder')} and "
            f"{_count(result.pruned_files, 'file')} outside the time range"
        )

    notes = []
    if result.skipped:
        notes.append(f"{len(result.skipped)} files or folders skipped")
    if rule_set.errors:
        notes.append(f"{len(rule_set.errors)} rules could not run")
    if rule_set.other_logsources:
        notes.append(f"{rule_set.other_logsources} rules for other log sources left out")
    if notes:
        lines.append("; ".join(notes))
    return lines
