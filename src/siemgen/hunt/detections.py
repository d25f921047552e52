"""Turn loaded Sigma rules into DuckDB conditions over the Athena CloudTrail columns."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siemgen.errors import ConversionError, RuleLoadError
from siemgen.fingerprint import code_fingerprint
from siemgen.hunt.schema import OUTPUT_PATHS, ColumnPath, referenced_paths, select_columns
from siemgen.hunt.screen import Screen
from siemgen.hunt.sql import text_records
from siemgen.output import atomic_write
from siemgen.rules import RuleFile, read_text, safe_stem

if TYPE_CHECKING:
    import duckdb

    from siemgen.convert import Converter

logger = logging.getLogger(__name__)

DETECTIONS_FILE = "detections.json"
DETECTIONS_VERSION = 4
# The member of a cache entry that contains the SHA-256 digest of the entry's other members.
_DIGEST = "digest"
# The cache entry of a rule for a log source other than AWS CloudTrail.
_OTHER_LOGSOURCE = "other_logsource"
# Packages whose behaviour changes the conversion, besides siemgen's own files.
_CONVERSION_PACKAGES = ("pySigma", "sqlglot", "duckdb")


@dataclass(frozen=True)
class Detection:
    """One rule ready to run: its identity, its DuckDB condition and the columns it reads."""

    rule_id: str
    title: str
    level: str
    path: str
    condition: str
    """The rule as a DuckDB boolean expression over the Athena CloudTrail columns."""
    fast_condition: str
    """``condition`` rewritten by ``short_circuit``: TRUE on exactly the same rows."""
    paths: frozenset[ColumnPath]
    screen: Screen | None = None
    """Column tests such that every record the rule matches passes one of them, or None."""


class ConditionCheck:
    """A DuckDB connection that evaluates rule conditions on one record without fields.

    DuckDB compiles a condition's regular expressions when it first evaluates the condition,
    even in a branch that no record reaches. A pattern that RE2 rejects, such as a lookahead or
    a backreference, would make the hunt's scan fail on every log file, so the rule is
    rejected when it is converted instead.
    """

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def check(self, condition: str, paths: Iterable[ColumnPath]) -> None:
        """Raise ConversionError when DuckDB cannot evaluate ``condition``."""
        import duckdb

        from siemgen.engines.duckdb import error_message, prepare_connection

        if self._con is None:
            self._con = duckdb.connect(":memory:", config={"autoload_known_extensions": False})
            prepare_connection(self._con)
        structure = select_columns([*paths, *OUTPUT_PATHS]).key()
        record = text_records("''", "(SELECT '{}' AS json) AS texts", structure)
        try:
            self._con.execute(f"SELECT {condition} FROM ({record}) AS records").fetchall()
        except duckdb.Error as error:
            raise ConversionError(
                f"DuckDB cannot evaluate the rule's condition: {error_message(error)}",
                hint="write regular expressions in RE2 syntax, which has no lookaround, "
                "backreferences or possessive quantifiers",
            ) from error


def compile_rule(
    rule_file: RuleFile, converter: Converter, check: ConditionCheck | None = None
) -> Detection:
    """Convert one rule to a DuckDB condition, raising ConversionError when it cannot run.

    ``check`` evaluates the condition once; a caller that converts many rules passes one
    ConditionCheck for all of them.
    """
    from siemgen.engines.duckdb import to_duckdb
    from siemgen.hunt.rewrite import screen, short_circuit

    athena_sql = converter.convert(rule_file, "athena", "sql", backend_format="condition")
    try:
        condition = to_duckdb(athena_sql)
        paths = referenced_paths(condition)
        select_columns(paths)
        fast = short_circuit(condition)
        rule_screen = screen(condition)
        (check or ConditionCheck()).check(fast, paths)
    except ConversionError as error:
        error.path = error.path or rule_file.path
        error.rule = error.rule or rule_file.title
        error.target = error.target or "hunt"
        raise
    level = rule_file.rule.level.name.lower() if rule_file.rule.level else ""
    return Detection(
        rule_id=rule_file.rule_id,
        title=rule_file.title,
        level=level,
        path=str(rule_file.path),
        condition=condition,
        fast_condition=fast,
        paths=frozenset(paths),
        screen=rule_screen,
    )


class DetectionCache:
    """Converted rules kept in a JSON file, valid while siemgen's code stays the same."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / DETECTIONS_FILE
        self.fingerprint = code_fingerprint(
            f"detections-{DETECTIONS_VERSION}", packages=_CONVERSION_PACKAGES
        )
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if (
            isinstance(data, dict)
            and data.get("fingerprint") == self.fingerprint
            and isinstance(data.get("rules"), dict)
        ):
            self.entries = data["rules"]

    @staticmethod
    def key(path: Path, text: str) -> str:
        """Return the entry key of a rule: a hash of the rule file's path and text."""
        digest = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        digest.update(text.encode("utf-8"))
        return digest.hexdigest()

    def get(self, rule_file: RuleFile) -> Detection | None:
        """Return the cached detection of a rule file, or None."""
        item = self.entries.get(self.key(rule_file.path, rule_file.text))
        return None if item is None else _detection(item, rule_file.path)

    def put(self, rule_file: RuleFile, detection: Detection) -> None:
        """Store the detection of a rule file."""
        entry: dict[str, Any] = {
            "rule_id": detection.rule_id,
            "title": detection.title,
            "level": detection.level,
            "condition": detection.condition,
            "fast_condition": detection.fast_condition,
            "paths": sorted(list(path) for path in detection.paths),
            "screen": _screen_item(detection.screen),
        }
        entry[_DIGEST] = _entry_digest(entry)
        self.entries[self.key(rule_file.path, rule_file.text)] = entry
        self.changed = True

    def put_other_logsource(self, rule_file: RuleFile) -> None:
        """Record that a rule file is for a log source a hunt leaves out."""
        self.entries[self.key(rule_file.path, rule_file.text)] = {_OTHER_LOGSOURCE: True}
        self.changed = True

    def rule_set(self, rule_paths: Sequence[Path]) -> tuple[list[Detection], int] | None:
        """Return the detections of the rule files and how many are for other log sources.

        A warm hunt takes this path. It reads each file's text and nothing else, without
        parsing YAML or importing pySigma. It returns None unless every file has an entry,
        so that a new, changed or broken rule goes through the loader, which reports it.
        """
        detections: list[Detection] = []
        others = 0
        stems: set[str] = set()
        for path in rule_paths:
            stem = safe_stem(path)
            if stem in stems:
                return None
            stems.add(stem)
            try:
                text = read_text(path)
            except RuleLoadError:
                return None
            item = self.entries.get(self.key(path, text))
            if item is None:
                return None
            if item.get(_OTHER_LOGSOURCE) is True:
                others += 1
                continue
            detection = _detection(item, path)
            if detection is None:
                return None
            detections.append(detection)
        return detections, others

    def save(self) -> None:
        """Write the file atomically if an entry was added; OSError propagates."""
        if not self.changed:
            return
        data = {
            "version": DETECTIONS_VERSION,
            "fingerprint": self.fingerprint,
            "rules": self.entries,
        }
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        atomic_write(self.path, text.encode("utf-8"))
        self.changed = False


def _entry_digest(entry: dict[str, Any]) -> str:
    """Return the SHA-256 digest of a cache entry's members other than the digest itself."""
    members = {name: value for name, value in entry.items() if name != _DIGEST}
    return hashlib.sha256(json.dumps(members, sort_keys=True).encode("utf-8")).hexdigest()


def _screen_item(screen: Screen | None) -> dict[str, Any] | None:
    """Return a screen as JSON members, or None."""
    if screen is None:
        return None
    return {
        "values": [[column, list(texts)] for column, texts in screen.values],
        "tests": list(screen.tests),
    }


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(text, str) for text in value)


def _screen_from_item(item: Any) -> Screen | None:
    """Return the screen in a cache entry's member; raise ValueError when it is damaged."""
    if item is None:
        return None
    if not isinstance(item, dict) or not _is_texts(item.get("tests")):
        raise ValueError("damaged screen")
    values = item.get("values")
    if not isinstance(values, list) or not all(
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and _is_texts(pair[1])
        for pair in values
    ):
        raise ValueError("damaged screen")
    return Screen(
        values=tuple((column, tuple(texts)) for column, texts in values),
        tests=tuple(item["tests"]),
    )


def _detection(item: dict[str, Any], path: Path) -> Detection | None:
    """Return the Detection in a cache entry, or None when the entry is damaged.

    A damaged entry (a member missing or of the wrong type, content that does not match its
    digest, a column the table lacks) makes the hunt convert the rule again. The digest is no
    signature: an edit that also recomputes it is trusted, like the rest of the cache folder.
    """
    if item.get(_DIGEST) != _entry_digest(item):
        return None
    texts = ("rule_id", "title", "level", "condition", "fast_condition")
    if not all(isinstance(item.get(name), str) for name in texts):
        return None
    columns = item.get("paths")
    if not isinstance(columns, list) or not all(
        isinstance(column, list) and column and all(isinstance(part, str) for part in column)
        for column in columns
    ):
        return None
    try:
        screen = _screen_from_item(item.get("screen"))
    except ValueError:
        return None
    detection = Detection(
        rule_id=item["rule_id"],
        title=item["title"],
        level=item["level"],
        path=str(path),
        condition=item["condition"],
        fast_condition=item["fast_condition"],
        paths=frozenset(tuple(column) for column in columns),
        screen=screen,
    )
    try:
        select_columns(detection.paths)
    except ConversionError:
        return None
    return detection


def compile_rules(
    rule_files: Iterable[RuleFile],
    converter: Converter | None = None,
    cache: DetectionCache | None = None,
) -> tuple[list[Detection], list[ConversionError]]:
    """Convert every rule; a rule that fails is returned with its error and the rest still run.

    With ``cache``, a rule converted before with the same text and the same siemgen code is
    taken from it, and pySigma is not loaded at all when every rule is.
    """
    detections: list[Detection] = []
    errors: list[ConversionError] = []
    active = converter
    check = ConditionCheck()
    for rule_file in rule_files:
        cached = cache.get(rule_file) if cache is not None else None
        if cached is not None:
            detections.append(cached)
            continue
        if active is None:
            from siemgen.convert import Converter

            active = Converter()
        try:
            detection = compile_rule(rule_file, active, check)
        except ConversionError as error:
            logger.debug("rule %s cannot run in a hunt: %s", rule_file.path, error)
            errors.append(error)
            continue
        detections.append(detection)
        if cache is not None:
            cache.put(rule_file, detection)
    return detections, errors
