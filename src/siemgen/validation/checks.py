"""siemgen's own rule checks: project policy, and replacements for validators that need data.

Each check takes one loaded rule and returns findings. ``CHECKS`` lists them with what they
enforce, and ``siemgen.validation.registry`` records which pySigma or SigmaHQ validator each
one replaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaDetectionItem

from siemgen.attack import D3FEND_TACTICS
from siemgen.fields import FIELDS_BY_RAW_NAME, JsonColumn, lookup
from siemgen.rules import RuleFile
from siemgen.validation.findings import Finding, field_key, finding_for, tag_key

COMPLIANCE_FRAMEWORKS = ("cis-aws-foundations", "aws-security-hub")
# CIS AWS Foundations Benchmark versions are x.y.z and its controls are "3.4" or "2.1.1".
_CIS_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_CIS_CONTROL = re.compile(r"^\d+(\.\d+){1,2}$")
# Security Hub control ids are the service name, a dot and a number: CloudWatch.4, IAM.1.
_SECURITY_HUB_CONTROL = re.compile(r"^[A-Za-z][A-Za-z0-9]*\.\d+$")

# Custom top-level keys that docs/rule-format.md defines, and the two that SigmaHQ allows.
SIEMGEN_CUSTOM_KEYS = ("compliance", "cloudwatch", "notes", "triage", "tests")
SIGMAHQ_CUSTOM_KEYS = ("regression_tests_path", "simulation")
# Required by project policy and not already covered by a SigmaHQ existence validator.
REQUIRED_LISTS = ("falsepositives", "references")

_FIELD_NAMES_BY_CASEFOLD = {name.casefold(): name for name in FIELDS_BY_RAW_NAME}
_JSON_COLUMNS_BY_CASEFOLD = {column.value.casefold(): column.value for column in JsonColumn}


@dataclass(frozen=True)
class Check:
    """One of siemgen's own checks."""

    name: str
    description: str
    run: Callable[[RuleFile], list[Finding]]
    # Other validator names that this check's findings carry, each excludable on its own.
    also_reports: tuple[str, ...] = ()


def check_required_lists(rule_file: RuleFile) -> list[Finding]:
    """Require non-empty ``falsepositives`` and ``references`` lists."""
    findings = []
    for key in REQUIRED_LISTS:
        value = rule_file.data.get(key)
        if value is None:
            message = f"the rule has no {key!r} list, which siemgen requires"
        elif not isinstance(value, list) or not value:
            message = f"{key!r} must be a non-empty list, not {value!r}"
        else:
            continue
        findings.append(_error(rule_file, "siemgen_required_fields", message, key))
    return findings


def check_condition(rule_file: RuleFile) -> list[Finding]:
    """Parse every condition, so a broken one is reported on its line."""
    detection = rule_file.rule.detection
    for condition in detection.parsed_condition:
        try:
            _ = condition.parsed
        except SigmaError as error:
            text = str(error.args[0]) if error.args else str(error)
            message = f"invalid condition {condition.condition!r}: {text}"
            return [
                finding_for(
                    rule_file, "siemgen_condition", message, "error", ("detection", "condition")
                )
            ]
    return []


def check_compliance(rule_file: RuleFile) -> list[Finding]:
    """Check that each ``compliance`` item names a known framework and a well-formed control."""
    items = rule_file.data.get("compliance")
    if items is None:
        return []
    if not isinstance(items, list):
        message = f"'compliance' must be a list of mappings, not {type(items).__name__}"
        return [_error(rule_file, "siemgen_compliance", message, "compliance")]
    findings = []
    for index, item in enumerate(items):
        for key, message in _compliance_problems(item):
            path = ("compliance", index, key) if key else ("compliance", index)
            findings.append(_error(rule_file, "siemgen_compliance", message, *path))
    return findings


_COMPLIANCE_KEYS = {
    "cis-aws-foundations": ("framework", "control", "version"),
    "aws-security-hub": ("framework", "control"),
}


def _compliance_problems(item: Any) -> Iterator[tuple[str | None, str]]:
    """Yield (key, message) for each problem in one compliance item."""
    if not isinstance(item, dict):
        yield None, f"a compliance item must be a mapping, not {item!r}"
        return
    framework = item.get("framework")
    if framework not in COMPLIANCE_FRAMEWORKS:
        choices = ", ".join(COMPLIANCE_FRAMEWORKS)
        yield "framework", f"unknown compliance framework {framework!r} (expected {choices})"
        return

    allowed = _COMPLIANCE_KEYS[framework]
    for key in sorted(set(item) - set(allowed)):
        message = f"unknown key {key!r} in a {framework} item (allowed: {', '.join(allowed)})"
        yield key, message

    control = item.get("control")
    if framework == "aws-security-hub":
        if not isinstance(control, str) or not _SECURITY_HUB_CONTROL.match(control):
            message = (
                f"Security Hub control {control!r} is not in the form CloudWatch.4 "
                "(service name, dot, number)"
            )
            yield "control", message
        return

    version = item.get("version")
    if not isinstance(version, str) or not _CIS_VERSION.match(version):
        yield "version", f"CIS benchmark version {version!r} is missing or not in the form 1.2.0"
    if not isinstance(control, str):
        message = (
            f'CIS control {control!r} must be a quoted string such as "3.4", because YAML '
            "reads 3.10 as the number 3.1"
        )
        yield "control", message
    elif not _CIS_CONTROL.match(control):
        yield "control", f'CIS control {control!r} is not in the form "3.4" or "2.1.1"'


def check_custom_attributes(rule_file: RuleFile) -> list[Finding]:
    """Report unknown custom top-level keys and check the shape of siemgen's own keys."""
    findings = []
    allowed = set(SIEMGEN_CUSTOM_KEYS) | set(SIGMAHQ_CUSTOM_KEYS)
    for name in rule_file.rule.custom_attributes:
        if name not in allowed:
            message = (
                f"unknown top-level key {name!r}. siemgen rules may add "
                f"{', '.join(SIEMGEN_CUSTOM_KEYS)}"
            )
            findings.append(
                finding_for(rule_file, "siemgen_custom_attributes", message, "warning", (name,))
            )
    for key_path, message in _custom_shape_problems(rule_file.data):
        findings.append(_error(rule_file, "siemgen_custom_attributes", message, *key_path))
    return findings


ShapeProblem = tuple[tuple[str | int, ...], str]


def _custom_shape_problems(data: dict[str, Any]) -> Iterator[ShapeProblem]:
    """Yield (key path, message) for each of siemgen's custom keys in the wrong shape."""
    yield from _cloudwatch_problems(data.get("cloudwatch"))
    for key in ("notes", "triage"):
        yield from _string_list_problems(key, data.get(key))
    tests = data.get("tests")
    if tests is None:
        return
    if not isinstance(tests, dict) or set(tests) != {"skip"}:
        yield ("tests",), "'tests' may only contain skip: \"<reason>\""
        return
    skip = tests["skip"]
    if not isinstance(skip, str) or not skip.strip():
        yield ("tests", "skip"), "'tests.skip' must give the reason as a non-empty string"


def _cloudwatch_problems(cloudwatch: Any) -> Iterator[ShapeProblem]:
    if cloudwatch is None:
        return
    if not isinstance(cloudwatch, dict):
        message = "'cloudwatch' must be a mapping with metric_name and filter_pattern"
        yield ("cloudwatch",), message
        return
    for key in ("metric_name", "filter_pattern"):
        value = cloudwatch.get(key)
        if not isinstance(value, str) or not value.strip():
            path = ("cloudwatch", key) if key in cloudwatch else ("cloudwatch",)
            yield path, f"'cloudwatch.{key}' is missing or not a non-empty string"
    for key in sorted(set(cloudwatch) - {"metric_name", "filter_pattern"}):
        yield ("cloudwatch", key), f"unknown key {key!r} in 'cloudwatch'"


def _string_list_problems(key: str, value: Any) -> Iterator[ShapeProblem]:
    if value is None:
        return
    if not isinstance(value, list) or not value:
        yield (key,), f"{key!r} must be a non-empty list of strings"
        return
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            yield (key, index), f"item {index + 1} of {key!r} is not a non-empty string"


def _detection_items(
    name: str, detection: SigmaDetection
) -> Iterator[tuple[str, SigmaDetectionItem]]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _detection_items(name, item)
        else:
            yield name, item


def _is_cloudtrail(rule_file: RuleFile) -> bool:
    logsource = rule_file.rule.logsource
    return logsource.product == "aws" and logsource.service == "cloudtrail"


def _correct_case(field: str) -> str | None:
    """Return the table's spelling of a field that differs from it only in case."""
    exact = _FIELD_NAMES_BY_CASEFOLD.get(field.casefold())
    if exact is not None:
        return exact
    head, dot, rest = field.partition(".")
    column = _JSON_COLUMNS_BY_CASEFOLD.get(head.casefold())
    if column is not None and dot and column != head:
        return f"{column}.{rest}"
    return None


def check_fields(rule_file: RuleFile) -> list[Finding]:
    """Check every field of a CloudTrail rule against siemgen's CloudTrail field table."""
    if not _is_cloudtrail(rule_file):
        return []
    findings = []
    seen: set[str] = set()
    for name, detection in rule_file.rule.detection.detections.items():
        for detection_name, item in _detection_items(name, detection):
            field = item.field
            if field is None or field in seen or lookup(field) is not None:
                continue
            seen.add(field)
            key = field_key(rule_file, field, detection_name)
            spelling = _correct_case(field)
            if spelling is not None:
                message = f"field {field!r} is spelled {spelling!r} in CloudTrail records"
                findings.append(finding_for(rule_file, "siemgen_field_case", message, "error", key))
                continue
            message = (
                f"field {field!r} is not in siemgen's CloudTrail field table "
                "(siemgen/fields.py); keys inside requestParameters, responseElements, "
                "additionalEventData or serviceEventDetails need the full dotted path"
            )
            findings.append(finding_for(rule_file, "siemgen_unknown_field", message, "error", key))
    return findings


def check_d3fend_tags(rule_file: RuleFile) -> list[Finding]:
    """Accept D3FEND tactic tags and report other D3FEND tags as not verifiable offline."""
    tactics = {name.lower() for name in D3FEND_TACTICS}
    findings = []
    for tag in rule_file.rule.tags:
        if tag.namespace == "d3fend" and tag.name not in tactics:
            message = (
                f"D3FEND tag {str(tag)!r} cannot be checked, because siemgen ships only the "
                f"D3FEND tactics ({', '.join(sorted(tactics))}) and no technique list"
            )
            key = tag_key(rule_file, tag)
            findings.append(finding_for(rule_file, "siemgen_d3fend_tag", message, "warning", key))
    return findings


def _error(rule_file: RuleFile, validator: str, message: str, *key: str | int) -> Finding:
    return finding_for(rule_file, validator, message, "error", tuple(key))


CHECKS: tuple[Check, ...] = (
    Check(
        "siemgen_condition",
        "every condition of the rule parses",
        check_condition,
    ),
    Check(
        "siemgen_required_fields",
        "falsepositives and references are non-empty lists",
        check_required_lists,
    ),
    Check(
        "siemgen_compliance",
        'compliance items name cis-aws-foundations (version 1.2.0, control "3.4") '
        "or aws-security-hub (control CloudWatch.4)",
        check_compliance,
    ),
    Check(
        "siemgen_custom_attributes",
        "custom top-level keys are the ones siemgen and SigmaHQ define, in the documented shape",
        check_custom_attributes,
    ),
    Check(
        "siemgen_unknown_field",
        "CloudTrail rule fields are in siemgen's field table, spelled as the table spells them "
        "(a wrong case is reported as siemgen_field_case)",
        check_fields,
        also_reports=("siemgen_field_case",),
    ),
    Check(
        "siemgen_d3fend_tag",
        "D3FEND tags are tactics, the only D3FEND names siemgen ships",
        check_d3fend_tags,
    ),
)
