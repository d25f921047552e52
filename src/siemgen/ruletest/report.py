"""Results of a rule-test run: per rule, per target and per record group."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siemgen.errors import SiemgenError
from siemgen.terminal import printable_json

# A target checked by running the rule's query on its records.
RECORDS = "records"
# A target checked by parsing the query, without records.
STRUCTURE = "structure"


def verdict(matches: bool) -> str:
    """Return the test-file word for a verdict."""
    return "match" if matches else "no-match"


@dataclass(frozen=True)
class RecordResult:
    """An engine's verdict on one record, next to the verdict the test file expects."""

    event_id: str
    reason: str
    expected: bool
    actual: bool

    @property
    def ok(self) -> bool:
        """Return whether the engine returned the expected verdict."""
        return self.expected == self.actual

    def describe(self) -> str:
        """Return one line naming the record and both verdicts."""
        return (
            f"record {self.event_id} ({self.reason}): expected {verdict(self.expected)}, "
            f"got {verdict(self.actual)}"
        )


@dataclass
class GroupResult:
    """The records of one test group on one target."""

    name: str
    reason: str
    records: list[RecordResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether every record got its expected verdict."""
        return all(record.ok for record in self.records)

    @property
    def failures(self) -> list[RecordResult]:
        """Return the records whose verdict differs."""
        return [record for record in self.records if not record.ok]


@dataclass
class TargetResult:
    """One target's result for one rule: record groups, or a structure check of the query."""

    target: str
    kind: str
    query: str | None = None
    groups: list[GroupResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Return whether the target ran without problems and every group passed."""
        return not self.problems and all(group.ok for group in self.groups)

    def counts(self) -> tuple[int, int]:
        """Return (records with the expected verdict, records tested)."""
        records = [record for group in self.groups for record in group.records]
        return sum(record.ok for record in records), len(records)

    def status(self) -> str:
        """Return a short status such as ``12/12``, ``ok``, ``FAILED 3/5`` or ``skipped``."""
        if self.skipped is not None:
            return "skipped"
        if self.problems:
            return "FAILED"
        if self.kind == STRUCTURE:
            return "ok"
        passed, total = self.counts()
        return f"{passed}/{total}" if passed == total else f"FAILED {passed}/{total}"


@dataclass
class RuleResult:
    """Every target's result for one rule, and the problems of its test file."""

    path: Path
    title: str
    stem: str
    tests_path: Path | None = None
    targets: list[TargetResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skip_reason: str | None = None

    @property
    def ok(self) -> bool:
        """Return whether the rule's test file is valid and every target passed."""
        return not self.problems and all(target.ok for target in self.targets)

    def target(self, name: str) -> TargetResult | None:
        """Return the result of one target, or None when it did not run."""
        return next((result for result in self.targets if result.target == name), None)


@dataclass
class TestReport:
    """The results of one run over a collection of rules."""

    __test__ = False

    rules: list[RuleResult] = field(default_factory=list)
    errors: list[SiemgenError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether every rule passed and every file loaded."""
        return not self.errors and all(rule.ok for rule in self.rules)

    @property
    def passed(self) -> int:
        """Return the number of rules that passed."""
        return sum(rule.ok for rule in self.rules)

    @property
    def failed(self) -> int:
        """Return the number of rules that failed, counting files that did not load."""
        return sum(not rule.ok for rule in self.rules) + len(self.errors)

    def rule(self, stem: str) -> RuleResult | None:
        """Return the result of the rule with this output stem, or None."""
        return next((result for result in self.rules if result.stem == stem), None)


def summary_lines(report: TestReport) -> list[str]:
    """Return the human summary: one line per rule, its differences, and the counts last."""
    lines: list[str] = []
    for error in report.errors:
        lines.append(f"error: {error}")
    for rule in report.rules:
        label = "PASS" if rule.ok else "FAIL"
        statuses = ", ".join(f"{target.target} {target.status()}" for target in rule.targets)
        skip = f" (minimum-tests gate skipped: {rule.skip_reason})" if rule.skip_reason else ""
        lines.append(f"{label} {rule.stem}: {statuses or 'no targets ran'}{skip}")
        lines.extend(f"  {rule.stem}: {problem}" for problem in rule.problems)
        for target in rule.targets:
            prefix = f"  {rule.stem} [{target.target}]"
            lines.extend(f"{prefix} {problem}" for problem in target.problems)
            for group in target.groups:
                lines.extend(
                    f"{prefix} group {group.name!r}: {record.describe()}"
                    for record in group.failures
                )
            lines.extend(f"{prefix} warning: {warning}" for warning in target.warnings)
            if target.skipped is not None:
                lines.append(f"{prefix} skipped: {target.skipped}")
    lines.append(f"{report.passed} passed, {report.failed} failed")
    return lines


def _error_json(error: SiemgenError) -> dict[str, Any]:
    return {
        "path": str(error.path) if error.path else None,
        "line": error.line,
        "message": error.message,
        "problems": list(getattr(error, "problems", [])),
    }


def _target_json(target: TargetResult) -> dict[str, Any]:
    passed, total = target.counts()
    return {
        "target": target.target,
        "kind": target.kind,
        "ok": target.ok,
        "status": target.status(),
        "skipped": target.skipped,
        "query": target.query,
        "problems": target.problems,
        "warnings": target.warnings,
        "records_passed": passed,
        "records_total": total,
        "groups": [
            {
                "name": group.name,
                "reason": group.reason,
                "ok": group.ok,
                "records": [
                    {
                        "eventID": record.event_id,
                        "reason": record.reason,
                        "expected": verdict(record.expected),
                        "actual": verdict(record.actual),
                        "ok": record.ok,
                    }
                    for record in group.records
                ],
            }
            for group in target.groups
        ],
    }


def to_json(report: TestReport) -> str:
    """Return the report as indented JSON text ending in a newline."""
    document = {
        "ok": report.ok,
        "passed": report.passed,
        "failed": report.failed,
        "errors": [_error_json(error) for error in report.errors],
        "rules": [
            {
                "rule": str(rule.path),
                "title": rule.title,
                "stem": rule.stem,
                "tests": str(rule.tests_path) if rule.tests_path else None,
                "ok": rule.ok,
                "skip_reason": rule.skip_reason,
                "problems": rule.problems,
                "targets": [_target_json(target) for target in rule.targets],
            }
            for rule in report.rules
        ],
    }
    return printable_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"
