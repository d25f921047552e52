"""Validation findings, and the mapping from a pySigma issue to a file, line and message."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from sigma.rule import SigmaDetectionItem, SigmaLogSource, SigmaRuleTag
from sigma.validators.base import SigmaValidationIssue, SigmaValidationIssueSeverity

from siemgen.rules import KeyPath, RuleFile

Severity = Literal["error", "warning"]

# pySigma 1.5 rates issues LOW, MEDIUM or HIGH. A HIGH issue "will cause problems" by
# pySigma's definition, so it is an error. The others are conventions, so they are warnings.
_ERROR_SEVERITIES = {SigmaValidationIssueSeverity.HIGH}


@dataclass(frozen=True)
class Finding:
    """One problem found in one rule file (or in the configuration)."""

    path: Path
    line: int | None
    rule_id: str
    title: str
    validator: str
    message: str
    severity: Severity

    def __str__(self) -> str:
        location = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{location}: {self.severity} [{self.validator}] {self.message}"


def sort_key(finding: Finding) -> tuple[str, int, str, str]:
    """Order findings by file, line, validator and message, with file-level ones first."""
    return (str(finding.path), finding.line or 0, finding.validator, finding.message)


def finding_for(
    rule_file: RuleFile,
    validator: str,
    message: str,
    severity: Severity,
    key: KeyPath | None,
) -> Finding:
    """Build a finding for a rule, placed on the line of ``key`` (None for a file-level one)."""
    line = rule_file.line_of(*key) if key else None
    return Finding(
        path=rule_file.path,
        line=line,
        rule_id=rule_file.rule_id,
        title=rule_file.title,
        validator=validator,
        message=message,
        severity=severity,
    )


def pysigma_severity(issue: SigmaValidationIssue) -> Severity:
    """Map a pySigma issue severity to ``error`` or ``warning``."""
    return "error" if issue.severity in _ERROR_SEVERITIES else "warning"


def _describe_value(value: Any) -> str:
    if isinstance(value, SigmaLogSource):
        parts = [
            f"{name}: {getattr(value, name)}"
            for name in ("product", "category", "service")
            if getattr(value, name)
        ]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, SigmaDetectionItem):
        return repr(value.field)
    if isinstance(value, SigmaRuleTag | UUID):
        return repr(str(value))
    if isinstance(value, set | frozenset):
        names = sorted(getattr(item, "__name__", str(item)) for item in value)
        return ", ".join(names)
    if isinstance(value, list | tuple):
        return ", ".join(repr(str(item)) for item in value)
    return repr(str(value))


def issue_details(issue: SigmaValidationIssue) -> dict[str, Any]:
    """Return the issue's own fields (tag, field, filename, ...) without the rule list."""
    return {
        item.name: getattr(issue, item.name)
        for item in fields(issue)
        if item.name not in ("rules", "severity", "description")
    }


def issue_message(issue: SigmaValidationIssue) -> str:
    """Describe a pySigma issue in one sentence with the values it names."""
    details = issue_details(issue)
    text = str(issue.description).rstrip(". ")
    if details:
        described = "; ".join(f"{name} {_describe_value(v)}" for name, v in details.items())
        text = f"{text} ({described})"
    return text


def tag_key(rule_file: RuleFile, tag: object) -> KeyPath:
    """Return the key path of the last ``tags`` item equal to ``tag``, or of the list itself."""
    return list_item_key(rule_file, "tags", tag)


def list_item_key(rule_file: RuleFile, key: str, value: object) -> KeyPath:
    """Return the key path of the last list item under ``key`` equal to ``value``."""
    items = rule_file.data.get(key)
    found: KeyPath = (key,)
    if isinstance(items, list):
        for index, item in enumerate(items):
            if str(item) == str(value):
                found = (key, index)
    return found


def field_key(rule_file: RuleFile, field: str, detection: str | None = None) -> KeyPath:
    """Return the first detection key path whose field name (before any ``|``) is ``field``."""
    # RuleFile.lines is filled while walking the YAML tree, so it is in document order.
    for path in rule_file.lines:
        if len(path) < 3 or path[0] != "detection":
            continue
        if detection is not None and path[1] != detection:
            continue
        last = path[-1]
        if isinstance(last, str) and last.split("|")[0] == field:
            return path
    return ("detection", detection) if detection else ("detection",)
