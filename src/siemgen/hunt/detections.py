"""Turn loaded Sigma rules into DuckDB conditions over the Athena CloudTrail columns."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from siemgen.errors import ConversionError
from siemgen.hunt.schema import ColumnPath, referenced_paths, select_columns
from siemgen.rules import RuleFile

if TYPE_CHECKING:
    from siemgen.convert import Converter

logger = logging.getLogger(__name__)

DETECTIONS_FILE = "detections.json"
DETECTIONS_VERSION = 1
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


def _truth(node: exp.Expr) -> exp.Expr:
    """Rewrite AND and OR as CASE so DuckDB skips the right side when the left decides it.

    DuckDB evaluates both sides of AND and OR on every row when the result is a column, but
    a CASE branch only on the rows that reach it. The rewrite keeps which rows are TRUE, not
    the NULLs, so it applies only where the result is read as a truth value: the top of a
    condition and the first argument of ``COALESCE(x, FALSE)``.
    """
    if isinstance(node, exp.Paren):
        return _truth(node.this)
    if isinstance(node, exp.And):
        return exp.Case(
            ifs=[exp.If(this=_truth(node.this), true=_truth(node.expression))],
            default=exp.false(),
        )
    if isinstance(node, exp.Or):
        return exp.Case(
            ifs=[exp.If(this=_truth(node.this), true=exp.true())],
            default=_truth(node.expression),
        )
    if isinstance(node, exp.Not):
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        if _is_false_coalesce(inner):
            return exp.Not(this=_coalesce_truth(inner))
        return node
    if _is_false_coalesce(node):
        return _coalesce_truth(node)
    return node


def _is_false_coalesce(node: exp.Expr) -> bool:
    if not isinstance(node, exp.Coalesce):
        return False
    rest = node.expressions
    return len(rest) == 1 and isinstance(rest[0], exp.Boolean) and not rest[0].this


def _coalesce_truth(node: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=_truth(node.this), expressions=[exp.false()])


def short_circuit(condition: str) -> str:
    """Return a DuckDB condition that is TRUE on exactly the rows where ``condition`` is."""
    try:
        tree = sqlglot.parse_one(condition, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise ConversionError(f"the DuckDB condition does not parse: {error}") from error
    return str(_truth(tree).sql(dialect="duckdb"))


def compile_rule(rule_file: RuleFile, converter: Converter) -> Detection:
    """Convert one rule to a DuckDB condition, raising ConversionError when it cannot run."""
    from siemgen.engines.duckdb import to_duckdb

    athena_sql = converter.convert(rule_file, "athena", "sql", backend_format="condition")
    try:
        condition = to_duckdb(athena_sql)
        paths = referenced_paths(condition)
        select_columns(paths)
        fast = short_circuit(condition)
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
    )


def code_fingerprint() -> str:
    """Hash siemgen's own files and the versions of the packages that shape a conversion."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(str(DETECTIONS_VERSION).encode())
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    for name in _CONVERSION_PACKAGES:
        try:
            digest.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=absent".encode())
    return digest.hexdigest()


class DetectionCache:
    """Converted rules kept in a JSON file, valid while siemgen's code stays the same."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / DETECTIONS_FILE
        self.fingerprint = code_fingerprint()
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
    def key(rule_file: RuleFile) -> str:
        """Return the entry key of a rule: a hash of the rule file's path and text."""
        digest = hashlib.sha256(str(rule_file.path.resolve()).encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        digest.update(rule_file.text.encode("utf-8"))
        return digest.hexdigest()

    def get(self, rule_file: RuleFile) -> Detection | None:
        """Return the cached detection of a rule file, or None."""
        item = self.entries.get(self.key(rule_file))
        if item is None:
            return None
        try:
            return Detection(
                rule_id=str(item["rule_id"]),
                title=str(item["title"]),
                level=str(item["level"]),
                path=str(rule_file.path),
                condition=str(item["condition"]),
                fast_condition=str(item["fast_condition"]),
                paths=frozenset(tuple(str(part) for part in path) for path in item["paths"]),
            )
        except (KeyError, TypeError):
            return None

    def put(self, rule_file: RuleFile, detection: Detection) -> None:
        """Store the detection of a rule file."""
        self.entries[self.key(rule_file)] = {
            "rule_id": detection.rule_id,
            "title": detection.title,
            "level": detection.level,
            "condition": detection.condition,
            "fast_condition": detection.fast_condition,
            "paths": sorted(list(path) for path in detection.paths),
        }
        self.changed = True

    def save(self) -> None:
        """Write the file atomically if an entry was added; OSError propagates."""
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        data = {
            "version": DETECTIONS_VERSION,
            "fingerprint": self.fingerprint,
            "rules": self.entries,
        }
        partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        partial.replace(self.path)
        self.changed = False


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
    for rule_file in rule_files:
        cached = cache.get(rule_file) if cache is not None else None
        if cached is not None:
            detections.append(cached)
            continue
        if active is None:
            from siemgen.convert import Converter

            active = Converter()
        try:
            detection = compile_rule(rule_file, active)
        except ConversionError as error:
            logger.debug("rule %s cannot run in a hunt: %s", rule_file.path, error)
            errors.append(error)
            continue
        detections.append(detection)
        if cache is not None:
            cache.put(rule_file, detection)
    return detections, errors
