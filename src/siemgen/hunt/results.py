"""Scan results: the records that matched and the record counts of each file."""

from __future__ import annotations

import functools
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

# Bit i of a BIGINT mask column is set when rule i matched the row.
MASK_BITS = 63


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
    """Build a Hit from the ``HIT_COLUMNS`` values followed by the rule masks."""
    count = len(HIT_COLUMNS)
    return Hit._make((file, *row[:count], rule_indexes(tuple(row[count:]))))


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
    hits: list[Hit] = field(default_factory=list)


@dataclass
class BatchResult:
    """The files one scan read, and the files it could not read with the reason."""

    files: dict[str, FileScan] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
