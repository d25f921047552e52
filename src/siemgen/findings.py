"""A finding of `siemgen check`, and the formats reviewers and CI tools read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree

from siemgen import __version__
from siemgen.terminal import printable, printable_json, printable_lines, printable_xml

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FORMATS = ("text", "json", "junit", "sarif", "github")


@dataclass(frozen=True)
class Finding:
    """One problem found in a rule, its tests or its generated content."""

    path: str
    line: int | None
    stage: str
    code: str
    message: str
    severity: str = "error"
    rule_id: str = ""
    title: str = ""
    detail: str = ""

    def location(self) -> str:
        """Return ``path:line`` or the path alone."""
        return f"{self.path}:{self.line}" if self.line else self.path


def relative_path(path: Path | str | None, root: Path) -> str:
    """Return a path relative to the repository root when it lies inside it."""
    if path is None:
        return ""
    candidate = Path(path)
    try:
        return candidate.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return candidate.as_posix()


def summary_line(findings: list[Finding], rule_count: int) -> str:
    """Return the one-line summary that ends the text report."""
    errors = sum(1 for finding in findings if finding.severity == "error")
    warnings = len(findings) - errors
    files = len({finding.path for finding in findings})
    if not findings:
        return f"checked {rule_count} rules: no findings"
    return f"checked {rule_count} rules: {errors} errors, {warnings} warnings in {files} files"


def to_text(findings: list[Finding], rule_count: int) -> str:
    """Group findings by file, each with its line, stage and message, escaped by ``printable``."""
    lines: list[str] = []
    for path in sorted({finding.path for finding in findings}):
        lines.append(printable(path))
        for finding in sorted(
            (f for f in findings if f.path == path), key=lambda f: (f.line or 0, f.code)
        ):
            where = f"  line {finding.line}" if finding.line else "  -"
            lines.append(
                f"{where}: {finding.severity} [{finding.stage}/{finding.code}] "
                + printable(finding.message)
            )
            for detail in finding.detail.splitlines():
                lines.append(f"      {printable(detail)}")
        lines.append("")
    lines.append(summary_line(findings, rule_count))
    return "\n".join(lines) + "\n"


def to_json(findings: list[Finding], rule_count: int) -> str:
    """Serialise findings as one JSON document."""
    document = {
        "rules": rule_count,
        "ok": not any(f.severity == "error" for f in findings),
        "findings": [asdict(finding) for finding in findings],
    }
    return printable_json(json.dumps(document, indent=2, sort_keys=True)) + "\n"


def _escape_workflow(value: str, property_value: bool = False) -> str:
    """Escape text for a GitHub workflow command, as the runner's toolkit does."""
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def to_github(findings: list[Finding], rule_count: int) -> str:
    """Write GitHub workflow commands that annotate the offending line of each file.

    The runner decodes no escape for control characters, so file names and messages are
    escaped by ``printable``. GitHub then cannot place an annotation on a file whose name
    needed escaping, because the escaped name matches no file.
    """
    lines = []
    for finding in findings:
        command = "error" if finding.severity == "error" else "warning"
        properties = [f"file={_escape_workflow(printable(finding.path), True)}"]
        if finding.line:
            properties.append(f"line={finding.line}")
        properties.append(f"title={_escape_workflow(finding.stage + '/' + finding.code, True)}")
        message = finding.message + (f"\n{finding.detail}" if finding.detail else "")
        lines.append(
            f"::{command} {','.join(properties)}::{_escape_workflow(printable_lines(message))}"
        )
    lines.append(summary_line(findings, rule_count))
    return "\n".join(lines) + "\n"


# XML 1.0 forbids these characters even when escaped. A record's reason may contain them, and
# the name of a file that is not UTF-8 contains surrogates.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def _describe(finding: Finding) -> str:
    text = f"{finding.location()}: [{finding.code}] {finding.message}"
    return text + (f"\n{finding.detail}" if finding.detail else "")


def to_junit(findings: list[Finding], rule_count: int, checked: Iterable[str]) -> str:
    """Write JUnit XML: one test case per checked file and stage, failed where findings are."""
    suite = ElementTree.Element("testsuite", name="siemgen check")
    stages = ("load", "validation", "test", "drift")
    failures = 0
    cases = 0
    for path in sorted(set(checked) | {f.path for f in findings}):
        for stage in stages:
            found = [f for f in findings if f.path == path and f.stage == stage]
            if stage == "drift" and not found:
                continue
            case = ElementTree.SubElement(suite, "testcase", classname=_xml_text(path), name=stage)
            cases += 1
            errors = [f for f in found if f.severity == "error"]
            if errors:
                failures += 1
                failure = ElementTree.SubElement(
                    case,
                    "failure",
                    message=_xml_text("; ".join(f.message for f in errors)[:1000]),
                    type=_xml_text(errors[0].code),
                )
                failure.text = _xml_text("\n".join(_describe(f) for f in errors))
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    ElementTree.indent(suite)
    return (
        printable_xml(ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)) + "\n"
    )


def to_sarif(findings: list[Finding], rule_count: int) -> str:
    """Write a SARIF 2.1.0 log for code scanning, one result per finding."""
    codes = sorted({(f.stage, f.code) for f in findings})
    rule_index = {code: index for index, code in enumerate(codes)}
    results = []
    for finding in findings:
        # A URI percent-encodes each character that RFC 3986 does not allow in a path. A file
        # name that is not UTF-8 is encoded by its original bytes, which Python keeps as
        # surrogates.
        uri = quote(finding.path, errors="surrogateescape")
        location: dict[str, object] = {"artifactLocation": {"uri": uri}}
        if finding.line:
            location["region"] = {"startLine": finding.line}
        text = finding.message + (f"\n{finding.detail}" if finding.detail else "")
        results.append(
            {
                "ruleId": f"{finding.stage}/{finding.code}",
                "ruleIndex": rule_index[(finding.stage, finding.code)],
                "level": "error" if finding.severity == "error" else "warning",
                "message": {"text": text},
                "locations": [{"physicalLocation": location}],
            }
        )
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "siemgen",
                        "version": __version__,
                        "rules": [
                            {
                                "id": f"{stage}/{code}",
                                "name": code,
                                "shortDescription": {"text": f"siemgen {stage} check {code}"},
                            }
                            for stage, code in codes
                        ],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return printable_json(json.dumps(document, indent=2, sort_keys=True)) + "\n"
