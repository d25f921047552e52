"""Run pySigma's validators, SigmaHQ's conventions and siemgen's checks over a collection."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.validators.base import SigmaRuleValidator, SigmaValidationIssue

from siemgen.attack import install_offline_data, load_attack
from siemgen.errors import RuleLoadError, SiemgenError
from siemgen.rules import Collection, KeyPath, RuleFile
from siemgen.validation.checks import CHECKS
from siemgen.validation.config import ValidationConfig
from siemgen.validation.findings import (
    Finding,
    field_key,
    finding_for,
    issue_details,
    issue_message,
    list_item_key,
    pysigma_severity,
    sort_key,
    tag_key,
)
from siemgen.validation.registry import SEVERITY_OVERRIDES, active_validators

logger = logging.getLogger(__name__)

# The YAML key a whole-rule issue points at, by validator name prefix or full name.
_ISSUE_KEYS: tuple[tuple[str, KeyPath], ...] = (
    ("identifier_", ("id",)),
    ("duplicate_title", ("title",)),
    ("duplicate_references", ("references",)),
    ("fieldname_logsource", ("logsource",)),
    ("all_of_them_condition", ("detection", "condition")),
    ("dangling_condition", ("detection", "condition")),
    ("dangling_detection", ("detection",)),
    ("them_condition_with_single_detection", ("detection", "condition")),
    ("sigmahq_author", ("author",)),
    ("sigmahq_date_existence", ("date",)),
    ("sigmahq_modified", ("modified",)),
    ("sigmahq_redundant_modified", ("modified",)),
    ("sigmahq_description", ("description",)),
    ("sigmahq_link_in_description", ("description",)),
    ("sigmahq_falsepositives", ("falsepositives",)),
    ("sigmahq_level", ("level",)),
    ("sigmahq_status", ("status",)),
    ("sigmahq_title", ("title",)),
    ("sigmahq_github_link", ("references",)),
    ("sigmahq_mitre_link", ("references",)),
    ("sigmahq_fields_existence", ("fields",)),
    ("sigmahq_tags", ("tags",)),
    ("sigmahq_logsource", ("logsource",)),
    ("sigmahq_sysmon", ("detection",)),
    ("sigmahq_missing_asterisk", ("detection", "condition")),
    ("sigmahq_of", ("detection", "condition")),
    ("specific_instead_of_generic_logsource", ("logsource",)),
)
# Issues about the file name point at no line.
_FILE_LEVEL = ("duplicate_filename", "filename_length", "sigmahq_filename")


def issue_key(rule_file: RuleFile, validator: str, issue: SigmaValidationIssue) -> KeyPath | None:
    """Return the YAML key path that a pySigma issue is about, or None for the whole file."""
    details = issue_details(issue)
    if validator.startswith(_FILE_LEVEL):
        return None
    if "tag" in details:
        return tag_key(rule_file, details["tag"])
    if "reference" in details:
        return list_item_key(rule_file, "references", details["reference"])
    field = details.get("field")
    if field is None and "detection_item" in details:
        field = details["detection_item"].field
    if isinstance(field, str):
        return field_key(rule_file, field)
    if validator == "custom_attributes" and isinstance(details.get("fieldname"), str):
        return (details["fieldname"],)
    for prefix, key in _ISSUE_KEYS:
        if validator.startswith(prefix):
            return key
    return ("detection",) if "detection_name" in details else None


def _issue_text(validator: str, issue: SigmaValidationIssue, others: list[Path]) -> str:
    message = issue_message(issue)
    if validator == "attacktag":
        tag = issue_details(issue).get("tag")
        try:
            load_attack().resolve_tag(tag)
        except SiemgenError as error:
            if error.hint:
                message += f": {error.hint}"
    if others:
        message += "; also in " + ", ".join(str(path) for path in others)
    return message


def _issue_findings(
    validator: str, issue: SigmaValidationIssue, rule_files: dict[int, RuleFile]
) -> list[Finding]:
    """Turn one pySigma issue into one finding for each rule it names."""
    files = [rule_files[id(rule)] for rule in issue.rules if id(rule) in rule_files]
    severity = SEVERITY_OVERRIDES.get(validator, pysigma_severity(issue))
    findings = []
    for rule_file in files:
        others = [other.path for other in files if other is not rule_file]
        message = _issue_text(validator, issue, others)
        key = issue_key(rule_file, validator, issue)
        findings.append(finding_for(rule_file, validator, message, severity, key))
    return findings


def load_error_finding(error: RuleLoadError) -> Finding:
    """Turn a rule file that failed to load into a finding."""
    message = error.message + (f" ({error.hint})" if error.hint else "")
    return Finding(
        path=error.path or Path(),
        line=error.line,
        rule_id=error.rule or "",
        title="",
        validator="siemgen_load",
        message=message,
        severity="error",
    )


@contextmanager
def _rule_sources(collection: Collection) -> Iterator[None]:
    """Give each pySigma rule its file location while validators run, then remove it again.

    The loader clears ``SigmaRule.source``. The filename validators read the file name from it.
    """
    previous = [(rule_file, rule_file.rule.source) for rule_file in collection]
    try:
        for rule_file in collection:
            rule_file.rule.source = SigmaRuleLocation(rule_file.path)
        yield
    finally:
        for rule_file, source in previous:
            rule_file.rule.source = source


def _run_validator(
    name: str, validator: SigmaRuleValidator, rule_file: RuleFile, condition_failed: bool
) -> list[SigmaValidationIssue] | Finding:
    try:
        return validator.validate(rule_file.rule)
    except SigmaError as error:
        if condition_failed:
            logger.debug("%s skipped on %s: %s", name, rule_file.path, error)
            return []
        message = f"validator failed on this rule: {error}"
    # A third-party validator that crashes on one rule must not stop the check of the others,
    # so any error becomes a finding on that rule.
    except Exception as error:
        logger.warning("validator %s failed on %s: %r", name, rule_file.path, error)
        message = f"validator failed on this rule: {type(error).__name__}: {error}"
    return finding_for(rule_file, name, message, "error", None)


def _validate_rules(collection: Collection) -> list[Finding]:
    validators = {name: cls() for name, cls in active_validators().items()}
    rule_files = {id(rule_file.rule): rule_file for rule_file in collection}
    findings: list[Finding] = []
    for rule_file in collection:
        own = [finding for check in CHECKS for finding in check.run(rule_file)]
        findings.extend(own)
        condition_failed = any(f.validator == "siemgen_condition" for f in own)
        for name, validator in validators.items():
            result = _run_validator(name, validator, rule_file, condition_failed)
            if isinstance(result, Finding):
                findings.append(result)
                continue
            for issue in result:
                findings.extend(_issue_findings(name, issue, rule_files))
    for name, validator in validators.items():
        for issue in validator.finalize():
            findings.extend(_issue_findings(name, issue, rule_files))
    return findings


def _apply_exclusions(
    findings: list[Finding], collection: Collection, config: ValidationConfig, partial: bool
) -> list[Finding]:
    stems = {rule_file.path: rule_file.stem for rule_file in collection}
    rule_keys = {key for rule_file in collection for key in (rule_file.rule_id, rule_file.stem)}
    used: set[int] = set()
    remaining = []
    for finding in findings:
        keys = (finding.rule_id, stems.get(finding.path, ""), finding.path.stem)
        exclusion = config.excludes(keys, finding.validator)
        if exclusion is None:
            remaining.append(finding)
            continue
        used.add(id(exclusion))
        logger.debug("%s excluded by configuration: %s", finding, exclusion.reason)
    for exclusion in config.exclusions:
        if id(exclusion) in used:
            continue
        if exclusion.rule in rule_keys:
            problem = f"matches no {exclusion.validator!r} finding of that rule"
        elif partial:
            # The rule may be one of those that this run does not validate.
            continue
        else:
            problem = "names no rule id or file stem of the checked rules"
        remaining.append(
            Finding(
                path=config.path or Path(),
                line=exclusion.line,
                rule_id="",
                title="",
                validator="siemgen_config",
                message=f"exclusion for rule {exclusion.rule!r} {problem}, so remove it",
                severity="warning",
            )
        )
    return remaining


def validate_collection(
    collection: Collection, config: ValidationConfig | None = None, *, partial: bool = False
) -> list[Finding]:
    """Validate every rule of a collection offline and return the findings, sorted.

    Files that failed to load become ``siemgen_load`` findings. Findings that the
    configuration excludes are dropped, and an exclusion that matches nothing is reported.
    Pass ``partial=True`` when the collection is only some of the repository's rules: then an
    exclusion for a rule outside the collection is not reported, and the cross-rule checks
    (identifier_uniqueness, duplicate_title, duplicate_filename) see only these rules.
    """
    install_offline_data()
    config = config or ValidationConfig()
    findings = [load_error_finding(error) for error in collection.errors]
    with _rule_sources(collection):
        findings.extend(_validate_rules(collection))
    findings = _apply_exclusions(findings, collection, config, partial)
    unique = sorted(set(findings), key=sort_key)
    logger.debug("validated %d rules: %d findings", len(collection.rules), len(unique))
    return unique
