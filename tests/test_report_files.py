"""Report files named on the command line: replaced atomically, never turned into other files."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from siemgen.cli import app
from siemgen.errors import ConfigError
from siemgen.output import write_report

from paths import CANONICAL, RULES


def test_new_report_written(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    write_report(target, b"{}\n", "--output")
    assert target.read_bytes() == b"{}\n"


def test_replaced_report_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_report(target, b"new", "--output")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_symlink_kept_and_target_written(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_report(link, b"new", "--output")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


def test_named_pipe_written_in_place(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    write_report(pipe, b"through the pipe", "--output")
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)


def test_device_stays_a_device() -> None:
    write_report(Path(os.devnull), b"discarded", "--output")
    assert stat.S_ISCHR(Path(os.devnull).stat().st_mode)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_full_device_reports_error() -> None:
    with pytest.raises(ConfigError, match="cannot write the report: No space left"):
        write_report(Path("/dev/full"), b"x" * 100_000, "--output")
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)


def test_folder_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the report path is a folder"):
        write_report(tmp_path, b"x", "--junit")


def copied_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    return folder


def canonical_in(folder: Path) -> Path:
    return folder / CANONICAL.relative_to(RULES)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_check_output_cannot_replace_a_rule(tmp_path: Path) -> None:
    rules = copied_rules(tmp_path)
    rule = canonical_in(rules)
    before = rule.read_bytes()
    with pytest.raises(ConfigError, match="a report may not be named like a rule or test file"):
        CliRunner().invoke(
            app,
            ["check", "-r", str(rules), "--no-cache-results", "-o", str(rule)],
            catch_exceptions=False,
        )
    assert rule.read_bytes() == before


@pytest.mark.parametrize(
    ("named", "option", "report"),
    [("folder", "--json", "tests"), ("folder", "--junit", "link"), ("rule", "--junit", "tests")],
)
def test_test_report_cannot_replace_an_input(
    tmp_path: Path, named: str, option: str, report: str
) -> None:
    rules = copied_rules(tmp_path)
    rule = canonical_in(rules)
    victim = rule if report == "link" else rule.with_name(rule.stem + ".tests.json")
    before = victim.read_bytes()
    path = victim
    if report == "link":
        path = tmp_path / "report.xml"
        path.symlink_to(rule)
    result = invoke("test", str(rules if named == "folder" else rule), option, str(path))
    assert result.exit_code == 2
    assert "a report may not be named like a rule or test file" in result.stderr
    if report == "link":
        assert "nor be a link to one" in result.stderr
    assert victim.read_bytes() == before


def test_hunt_output_cannot_replace_a_rule(tmp_path: Path) -> None:
    rules = copied_rules(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "empty.jsonl").write_text("")
    rule = canonical_in(rules)
    link = tmp_path / "hits.txt"
    link.symlink_to(rule)
    before = rule.read_bytes()
    result = invoke("hunt", str(logs), "-r", str(rules), "-o", str(link))
    assert result.exit_code == 2
    assert "nor be a link to one" in result.stderr
    assert rule.read_bytes() == before


def test_same_file_for_junit_and_json_refused(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    result = invoke("test", str(CANONICAL), "--junit", str(target), "--json", str(target))
    assert result.exit_code == 2
    assert "--junit and --json name the same file" in result.stderr
    assert not target.exists()


def test_dash_output_means_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["check", "-r", str(CANONICAL), "--no-cache-results", "-f", "json", "-o", "-"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rules"] == 1
    assert not (tmp_path / "-").exists()


def test_check_output_cannot_replace_generated_files(tmp_path: Path) -> None:
    generated = tmp_path / "generated"
    target = generated / "athena" / "x.sql"
    target.parent.mkdir(parents=True)
    target.write_text("SELECT 1\n")
    with pytest.raises(ConfigError, match="the --output file is among the generated files"):
        CliRunner().invoke(
            app,
            ["check", "-r", str(CANONICAL), "--generated", str(generated), "-o", str(target)],
            catch_exceptions=False,
        )
    assert target.read_text() == "SELECT 1\n"


def test_report_named_like_a_rule_refused(tmp_path: Path) -> None:
    target = tmp_path / "other_rule.yml"
    result = invoke("test", str(CANONICAL), "--json", str(target))
    assert result.exit_code == 2
    assert "a report may not be named like a rule or test file" in result.stderr
    assert not target.exists()


def test_dot_dot_report_makes_no_extra_folder(tmp_path: Path) -> None:
    write_report(tmp_path / "ghost" / ".." / "report.json", b"{}", "--output")
    assert (tmp_path / "report.json").read_bytes() == b"{}"
    assert not (tmp_path / "ghost").exists()


def test_link_to_a_rule_refused_as_report(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    rule = next(rules.rglob("aws_iam_policy_changed.yml"))
    before = rule.read_bytes()
    link = tmp_path / "report.csv"
    link.symlink_to(rule)
    result = invoke("test", str(CANONICAL), "--json", str(link))
    assert result.exit_code == 2
    assert "nor be a link to one" in result.stderr
    assert rule.read_bytes() == before


def test_hunt_to_stdout_pipe_does_not_wait(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "one.jsonl"
    log.write_text(json.dumps({"eventID": "x", "eventName": "GetUser"}) + "\n")
    siemgen = str(Path(sys.executable).with_name("siemgen"))
    command = [siemgen, "hunt", str(log), "-r", str(CANONICAL), "-o", "/dev/stdout"]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert b"0 matching records" in done.stderr
