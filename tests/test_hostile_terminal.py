"""Rule files named with terminal escape sequences, run through the real CLI.

Every line `siemgen build`, `test` and `check` print must show such a name escaped by
``siemgen.terminal.printable``, so that it can neither clear the screen nor write the
clipboard. JSON, SARIF and JUnit keep the exact name, encoded the way their format allows.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

import jsonschema
import pytest

from siemgen.cli import PrintableFormatter

from paths import RULES

SIEMGEN = Path(sys.executable).with_name("siemgen")
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "check" / "sarif-schema-2.1.0.json"
SOURCE = RULES / "aws" / "cloudtrail" / "aws_console_login_without_mfa.yml"

# A valid rule with its tests, clearing the screen (CSI 2 J).
CLEAR = "bad\x1b[2Jname.yml"
# Rule files that are not YAML, so that every command names them in an error. The first writes
# "pwned" to the clipboard (OSC 52), the second reverses the text after it (U+202E).
CLIPBOARD = "c\x1b]52;c;cHduZWQ=\x07.yml"
REVERSED = "rtl\u202eyml.txt.yml"

RAW = [b"\x1b", b"\x07", "\u202e".encode()]
SHOWN = {
    CLEAR: "bad\\x1b[2Jname.yml",
    CLIPBOARD: "c\\x1b]52;c;cHduZWQ=\\x07.yml",
    REVERSED: "rtl\\u202eyml.txt.yml",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A folder with rules/ containing the three hostile names."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(SOURCE, rules / CLEAR)
    shutil.copy(SOURCE.with_suffix(".tests.json"), rules / CLEAR.replace(".yml", ".tests.json"))
    (rules / CLIPBOARD).write_text("title: [\n", encoding="utf-8")
    (rules / REVERSED).write_text("title: [\n", encoding="utf-8")
    return tmp_path


def siemgen(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the installed siemgen in ``repo``, capturing the bytes a terminal would receive."""
    return subprocess.run(
        [str(SIEMGEN), *args],
        cwd=repo,
        capture_output=True,
        timeout=300,
        check=False,
    )


def assert_escaped(output: bytes, names: list[str]) -> None:
    for raw in RAW:
        assert raw not in output
    text = output.decode("utf-8")
    for name in names:
        assert SHOWN[name] in text


def test_build_escapes_names(repo: Path) -> None:
    result = siemgen(repo, "build", "--rules", "rules", "--out", "out", "--no-packages")
    assert result.returncode == 1
    assert_escaped(result.stdout + result.stderr, [CLIPBOARD, REVERSED])


def test_test_text_escapes_names(repo: Path) -> None:
    result = siemgen(repo, "test", "rules")
    assert result.returncode == 1
    assert_escaped(result.stdout + result.stderr, [CLIPBOARD, REVERSED])
    assert b"PASS bad_2Jname: athena 6/6" in result.stdout


def test_test_json_keeps_exact_names(repo: Path) -> None:
    result = siemgen(repo, "test", "rules", "--format", "json", "--json", "report.json")
    assert_escaped(result.stderr, [])
    for raw in RAW:
        assert raw not in result.stdout
    for report in (json.loads(result.stdout), json.loads((repo / "report.json").read_bytes())):
        assert {Path(error["path"]).name for error in report["errors"]} == {CLIPBOARD, REVERSED}
        assert [Path(rule["rule"]).name for rule in report["rules"]] == [CLEAR]


def test_test_junit_stays_valid(repo: Path) -> None:
    result = siemgen(repo, "test", "rules", "--junit", "junit.xml")
    assert result.returncode == 1
    data = (repo / "junit.xml").read_bytes()
    for raw in RAW:
        assert raw not in data
    names = {case.get("name") for case in ElementTree.fromstring(data).iter("testcase")}
    # XML 1.0 cannot hold ESC or BEL even as a reference, so they become U+FFFD. U+202E is
    # written as a reference and read back exactly.
    assert "rules/c\ufffd]52;c;cHduZWQ=\ufffd.yml" in names
    assert f"rules/{REVERSED}" in names


@pytest.mark.parametrize("output_format", ["text", "github"])
def test_check_text_escapes_names(repo: Path, output_format: str) -> None:
    result = siemgen(repo, "check", "--rules", "rules", "--format", output_format)
    assert result.returncode == 1
    assert_escaped(result.stdout + result.stderr, [CLEAR, CLIPBOARD, REVERSED])


def test_check_json_keeps_exact_names(repo: Path) -> None:
    result = siemgen(repo, "check", "--rules", "rules", "--format", "json")
    assert result.returncode == 1
    assert_escaped(result.stdout + result.stderr, [])
    paths = {finding["path"] for finding in json.loads(result.stdout)["findings"]}
    assert paths == {f"rules/{name}" for name in (CLEAR, CLIPBOARD, REVERSED)}


def test_check_sarif_encodes_uris(repo: Path) -> None:
    result = siemgen(repo, "check", "--rules", "rules", "--format", "sarif", "-o", "out.sarif")
    assert result.returncode == 1
    assert_escaped(result.stderr, [])
    data = (repo / "out.sarif").read_bytes()
    for raw in RAW:
        assert raw not in data
    log = json.loads(data)
    jsonschema.validate(log, json.loads(SARIF_SCHEMA.read_text(encoding="utf-8")))
    uris = {
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for result in log["runs"][0]["results"]
    }
    assert "rules/bad%1B%5B2Jname.yml" in uris
    assert {unquote(uri) for uri in uris} == {f"rules/{n}" for n in (CLEAR, CLIPBOARD, REVERSED)}


def test_check_junit_stays_valid(repo: Path) -> None:
    result = siemgen(repo, "check", "--rules", "rules", "--format", "junit")
    assert result.returncode == 1
    assert_escaped(result.stdout + result.stderr, [])
    names = {case.get("classname") for case in ElementTree.fromstring(result.stdout).iter()}
    assert "rules/bad\ufffd[2Jname.yml" in names
    assert f"rules/{REVERSED}" in names


def test_check_list_validators_keeps_tabs(repo: Path) -> None:
    result = siemgen(repo, "check", "--list-validators")
    assert result.returncode == 0
    assert all(line.count(b"\t") >= 2 for line in result.stdout.splitlines())


def test_usage_error_is_one_escaped_line(repo: Path) -> None:
    result = siemgen(repo, "test", CLIPBOARD.replace(".yml", "-missing"))
    assert result.returncode == 2
    assert_escaped(result.stderr, [])
    assert result.stderr.decode().splitlines() == [
        "error: c\\x1b]52;c;cHduZWQ=\\x07-missing: rule path not found (pass a rule file or a "
        "folder of rules)"
    ]


def test_verbose_traceback_is_escaped(repo: Path) -> None:
    result = siemgen(repo, "test", "--verbose", CLIPBOARD.replace(".yml", "-missing"))
    assert result.returncode == 2
    assert_escaped(result.stderr, [])
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "ConfigError" in lines[-1]
    assert "c\\x1b]52;c;cHduZWQ=\\x07-missing" in lines[-1]


def test_log_records_are_escaped() -> None:
    formatter = PrintableFormatter("%(levelname)s: %(message)s")
    record = logging.LogRecord(
        "siemgen.output", logging.WARNING, __file__, 1, "kept %s", (CLIPBOARD + "\nforged",), None
    )
    assert formatter.format(record) == "WARNING: kept c\\x1b]52;c;cHduZWQ=\\x07.yml\\nforged"


def test_name_not_utf8_is_reported(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    # Python keeps the byte 0xff of a file name that is not UTF-8 as the surrogate U+DCFF.
    name = "bad\udcffname.yml"
    (rules / name).write_text("title: [\n", encoding="utf-8")
    check = siemgen(tmp_path, "check", "--rules", "rules", "--format", "json")
    assert check.returncode == 1
    assert [f["path"] for f in json.loads(check.stdout)["findings"]] == [f"rules/{name}"]
    sarif = siemgen(tmp_path, "check", "--rules", "rules", "--format", "sarif")
    location = json.loads(sarif.stdout)["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "rules/bad%FFname.yml"
    junit = siemgen(tmp_path, "check", "--rules", "rules", "--format", "junit")
    assert "rules/bad\ufffdname.yml" in {
        case.get("classname") for case in ElementTree.fromstring(junit.stdout).iter("testcase")
    }
    test = siemgen(tmp_path, "test", "rules", "--json", "report.json", "--junit", "junit.xml")
    assert test.returncode == 1
    report = json.loads((tmp_path / "report.json").read_bytes())
    assert report["errors"][0]["path"] == f"rules/{name}"
    ElementTree.parse(tmp_path / "junit.xml")
