"""Facts for a rule's documentation page, taken from the rule alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import SigmaString

from siemgen.convert import fresh_rule
from siemgen.rules import RuleFile

_API_REFERENCE = re.compile(r"/API_(?P<name>[A-Za-z0-9]+)\.html$")


@dataclass(frozen=True)
class ApiCall:
    """An API call the rule matches, with the AWS reference page that documents it."""

    name: str
    url: str | None


@dataclass(frozen=True)
class Compliance:
    """One control a rule implements."""

    framework: str
    control: str
    version: str | None

    @property
    def label(self) -> str:
        """Return a short human label such as ``CIS AWS Foundations v1.2.0 3.4``."""
        names = {
            "cis-aws-foundations": "CIS AWS Foundations",
            "aws-security-hub": "AWS Security Hub",
        }
        name = names.get(self.framework, self.framework)
        version = f" v{self.version}" if self.version else ""
        return f"{name}{version} {self.control}"


def required_values(rule_file: RuleFile) -> dict[str, list[str]]:
    """Map each field to the plain values the condition requires, outside any NOT."""
    values: dict[str, list[str]] = {}

    def walk(node: Any, negated: bool) -> None:
        if isinstance(node, ConditionNOT):
            for arg in node.args:
                walk(arg, not negated)
        elif isinstance(node, ConditionAND | ConditionOR):
            for arg in node.args:
                walk(arg, negated)
        elif isinstance(node, ConditionFieldEqualsValueExpression):
            value = node.value
            if not negated and isinstance(value, SigmaString) and not value.contains_special():
                found = values.setdefault(node.field, [])
                text = str(value)
                if text not in found:
                    found.append(text)
        elif isinstance(node, ConditionItem | ConditionValueExpression):
            for arg in getattr(node, "args", []):
                walk(arg, negated)

    rule = fresh_rule(rule_file)
    for condition in rule.detection.parsed_condition:
        walk(condition.parsed, False)
    return values


def api_calls(rule_file: RuleFile, required: dict[str, list[str]] | None = None) -> list[ApiCall]:
    """List the eventName values the rule matches, each linked to its API reference page."""
    references = [str(url) for url in rule_file.rule.references]
    calls = []
    required = required if required is not None else required_values(rule_file)
    for name in required.get("eventName", []):
        url = next(
            (ref for ref in references if (m := _API_REFERENCE.search(ref)) and m["name"] == name),
            None,
        )
        calls.append(ApiCall(name, url))
    return calls


def event_sources(rule_file: RuleFile) -> list[str]:
    """List the eventSource values (AWS services) the rule requires."""
    return required_values(rule_file).get("eventSource", [])


def compliance(rule_file: RuleFile) -> list[Compliance]:
    """Read the rule's ``compliance`` attribute."""
    items = rule_file.custom("compliance", []) or []
    result = []
    for item in items:
        if isinstance(item, dict) and "framework" in item and "control" in item:
            version = item.get("version")
            result.append(
                Compliance(
                    framework=str(item["framework"]),
                    control=str(item["control"]),
                    version=str(version) if version is not None else None,
                )
            )
    return result


def _cloudwatch(rule_file: RuleFile) -> dict[str, str] | None:
    """Return the CIS metric filter of a rule, or None when the rule carries none."""
    data = rule_file.custom("cloudwatch")
    if not isinstance(data, dict) or "filter_pattern" not in data:
        return None
    return {
        "filter_pattern": str(data["filter_pattern"]),
        "metric_name": str(data.get("metric_name", "")),
    }


def alias(rule_id: str) -> str:
    """Derive a stable short alias such as ``7b6-a2a-8df`` from a rule id."""
    digits = re.sub(r"[^0-9a-f]", "", rule_id.lower())[:9].ljust(9, "0")
    return f"{digits[0:3]}-{digits[3:6]}-{digits[6:9]}"


def scope(sources: list[str]) -> str:
    """Return the resource family: the service of the first required eventSource, or aws."""
    if sources:
        return sources[0].split(".", 1)[0].lower()
    return "aws"


def goal(description: str) -> str:
    """Return the first sentence of a description, on one line."""
    text = " ".join(description.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def page_context(
    rule_file: RuleFile,
    queries: list[dict[str, str]],
    failures: list[dict[str, str]],
    attack: dict[str, list[dict[str, str]]],
    source: dict[str, str],
) -> dict[str, Any]:
    """Assemble everything the page template shows for one rule."""
    rule = rule_file.rule
    required = required_values(rule_file)
    sources = required.get("eventSource", [])
    calls = api_calls(rule_file, required)
    linked = {call.url for call in calls if call.url}
    items = compliance(rule_file)
    cis = next((item for item in items if item.framework == "cis-aws-foundations"), None)
    return {
        "rule": {
            "title": rule.title,
            "id": rule_file.rule_id,
            "level": rule.level.name.lower() if rule.level else "unset",
            "status": rule.status.name.lower() if rule.status else "unset",
            "author": rule.author or "unknown",
            "date": str(rule.date) if rule.date else "unknown",
        },
        "front": {
            "security": "compliance" if items else "attack",
            "framework": "cis" if cis else None,
            "control": f"cis-{cis.control}" if cis else None,
            "source": rule.logsource.service or rule.logsource.product or "unknown",
            "scope": scope(sources),
            "alias": alias(rule_file.rule_id),
        },
        "source": source,
        "goal": goal(rule.description or rule.title),
        "description": rule.description or "",
        "services": sources,
        "calls": calls,
        "notes": [str(note) for note in rule_file.custom("notes", []) or []],
        "triage": [str(step) for step in rule_file.custom("triage", []) or []],
        "compliance": items,
        "attack": attack,
        "falsepositives": [str(item) for item in rule.falsepositives],
        "queries": queries,
        "failures": failures,
        "cloudwatch": _cloudwatch(rule_file),
        "rule_source": rule_file.text,
        "other_references": [str(url) for url in rule.references if str(url) not in linked],
    }
