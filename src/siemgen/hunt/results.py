"""Scan results: the records that matched and the record counts of each file."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

REQUIRED_FIELDS: tuple[tuple[str, str], ...] = (
    ("eventtime", "eventTime"),
    ("eventid", "eventID"),
    ("eventsource", "eventSource"),
    ("eventname", "eventName"),
)
"""Athena column and raw name of the fields every CloudTrail record carries."""

REPORTED_FIELDS: tuple[tuple[str, str], ...] = (
    ("eventTime", "eventtime"),
    ("eventID", "eventid"),
    ("eventSource", "eventsource"),
    ("eventName", "eventname"),
    ("awsRegion", "awsregion"),
    ("sourceIPAddress", "sourceipaddress"),
    ("errorCode", "errorcode"),
    ("recipientAccountId", "recipientaccountid"),
)
"""Raw name and Athena column of each top-level field a hit reports, in output order."""

IDENTITY_FIELDS: tuple[tuple[str, str], ...] = (
    ("type", "useridentity.type"),
    ("arn", "useridentity.arn"),
    ("principalId", "useridentity.principalid"),
    ("userName", "useridentity.username"),
    ("invokedBy", "useridentity.invokedby"),
)
"""Raw name and column of each ``userIdentity`` member a hit reports, in output order."""

# The caller as an analyst names it: the ARN, else the service that called on the user's
# behalf, the user name, the principal id, and last the identity type.
_IDENTITY = (
    "CASE WHEN useridentity.arn <> '' THEN useridentity.arn "
    "WHEN useridentity.invokedby <> '' THEN useridentity.invokedby "
    "WHEN useridentity.username <> '' THEN useridentity.username "
    "WHEN useridentity.principalid <> '' THEN useridentity.principalid "
    "ELSE useridentity.type END"
)


def _struct(fields: Sequence[tuple[str, str]]) -> str:
    """Return SQL that packs the given fields into a struct keyed by their raw names."""
    return "struct_pack(" + ", ".join(f'"{raw}" := {column}' for raw, column in fields) + ")"


_HIT_FIELDS = (
    *REPORTED_FIELDS,
    ("identity", _IDENTITY),
    ("userIdentity", _struct(IDENTITY_FIELDS)),
    ("file", "source_file"),
)

HIT_OBJECT = f"CAST(to_json({_struct(_HIT_FIELDS)}) AS VARCHAR)"
"""SQL that renders the reported fields of a record and its log file as one compact JSON object.

DuckDB renders it in the scan, once per match: the JSON lines output writes the text as it
is, and the other formats parse it. DuckDB writes JSON as ``json.dumps`` does with
``ensure_ascii=False`` and ``separators=(",", ":")``, but it spells the hex digits of a few
control characters in upper case (``\\u001B``). Both spellings parse to the same string.
"""

HIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_time", "eventtime"),
    ("event_id", "eventid"),
    ("fields_json", HIT_OBJECT),
)
"""Field of ``Hit`` and the SQL expression that fills it, in the order of the fields."""

# Bit i of a BIGINT mask column is set when rule i matched the row.
MASK_BITS = 63


class Hit(NamedTuple):
    """One record that matched at least one rule."""

    file: str
    event_time: str | None
    event_id: str | None
    fields_json: str
    """The reported fields and the file as one JSON object (``HIT_OBJECT``)."""
    rules: tuple[int, ...]
    """Indexes of the matching rules in the hunt's detection list."""

    def fields(self) -> dict[str, Any]:
        """Return the reported fields by CloudTrail name, with ``identity`` and ``file``."""
        fields: dict[str, Any] = json.loads(self.fields_json)
        return fields


@functools.lru_cache(maxsize=4096)
def rule_indexes(masks: tuple[int, ...]) -> tuple[int, ...]:
    """Return the indexes of the rules whose bits are set in the mask columns.

    Most records match one rule or a few combinations, so the results are memoised.
    """
    rules: list[int] = []
    for word, mask in enumerate(masks):
        remaining = int(mask)
        while remaining:
            lowest = remaining & -remaining
            rules.append(word * MASK_BITS + lowest.bit_length() - 1)
            remaining ^= lowest
    return tuple(rules)


def hit_from_row(file: str, row: Sequence[Any]) -> Hit:
    """Build a Hit from the three ``HIT_COLUMNS`` values followed by the rule masks."""
    event_time, event_id, fields_json = row[:3]
    return Hit(file, event_time, event_id, fields_json, rule_indexes(tuple(row[3:])))


@dataclass
class FileScan:
    """The record counts and hits of one file."""

    name: str
    records: int = 0
    in_range: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    """Raw name of each required field to the number of records that lack it."""
    empty_records: int = 0
    """Records that have none of the required fields."""
    lines: int = 0
    """Lines that are not blank, counted when the file was repaired."""
    bad_lines: int = 0
    """Lines left out because they are not JSON, when the file was repaired."""
    replacements: int = 0
    """Lone surrogate escapes and byte sequences that are not UTF-8 read as U+FFFD."""


@dataclass
class BatchResult:
    """The files one scan read, and the files it could not read with the reason."""

    files: dict[str, FileScan] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
