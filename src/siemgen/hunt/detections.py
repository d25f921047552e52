"""Turn loaded Sigma rules into DuckDB conditions over the Athena CloudTrail columns."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from siemgen.convert import Converter
from siemgen.engines.duckdb import to_duckdb
from siemgen.errors import ConversionError
from siemgen.hunt.schema import ColumnPath, referenced_paths, select_columns
from siemgen.rules import RuleFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    """One rule ready to run: its identity, its DuckDB condition and the columns it reads."""

    rule_id: str
    title: str
    level: str
    path: str
    condition: str
    paths: frozenset[ColumnPath]


def compile_rule(rule_file: RuleFile, converter: Converter) -> Detection:
    """Convert one rule to a DuckDB condition, raising ConversionError when it cannot run."""
    athena_sql = converter.convert(rule_file, "athena", "sql", backend_format="condition")
    try:
        condition = to_duckdb(athena_sql)
        paths = referenced_paths(condition)
        select_columns(paths)
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
        paths=frozenset(paths),
    )


def compile_rules(
    rule_files: Iterable[RuleFile], converter: Converter | None = None
) -> tuple[list[Detection], list[ConversionError]]:
    """Convert every rule; a rule that fails is returned with its error and the rest still run."""
    active = converter or Converter()
    detections: list[Detection] = []
    errors: list[ConversionError] = []
    for rule_file in rule_files:
        try:
            detections.append(compile_rule(rule_file, active))
        except ConversionError as error:
            logger.debug("rule %s cannot run in a hunt: %s", rule_file.path, error)
            errors.append(error)
    return detections, errors
