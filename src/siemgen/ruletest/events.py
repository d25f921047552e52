"""Load and validate the test events stored beside a rule in ``<stem>.tests.json``.

``docs/rule-format.md`` describes the layout. The file has a ``groups`` list, and each group
has a ``name``, a ``reason``, an ``expect`` verdict and ``events``. The verdict applies to every
target, or is a mapping from target to verdict with ``default`` for the rest. Each event is a
``reason`` and one raw CloudTrail ``record`` with a unique ``eventID``. The validator reports
every problem it finds, each with the JSON path of the offending value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siemgen.errors import SiemgenError
from siemgen.rules import TESTS_SUFFIX

TARGETS = ("athena", "elastic", "splunk", "cloudwatch")
MATCH = "match"
NO_MATCH = "no-match"
VERDICTS = (MATCH, NO_MATCH)
DEFAULT_KEY = "default"
# Test files contain pasted CloudTrail records, and this limit is far above any real one.
MAX_TESTS_BYTES = 16 * 1024 * 1024

_GROUP_NAME = re.compile(r"[A-Za-z0-9-]+")
_FILE_KEYS = ("groups",)
_GROUP_KEYS = ("name", "reason", "expect", "events")
_EVENT_KEYS = ("reason", "record")


class TestFileError(SiemgenError):
    """A test file cannot be read or does not follow the test file layout."""

    __test__ = False

    def __init__(self, path: Path, problems: list[str]) -> None:
        first = problems[0] if problems else "invalid test file"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"invalid test file: {first}{more}",
            path=path,
            hint="see 'Test events' in docs/rule-format.md",
        )
        self.problems = problems


@dataclass(frozen=True)
class TestEvent:
    """One CloudTrail record and why the test includes it."""

    __test__ = False

    reason: str
    record: Mapping[str, Any]

    @property
    def event_id(self) -> str:
        """Return the record's eventID, which names the record in results."""
        return str(self.record["eventID"])


@dataclass(frozen=True)
class TestGroup:
    """Records that every target (or each named target) must match, or must not match."""

    __test__ = False

    name: str
    reason: str
    verdicts: Mapping[str, str]
    events: tuple[TestEvent, ...]

    def expects_match(self, target: str) -> bool:
        """Return whether the group's records must match on ``target``."""
        return self.verdicts[target] == MATCH


@dataclass
class TestFile:
    """The parsed test file of one rule."""

    __test__ = False

    path: Path
    groups: list[TestGroup] = field(default_factory=list)

    def events(self) -> Iterator[tuple[TestGroup, TestEvent]]:
        """Yield every event with its group, in file order."""
        for group in self.groups:
            for event in group.events:
                yield group, event

    def records(self) -> list[Mapping[str, Any]]:
        """Return every record in file order."""
        return [event.record for _, event in self.events()]


def rule_tests_path(rule_path: Path) -> Path:
    """Return where the test file of a rule file lives: same folder and stem, ``.tests.json``."""
    return rule_path.with_name(rule_path.stem + TESTS_SUFFIX)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_TESTS_BYTES:
            raise TestFileError(
                path, [f"file is {size} bytes, more than the limit of {MAX_TESTS_BYTES}"]
            )
        raw = path.read_bytes()
    except OSError as error:
        raise TestFileError(path, [f"cannot read file: {error.strerror}"]) from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TestFileError(
            path, [f"file is not valid UTF-8 (at byte offset {error.start}, counting from 0)"]
        ) from error
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except RecursionError as error:
        raise TestFileError(path, ["JSON nested too deeply to read"]) from error
    except json.JSONDecodeError as error:
        raise TestFileError(
            path, [f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"]
        ) from error
    except ValueError as error:
        raise TestFileError(path, [f"invalid JSON: {error}"]) from error
    depth = _json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise TestFileError(
            path,
            [f"JSON nests {depth} levels deep, more than the limit of {MAX_JSON_DEPTH}"],
        )
    return data


# CloudTrail records nest a few levels; the engines walk records recursively.
MAX_JSON_DEPTH = 64


def _json_depth(data: Any) -> int:
    """Return how deeply lists and objects nest in parsed JSON, without recursion."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: list[Any] = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


class _Validator:
    """Collect every layout problem of one parsed test file."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.event_ids: dict[str, str] = {}
        self.group_names: set[str] = set()

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def keys(self, value: Mapping[str, Any], where: str, required: tuple[str, ...]) -> bool:
        """Report missing and unknown keys; return whether every required key is there."""
        missing = [key for key in required if key not in value]
        unknown = [key for key in value if key not in required]
        for key in missing:
            self.fail(where, f"missing key {key!r}")
        for key in unknown:
            self.fail(where, f"unknown key {key!r}; allowed keys: {', '.join(required)}")
        return not missing

    def text(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"must be a non-empty string, not {value!r}")
            return None
        return value

    def document(self, data: Any) -> list[TestGroup]:
        if not isinstance(data, dict):
            self.fail("$", f"the file must hold a JSON object, not {type(data).__name__}")
            return []
        if not self.keys(data, "$", _FILE_KEYS):
            return []
        groups = data["groups"]
        if not isinstance(groups, list) or not groups:
            self.fail("groups", "must be a non-empty list of groups")
            return []
        parsed = [self.group(group, f"groups[{index}]") for index, group in enumerate(groups)]
        return [group for group in parsed if group is not None]

    def group(self, data: Any, where: str) -> TestGroup | None:
        if not isinstance(data, dict):
            self.fail(where, f"a group must be a JSON object, not {type(data).__name__}")
            return None
        if not self.keys(data, where, _GROUP_KEYS):
            return None
        name = data["name"]
        if not isinstance(name, str) or not _GROUP_NAME.fullmatch(name):
            self.fail(f"{where}.name", f"{name!r} must be letters, digits and '-'")
        elif name in self.group_names:
            self.fail(f"{where}.name", f"group name {name!r} is used twice")
        else:
            self.group_names.add(name)
        reason = self.text(data["reason"], f"{where}.reason")
        verdicts = self.expect(data["expect"], f"{where}.expect")
        events_data = data["events"]
        if not isinstance(events_data, list):
            self.fail(f"{where}.events", "must be a list of events")
            return None
        events = [
            self.event(event, f"{where}.events[{index}]") for index, event in enumerate(events_data)
        ]
        if reason is None or verdicts is None or not isinstance(name, str):
            return None
        return TestGroup(
            name=name,
            reason=reason,
            verdicts=verdicts,
            events=tuple(event for event in events if event is not None),
        )

    def expect(self, value: Any, where: str) -> dict[str, str] | None:
        if isinstance(value, str):
            if value not in VERDICTS:
                self.fail(where, f"{value!r} is not a verdict; use 'match' or 'no-match'")
                return None
            return dict.fromkeys(TARGETS, value)
        if not isinstance(value, dict) or not value:
            self.fail(where, "must be 'match', 'no-match' or a mapping from target to verdict")
            return None
        verdicts: dict[str, str] = {}
        valid = True
        for key, verdict in value.items():
            if key not in (*TARGETS, DEFAULT_KEY):
                known = ", ".join((*TARGETS, DEFAULT_KEY))
                self.fail(where, f"unknown target {key!r}; known keys: {known}")
                valid = False
            elif verdict not in VERDICTS:
                self.fail(
                    f"{where}.{key}", f"{verdict!r} is not a verdict; use 'match' or 'no-match'"
                )
                valid = False
            else:
                verdicts[key] = verdict
        missing = [target for target in TARGETS if target not in value]
        if missing and DEFAULT_KEY not in value:
            self.fail(where, f"no verdict for {', '.join(missing)}; add 'default' or name them")
            valid = False
        if not valid:
            return None
        return {target: verdicts.get(target, verdicts.get(DEFAULT_KEY, "")) for target in TARGETS}

    def event(self, data: Any, where: str) -> TestEvent | None:
        if not isinstance(data, dict):
            self.fail(where, f"an event must be a JSON object, not {type(data).__name__}")
            return None
        if not self.keys(data, where, _EVENT_KEYS):
            return None
        reason = self.text(data["reason"], f"{where}.reason")
        record = data["record"]
        if not isinstance(record, dict):
            self.fail(f"{where}.record", "must be one CloudTrail record (a JSON object)")
            return None
        event_id = record.get("eventID")
        if not isinstance(event_id, str) or not event_id.strip():
            self.fail(f"{where}.record.eventID", f"must be a non-empty string, not {event_id!r}")
            return None
        if event_id in self.event_ids:
            self.fail(
                f"{where}.record.eventID",
                f"{event_id!r} is already used at {self.event_ids[event_id]}",
            )
            return None
        self.event_ids[event_id] = f"{where}.record.eventID"
        if reason is None:
            return None
        return TestEvent(reason=reason, record=record)


def parse_tests(data: Any, path: Path) -> TestFile:
    """Validate parsed JSON as a test file, raising TestFileError that lists every problem."""
    validator = _Validator()
    groups = validator.document(data)
    if validator.problems:
        raise TestFileError(path, validator.problems)
    return TestFile(path=path, groups=groups)


def load_tests(path: Path) -> TestFile:
    """Read and validate one test file, raising TestFileError that lists every problem."""
    return parse_tests(_read_json(path), path)
