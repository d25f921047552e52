"""Tests for offline rule validation: pySigma, SigmaHQ conventions and siemgen policy."""

from __future__ import annotations

import importlib
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from siemgen.errors import ConfigError
from siemgen.rules import load_collection
from siemgen.validate import (
    Finding,
    Mode,
    ValidationConfig,
    load_config,
    validate_collection,
    validator_report,
)
from siemgen.validation.registry import REPLACED, installed_validators

from paths import CANONICAL, CORPUS, RULES

CONFIG_DATA = Path(__file__).resolve().parent / "data" / "validate"
NETWORK_VALIDATORS = (
    "attacktag",
    "d3_fendtag",
    "sigmahq_fieldname_cast",
    "sigmahq_invalid_fieldname",
    "sigmahq_logsource_unknown",
    "sigmahq_redundant_field",
    "sigmahq_tags_techniques_without_tactics",
)

RuleCopier = Callable[..., Path]


@pytest.fixture
def copy_rule(tmp_path: Path) -> RuleCopier:
    """Copy the canonical rule into ``tmp_path/rules`` under the given file name."""
    folder = tmp_path / "rules"
    folder.mkdir()

    def copy(name: str = "aws_iam_policy_changed.yml") -> Path:
        target = folder / name
        shutil.copyfile(CANONICAL, target)
        return target

    return copy


def _write(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, start: str) -> int:
    """Return the 1-based line of the first line of ``path`` that starts with ``start``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith(start):
            return number
    raise AssertionError(f"no line starting with {start!r} in {path}")


def _validate(folder: Path, config: ValidationConfig | None = None) -> list[Finding]:
    return validate_collection(load_collection([folder]), config)


def _by_validator(findings: list[Finding], validator: str) -> list[Finding]:
    return [finding for finding in findings if finding.validator == validator]


def test_canonical_copy_is_clean(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    assert _validate(path.parent) == []


def test_duplicate_id_in_both_files(copy_rule: RuleCopier) -> None:
    first = copy_rule()
    second = copy_rule("aws_iam_policy_changed_copy.yml")
    _write(second, "title: AWS IAM Policy Changed", "title: AWS IAM Policy Changed Again")

    found = _by_validator(_validate(first.parent), "identifier_uniqueness")

    assert sorted(f.path for f in found) == [first, second]
    for finding in found:
        assert finding.line == _line_of(finding.path, "id:")
        assert finding.severity == "error"
        assert finding.rule_id == "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60"
    first_finding = next(f for f in found if f.path == first)
    assert str(second) in first_finding.message


def test_duplicate_title_in_both_files(copy_rule: RuleCopier) -> None:
    first = copy_rule()
    second = copy_rule("aws_iam_policy_changed_copy.yml")
    _write(
        second,
        "id: 7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60",
        "id: 0e7c3a52-6a8e-4f5b-9f0e-2d9c1b7a4e11",
    )

    found = _by_validator(_validate(first.parent), "duplicate_title")

    assert sorted(f.path for f in found) == [first, second]
    assert all(f.line == 1 for f in found)
    assert all(f.severity == "error" for f in found)


def test_missing_description(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    text = path.read_text(encoding="utf-8")
    start = text.index("description: |")
    end = text.index("references:")
    path.write_text(text[:start] + text[end:], encoding="utf-8")

    found = _by_validator(_validate(path.parent), "sigmahq_description_existence")

    assert len(found) == 1
    assert found[0].path == path
    # A missing key has no line of its own.
    assert found[0].line is None
    assert found[0].severity == "error"
    assert found[0].title == "AWS IAM Policy Changed"


def test_unknown_attack_technique(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "- attack.t1484", "- attack.t1999")

    found = _by_validator(_validate(path.parent), "attacktag")

    assert len(found) == 1
    assert found[0].path == path
    assert found[0].line == _line_of(path, "- attack.t1999")
    assert found[0].severity == "error"
    assert "'attack.t1999'" in found[0].message


def test_retired_attack_tags_name_replacement(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "- attack.defense-impairment", "- attack.defense-evasion")
    _write(path, "- attack.t1484", "- attack.t1562.008")

    found = _by_validator(_validate(path.parent), "attacktag")

    messages = {f.line: f.message for f in found}
    evasion = messages[_line_of(path, "- attack.defense-evasion")]
    assert "attack.stealth or attack.defense-impairment" in evasion
    cloud_logs = messages[_line_of(path, "- attack.t1562.008")]
    assert "ATT&CK 18.1" in cloud_logs


def test_broken_condition(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "condition: selection", "condition: selection and")

    findings = _validate(path.parent)
    found = _by_validator(findings, "siemgen_condition")

    assert len(found) == 1
    assert found[0].path == path
    assert found[0].line == _line_of(path, "condition:")
    assert found[0].severity == "error"
    assert "'selection and'" in found[0].message
    assert [f for f in findings if "validator failed" in f.message] == []


def test_load_error_becomes_finding(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    broken = path.parent / "aws_broken_rule.yml"
    broken.write_text("title: Broken\ntitle: Twice\n", encoding="utf-8")

    found = _by_validator(_validate(path.parent), "siemgen_load")

    assert len(found) == 1
    assert found[0].path == broken
    assert found[0].line == 2
    assert found[0].severity == "error"
    assert "duplicate key 'title'" in found[0].message


def test_missing_falsepositives_and_references(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "falsepositives:", "old_falsepositives:")
    _write(path, "references:", "old_references:")

    found = _by_validator(_validate(path.parent), "siemgen_required_fields")

    assert sorted(f.message for f in found) == [
        "the rule has no 'falsepositives' list, which siemgen requires",
        "the rule has no 'references' list, which siemgen requires",
    ]


@pytest.mark.parametrize(
    ("old", "new", "line_start", "expected"),
    [
        ('control: "3.4"', "control: 3.4", "control: 3.4", "must be a quoted string"),
        ("version: 1.2.0", "version: v1", "version: v1", "not in the form 1.2.0"),
        ("control: CloudWatch.4", "control: cloudwatch-4", "control: cloudwatch", "CloudWatch.4"),
        ("framework: aws-security-hub", "framework: pci-dss", "- framework: pci", "unknown"),
        ('control: "4.4"', 'control: "4.x"', 'control: "4.x"', "not in the form"),
    ],
)
def test_compliance_format(
    copy_rule: RuleCopier, old: str, new: str, line_start: str, expected: str
) -> None:
    path = copy_rule()
    _write(path, old, new)

    found = _by_validator(_validate(path.parent), "siemgen_compliance")

    assert len(found) == 1
    assert found[0].line == _line_of(path, line_start)
    assert expected in found[0].message


def test_compliance_extra_key(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "control: CloudWatch.4", "control: CloudWatch.4\n      version: 1.0.0")

    found = _by_validator(_validate(path.parent), "siemgen_compliance")

    assert len(found) == 1
    assert "unknown key 'version'" in found[0].message


def test_unknown_and_miscased_fields(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "eventSource: iam.amazonaws.com", "eventsource: iam.amazonaws.com")
    _write(
        path,
        "    condition: selection",
        "    filter:\n        requestParameters.policyArn: x\n        userAgentx: y\n"
        "    condition: selection and not filter",
    )

    findings = _validate(path.parent)

    case = _by_validator(findings, "siemgen_field_case")
    unknown = _by_validator(findings, "siemgen_unknown_field")
    assert [f.line for f in case] == [_line_of(path, "eventsource:")]
    assert "'eventSource'" in case[0].message
    assert [f.line for f in unknown] == [_line_of(path, "userAgentx:")]


def test_custom_attribute_shapes(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "notes:", "tests:\n    run: always\nextra_key: 1\nnotes:")

    found = _by_validator(_validate(path.parent), "siemgen_custom_attributes")

    by_line = {f.line: f for f in found}
    assert by_line[_line_of(path, "extra_key:")].severity == "warning"
    assert by_line[_line_of(path, "tests:")].severity == "error"


def test_d3fend_tags(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "- attack.t1484", "- attack.t1484\n    - d3fend.detect\n    - d3fend.d3-aa")

    findings = _validate(path.parent)
    found = _by_validator(findings, "siemgen_d3fend_tag")

    assert [f.line for f in found] == [_line_of(path, "- d3fend.d3-aa")]
    assert found[0].severity == "warning"
    assert _by_validator(findings, "d3_fendtag") == []


def test_exclusion_drops_finding(copy_rule: RuleCopier, tmp_path: Path) -> None:
    path = copy_rule()
    _write(path, "title: AWS IAM Policy Changed", "title: AWS IAM policy changed")
    assert _by_validator(_validate(path.parent), "sigmahq_title_case") != []
    (tmp_path / ".siemgen.yml").write_text(
        "validation:\n"
        "  exclusions:\n"
        "    - rule: aws_iam_policy_changed\n"
        "      validator: sigmahq_title_case\n"
        "      reason: the title is written in sentence case on purpose\n",
        encoding="utf-8",
    )

    config = load_config(tmp_path)
    findings = _validate(path.parent, config)

    assert config.path == tmp_path / ".siemgen.yml"
    assert config.exclusions[0].line == 3
    assert _by_validator(findings, "sigmahq_title_case") == []
    assert findings == []


def test_exclusion_by_rule_id(copy_rule: RuleCopier, tmp_path: Path) -> None:
    path = copy_rule()
    _write(path, "- attack.t1484", "- attack.t1999")
    config_path = tmp_path / "siemgen.toml"
    config_path.write_text(
        "[[validation.exclusions]]\n"
        'rule = "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60"\n'
        'validator = "attacktag"\n'
        'reason = "the technique is newer than the pinned ATT&CK data"\n',
        encoding="utf-8",
    )

    findings = _validate(path.parent, load_config(config_path))

    assert _by_validator(findings, "attacktag") == []


def test_unused_exclusion_reported(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    config_path = CONFIG_DATA / "unused-exclusion" / ".siemgen.yml"
    config = load_config(config_path)

    findings = _validate(path.parent, config)
    found = _by_validator(findings, "siemgen_config")

    assert [(f.path, f.line, f.severity) for f in found] == [
        (config_path, 3, "warning"),
        (config_path, 6, "warning"),
    ]
    assert "names no rule" in found[0].message
    assert "matches no 'sigmahq_title_case' finding" in found[1].message


def test_partial_run_skips_other_rules(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    config = load_config(CONFIG_DATA / "unused-exclusion" / ".siemgen.yml")

    findings = validate_collection(load_collection([path.parent]), config, partial=True)

    assert [f.line for f in _by_validator(findings, "siemgen_config")] == [6]


@pytest.mark.parametrize(
    ("folder", "expected", "line"),
    [
        ("missing-reason", "has no 'reason'", 3),
        ("unknown-validator", "did you mean 'sigmahq_title_case'?", 3),
        ("unknown-key", "unknown key 'comment'", 3),
    ],
)
def test_invalid_config_rejected(folder: str, expected: str, line: int) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(CONFIG_DATA / folder)
    assert expected in str(raised.value)
    assert raised.value.line == line
    assert raised.value.path == CONFIG_DATA / folder / ".siemgen.yml"


def test_two_config_files_rejected(tmp_path: Path) -> None:
    (tmp_path / ".siemgen.yml").write_text("validation: {}\n", encoding="utf-8")
    (tmp_path / "siemgen.toml").write_text("[validation]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="more than one"):
        load_config(tmp_path)


def test_folder_without_config(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.exclusions == ()
    assert config.path is None


def _unpin_pysigma_data() -> None:
    """Reload pySigma's data modules so they would download again if siemgen did not pin them."""
    from sigma.data import mitre_attack, mitre_d3fend
    from sigma.validators.sigmahq.data import (
        data_filename,
        data_taxonomy,
        data_windows_eventid,
        data_windows_provider,
    )

    modules = (
        mitre_attack,
        mitre_d3fend,
        data_filename,
        data_taxonomy,
        data_windows_eventid,
        data_windows_provider,
    )
    for module in modules:
        for name in [n for n in vars(module) if n.startswith(("mitre_", "sigmahq_"))]:
            delattr(module, name)
        importlib.reload(module)


def test_validation_with_network_blocked(
    copy_rule: RuleCopier, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is blocked in this test")

    path = copy_rule()
    _write(path, "- attack.t1484", "- attack.t1999")
    _unpin_pysigma_data()
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)

    findings = _validate(path.parent)

    assert attempts == []
    assert [f for f in findings if "validator failed" in f.message] == []
    assert [f.validator for f in findings] == ["attacktag"]


def test_blocked_socket_refuses_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that the blocking used above really stops pySigma's own download."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    from sigma.validators.sigmahq.data import base

    loader = base.SigmahqDataLoader.__subclasses__()[0]()
    with pytest.raises(RuntimeError):
        loader._fetch_json("https://example.invalid/data.json")
    assert attempts != []


def test_project_rules_validate_clean() -> None:
    findings = _validate(RULES, load_config(RULES.parent))
    assert [str(f) for f in findings] == []


def test_corpus_validates_without_crash() -> None:
    if not CORPUS.is_dir():
        pytest.skip("community rule corpus not present")
    findings = _validate(CORPUS)
    unexpected = [
        str(f)
        for f in findings
        if f.validator in ("attacktag", "siemgen_load", "siemgen_condition")
        or "validator failed" in f.message
    ]
    assert unexpected == []
    assert len(load_collection([CORPUS]).rules) == len(list(CORPUS.glob("*.yml")))


def test_report_covers_installed_validators() -> None:
    report = validator_report()
    names = [row.name for row in report]
    installed = installed_validators()

    assert len(installed) == 80
    assert len(names) == len(set(names))
    assert set(installed) <= set(names)
    for name in NETWORK_VALIDATORS:
        row = next(r for r in report if r.name == name)
        assert row.mode in (Mode.SHIPPED_DATA, Mode.REPLACED), name
    for name, (replacement, _) in REPLACED.items():
        assert replacement in names, name
    for row in report:
        if row.mode in (Mode.REPLACED, Mode.NOT_APPLICABLE, Mode.SHIPPED_DATA):
            assert row.detail, row.name


def test_report_modes_of_known_validators() -> None:
    modes = {row.name: row.mode for row in validator_report()}
    assert modes["attacktag"] == Mode.SHIPPED_DATA
    assert modes["d3_fendtag"] == Mode.REPLACED
    assert modes["sigmahq_status_to_high"] == Mode.NOT_APPLICABLE
    assert modes["dangling_detection"] == Mode.AS_IS
    assert modes["siemgen_compliance"] == Mode.SIEMGEN


def test_findings_are_sorted(copy_rule: RuleCopier) -> None:
    path = copy_rule()
    _write(path, "- attack.t1484", "- attack.t1999")
    _write(path, "- attack.t1098.003", "- attack.t1098.999")

    findings = _validate(path.parent)

    assert len(findings) == 2
    assert [f.line for f in findings] == sorted(f.line or 0 for f in findings)


@pytest.mark.parametrize(
    ("validator", "old", "new", "line_start"),
    [
        (
            "sigmahq_title_case",
            "title: AWS IAM Policy Changed",
            "title: AWS IAM policy Changed",
            "title:",
        ),
        (
            "duplicate_tag",
            "- attack.t1484",
            "- attack.t1484\n    - attack.t1098",
            "- attack.t1098\n",
        ),
        (
            "duplicate_references",
            "    - https://docs.aws.amazon.com/IAM/latest/APIReference/API_DetachGroupPolicy.html",
            "    - https://docs.aws.amazon.com/IAM/latest/APIReference/API_DetachGroupPolicy.html\n"
            "    - https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html",
            "- https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html\n",
        ),
        (
            "sigmahq_falsepositives_capital",
            "    - Administrators",
            "    - administrators",
            "falsepositives:",
        ),
        (
            "wildcards_instead_of_modifiers",
            "eventSource: iam.amazonaws.com",
            "eventSource: '*iam.amazonaws.com'",
            "eventSource:",
        ),
    ],
)
def test_issue_line_per_validator(
    copy_rule: RuleCopier, validator: str, old: str, new: str, line_start: str
) -> None:
    path = copy_rule()
    _write(path, old, new)

    found = _by_validator(_validate(path.parent), validator)

    assert len(found) == 1
    assert found[0].line == _last_line_of(path, line_start)


def _last_line_of(path: Path, text: str) -> int:
    """Return the 1-based line of the last line of ``path`` that matches ``text``.

    ``text`` ending in a newline must match the whole stripped line, otherwise its start.
    """
    whole = text.endswith("\n")
    wanted = text.strip()
    found = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if stripped == wanted if whole else stripped.startswith(wanted):
            found = number
    assert found, f"no line matching {text!r} in {path}"
    return found


def test_filename_issue_has_no_line(copy_rule: RuleCopier) -> None:
    path = copy_rule("AWS_Policy.yml")

    found = _by_validator(_validate(path.parent), "sigmahq_filename_convention")

    assert len(found) == 1
    assert found[0].path == path
    assert found[0].line is None
    assert "'AWS_Policy.yml'" in found[0].message
