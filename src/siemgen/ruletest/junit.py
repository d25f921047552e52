"""Write a rule-test report as JUnit XML, the test report format CI services display.

The layout is the Apache Ant one that GitLab, Jenkins and the GitHub test-report actions read:
``<testsuites>`` contains one ``<testsuite>`` per rule, and each suite one ``<testcase>``
per target and record group (``classname`` is ``<rule>.<target>``, ``name`` the group). A
target checked without records gets one ``query`` test case, and the minimum-tests gate one
``minimum-tests`` test case. A wrong verdict is a ``<failure>``; a query that did not
convert or run is an ``<error>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from siemgen.errors import OutputError
from siemgen.ruletest.report import RuleResult, TargetResult, TestReport
from siemgen.terminal import printable_xml

SUITES_NAME = "siemgen test"
GATE_CASE = "minimum-tests"
QUERY_CASE = "query"
LOAD_SUITE = "load-errors"
# XML 1.0 forbids these characters even when escaped, among them the surrogates that stand
# for the bytes of a file name that is not UTF-8.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


@dataclass
class _Case:
    """One test case before it becomes XML."""

    classname: str
    name: str
    file: str
    seconds: float = 0.0
    outcome: str | None = None
    message: str = ""
    details: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)


def _gate_case(rule: RuleResult) -> _Case:
    case = _Case(rule.stem, GATE_CASE, str(rule.path))
    if rule.problems:
        case.outcome = "failure"
        case.message = rule.problems[0]
        case.details = list(rule.problems)
    elif rule.skip_reason is not None:
        case.outcome = "skipped"
        case.message = rule.skip_reason
    return case


def _target_cases(rule: RuleResult, target: TargetResult) -> list[_Case]:
    classname = f"{rule.stem}.{target.target}"
    if target.problems or target.skipped is not None or not target.groups:
        case = _Case(classname, QUERY_CASE, str(rule.path), target.seconds)
        case.output = list(target.warnings)
        if target.problems:
            case.outcome = "error" if target.kind == "records" else "failure"
            case.message = target.problems[0]
            case.details = [*target.problems, "", "query:", target.query or "(none)"]
        elif target.skipped is not None:
            case.outcome = "skipped"
            case.message = target.skipped
        return [case]
    cases = []
    share = target.seconds / len(target.groups)
    for group in target.groups:
        case = _Case(classname, group.name, str(rule.path), share)
        case.output = list(target.warnings)
        failures = group.failures
        if failures:
            case.outcome = "failure"
            case.message = (
                f"{len(failures)} of {len(group.records)} records in group {group.name!r} "
                f"got the wrong verdict on {target.target}"
            )
            case.details = [record.describe() for record in failures]
            case.details += ["", "query:", target.query or "(none)"]
        cases.append(case)
    return cases


def _suite(parent: ElementTree.Element, name: str, cases: list[_Case]) -> dict[str, int]:
    counts = {
        "tests": len(cases),
        "failures": sum(case.outcome == "failure" for case in cases),
        "errors": sum(case.outcome == "error" for case in cases),
        "skipped": sum(case.outcome == "skipped" for case in cases),
    }
    seconds = sum(case.seconds for case in cases)
    suite = ElementTree.SubElement(
        parent,
        "testsuite",
        {"name": _clean(name), **{key: str(value) for key, value in counts.items()}},
        time=f"{seconds:.3f}",
    )
    for case in cases:
        element = ElementTree.SubElement(
            suite,
            "testcase",
            classname=_clean(case.classname),
            name=_clean(case.name),
            file=_clean(case.file),
            time=f"{case.seconds:.3f}",
        )
        if case.outcome == "skipped":
            ElementTree.SubElement(element, "skipped", message=_clean(case.message))
        elif case.outcome is not None:
            detail = ElementTree.SubElement(
                element, case.outcome, message=_clean(case.message), type=case.outcome
            )
            detail.text = _clean("\n".join(case.details))
        if case.output:
            ElementTree.SubElement(element, "system-out").text = _clean("\n".join(case.output))
    return counts


def to_junit(report: TestReport) -> bytes:
    """Return the report as a JUnit XML document in UTF-8."""
    root = ElementTree.Element("testsuites", name=SUITES_NAME)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    if report.errors:
        cases = [
            _Case(
                "load",
                str(error.path or "siemgen"),
                str(error.path or ""),
                0.0,
                "error",
                error.message,
                [error.message, *getattr(error, "problems", [])],
            )
            for error in report.errors
        ]
        for key, value in _suite(root, LOAD_SUITE, cases).items():
            totals[key] += value
    for rule in report.rules:
        cases = [_gate_case(rule)]
        for target in rule.targets:
            cases.extend(_target_cases(rule, target))
        seconds += sum(case.seconds for case in cases)
        for key, value in _suite(root, rule.stem, cases).items():
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{seconds:.3f}")
    ElementTree.indent(root)
    text = ElementTree.tostring(root, encoding="unicode")
    return f"<?xml version='1.0' encoding='utf-8'?>\n{printable_xml(text)}\n".encode()


def write_junit(report: TestReport, path: Path) -> None:
    """Write the report as JUnit XML to ``path``, creating its folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_junit(report))
    except OSError as error:
        raise OutputError(
            f"cannot write the JUnit report: {error.strerror}",
            path=path,
            hint="pass a writable file path to --junit",
        ) from error
