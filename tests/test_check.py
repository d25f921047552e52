"""`siemgen check`: each kind of problem, in every report format, on a copy of the rules."""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest
from typer.testing import CliRunner

from siemgen.cli import app

from paths import CANONICAL

SCHEMA = Path(__file__).resolve().parent / "data" / "check" / "sarif-schema-2.1.0.json"
RULE = "sigma/aws/cloudtrail/aws_iam_policy_changed.yml"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with the canonical rule (and its tests, when present) in sigma/."""
    target = tmp_path / RULE
    target.parent.mkdir(parents=True)
    shutil.copy(CANONICAL, target)
    tests = CANONICAL.with_name("aws_iam_policy_changed.tests.json")
    if tests.exists():
        shutil.copy(tests, target.with_name(tests.name))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--no-cache-results", *args])
    return result.exit_code, result.stdout


def edit(repo: Path, old: str, new: str, relative: str = RULE) -> int:
    """Replace text in a file of the repository and return the line it is on."""
    path = repo / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def locations(output_format: str, output: str) -> set[tuple[str, int | None]]:
    """Read the (file, line) pairs of the errors out of one report format."""
    if output_format == "json":
        return {
            (f["path"], f["line"])
            for f in json.loads(output)["findings"]
            if f["severity"] == "error"
        }
    if output_format == "sarif":
        log = json.loads(output)
        found = set()
        for result in log["runs"][0]["results"]:
            physical = result["locations"][0]["physicalLocation"]
            line = physical.get("region", {}).get("startLine")
            found.add((physical["artifactLocation"]["uri"], line))
        return found
    if output_format == "github":
        return {
            (m["file"], int(m["line"]) if m["line"] else None)
            for m in re.finditer(
                r"^::error file=(?P<file>[^,]+)(?:,line=(?P<line>\d+))?", output, re.M
            )
        }
    if output_format == "junit":
        suite = ElementTree.fromstring(output)
        found = set()
        for failure in suite.iter("failure"):
            for match in re.finditer(r"^(\S+?):(\d+): ", failure.text or "", re.M):
                found.add((match[1], int(match[2])))
        return found
    found = set()
    current = ""
    for text_line in output.splitlines():
        if text_line and not text_line.startswith(" ") and not text_line.startswith("checked"):
            current = text_line
        match = re.match(r"  line (\d+): error", text_line)
        if match:
            found.add((current, int(match[1])))
    return found


FORMATS = ["text", "json", "sarif", "github", "junit"]


def test_committed_rules_are_clean(repo: Path) -> None:
    status, output = check()
    assert status == 0, output
    assert output.strip().endswith("no findings")


@pytest.mark.parametrize("output_format", FORMATS)
def test_duplicate_id_points_at_id_line(repo: Path, output_format: str) -> None:
    copy = repo / "sigma" / "aws" / "cloudtrail" / "copy_of_rule.yml"
    copy.write_text(
        CANONICAL.read_text(encoding="utf-8").replace(
            "title: AWS IAM Policy Changed", "title: Copy Of The Rule"
        ),
        encoding="utf-8",
    )
    status, output = check("--format", output_format)
    assert status == 1
    found = locations(output_format, output)
    assert (RULE, 2) in found
    assert ("sigma/aws/cloudtrail/copy_of_rule.yml", 2) in found


@pytest.mark.parametrize("output_format", FORMATS)
def test_missing_description_is_found(repo: Path, output_format: str) -> None:
    path = repo / RULE
    text = path.read_text(encoding="utf-8")
    start = text.index("description: |")
    end = text.index("references:")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    status, output = check("--format", output_format)
    assert status == 1
    assert (RULE, 1) in locations(output_format, output)
    assert "description" in output


@pytest.mark.parametrize("output_format", FORMATS)
def test_unknown_technique_points_at_its_tag(repo: Path, output_format: str) -> None:
    line = edit(repo, "    - attack.t1098.003", "    - attack.t1999.999")
    status, output = check("--format", output_format)
    assert status == 1
    assert (RULE, line) in locations(output_format, output)


@pytest.mark.parametrize("output_format", FORMATS)
def test_broken_condition_points_at_condition(repo: Path, output_format: str) -> None:
    line = edit(repo, "    condition: selection", "    condition: selection and missing")
    status, output = check("--format", output_format)
    assert status == 1
    assert (RULE, line) in locations(output_format, output)


def generate(repo: Path) -> Path:
    result = CliRunner().invoke(
        app, ["build", "--rules", "sigma", "--out", "generated", "--no-packages"]
    )
    assert result.exit_code == 0, result.output
    return repo / "generated"


@pytest.mark.parametrize("output_format", FORMATS)
def test_hand_edited_generated_file_is_drift(repo: Path, output_format: str) -> None:
    generated = generate(repo)
    assert check()[0] == 0
    query = generated / "splunk" / "aws_iam_policy_changed.spl"
    query.write_text(query.read_text(encoding="utf-8").replace("iam.", "iam2."), encoding="utf-8")
    status, output = check("--format", output_format)
    assert status == 1
    assert ("generated/splunk/aws_iam_policy_changed.spl", 1) in locations(output_format, output)
    assert "siemgen build --rules sigma --out generated --no-packages" in output


def test_drift_shows_a_unified_diff(repo: Path) -> None:
    generated = generate(repo)
    page = generated / "docs" / "aws_iam_policy_changed.md"
    page.write_text(page.read_text(encoding="utf-8") + "extra line\n", encoding="utf-8")
    status, output = check()
    assert status == 1
    assert "--- a/generated/docs/aws_iam_policy_changed.md" in output
    assert "-extra line" in output


def test_sarif_validates_against_the_schema(repo: Path) -> None:
    edit(repo, "    - attack.t1098.003", "    - attack.t1999.999")
    status, output = check("--format", "sarif")
    assert status == 1
    log = json.loads(output)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(log, schema)
    assert log["runs"][0]["results"]


def test_junit_counts_failures(repo: Path) -> None:
    edit(repo, "    - attack.t1098.003", "    - attack.t1999.999")
    status, output = check("--format", "junit")
    suite = ElementTree.fromstring(output)
    assert status == 1
    assert suite.tag == "testsuite"
    assert int(suite.get("failures", "0")) >= 1
    assert int(suite.get("tests", "0")) == len(suite.findall("testcase"))


def test_unknown_format_is_a_usage_error(repo: Path) -> None:
    from siemgen.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown format 'xml'"):
        CliRunner().invoke(app, ["check", "--format", "xml"], catch_exceptions=False)


def test_cached_run_equals_full_run(repo: Path, tmp_path: Path) -> None:
    generate(repo)
    edit(repo, "    - attack.t1098.003", "    - attack.t1999.999")
    runner = CliRunner()
    cached = ["check", "--format", "json", "--cache", str(tmp_path / "cache")]
    first = runner.invoke(app, cached)
    second = runner.invoke(app, cached)
    uncached = runner.invoke(app, ["check", "--format", "json", "--no-cache-results"])
    assert first.stdout == second.stdout == uncached.stdout
    assert list((tmp_path / "cache").rglob("*.json"))
    edit(repo, "    - attack.t1999.999", "    - attack.t1098.003")
    third = runner.invoke(app, cached)
    fourth = runner.invoke(app, ["check", "--format", "json", "--no-cache-results"])
    assert third.stdout == fourth.stdout
    assert third.exit_code == 0


def test_results_committed_to_the_repository_are_ignored(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_cache = tmp_path / "user-cache"
    monkeypatch.setenv("SIEMGEN_CACHE_DIR", str(user_cache))
    runner = CliRunner()
    assert runner.invoke(app, ["check"]).exit_code == 0
    # A pull request plants the clean results of the old rule in the repository and in the
    # old default folder, then breaks the rule.
    for entry in user_cache.rglob("*.json"):
        for folder in (repo / ".siemgen-cache", repo / ".cache" / "siemgen"):
            planted = folder / entry.relative_to(user_cache)
            planted.parent.mkdir(parents=True, exist_ok=True)
            planted.write_bytes(entry.read_bytes())
    edit(repo, "    - attack.t1098.003", "    - attack.t1999.999")
    monkeypatch.setenv("SIEMGEN_CACHE_DIR", str(tmp_path / "fresh-ci-cache"))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "t1999" in result.stdout


def test_changed_since_limits_findings(repo: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "rules")
    other = repo / "sigma" / "aws" / "cloudtrail" / "other.yml"
    other.write_text(
        CANONICAL.read_text(encoding="utf-8")
        .replace("title: AWS IAM Policy Changed", "title: Other Rule")
        .replace("7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60", "9c1f0a4e-3b2d-4e5f-8a7b-6c5d4e3f2a1b")
        .replace("    - attack.t1098.003", "    - attack.t1999.999"),
        encoding="utf-8",
    )
    edit(repo, "    - attack.t1098.003", "    - attack.t1999.998")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", RULE)
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "edit")
    status, output = check("--format", "json", "--changed-since", "HEAD")
    paths = {f["path"] for f in json.loads(output)["findings"]}
    assert status == 1
    assert paths == {"sigma/aws/cloudtrail/other.yml"}


def test_changed_since_keeps_test_findings(repo: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-qm", "rules")
    edit(repo, "            - DetachGroupPolicy\n", "")
    status, output = check("--format", "json", "--changed-since", "HEAD")
    paths = {f["path"] for f in json.loads(output)["findings"]}
    assert status == 1
    assert paths == {TESTS}


def test_bad_ref_is_a_usage_error(repo: Path) -> None:
    from siemgen.errors import ConfigError

    with pytest.raises(ConfigError, match="changed since"):
        CliRunner().invoke(app, ["check", "--changed-since", "no-such-ref"], catch_exceptions=False)


def commit_all(repo: Path) -> None:
    """Make ``repo`` a git repository with everything in it committed."""
    import subprocess

    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "rules"]):
        subprocess.run(
            ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )


def test_option_as_ref_is_a_usage_error(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import subprocess
    import sys

    commit_all(repo)
    folder = tmp_path_factory.mktemp("outside")
    value = f"--output={folder / 'created'}"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("siemgen")), "check", f"--changed-since={value}"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: --changed-since {value!r} is not a git revision, because it starts with '-' "
        "(pass a branch, tag or commit, e.g. --changed-since origin/main)"
    ]
    assert list(folder.iterdir()) == []


def test_changed_files_reads_ref_as_revision(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from siemgen.check import changed_files
    from siemgen.errors import ConfigError

    commit_all(repo)
    folder = tmp_path_factory.mktemp("outside")
    with pytest.raises(ConfigError, match="bad revision '--output="):
        changed_files(repo, f"--output={folder / 'created'}")
    assert list(folder.iterdir()) == []


def test_changed_since_finds_names_git_quotes(repo: Path) -> None:
    folder = repo / "sigma" / "aws" / "cloudtrail"
    # Git quotes both names in its plain output, for a byte above 0x7f and a control character.
    edited = folder / "café.yml"
    added = folder / "bad\x1b[2Jname.yml"
    edited.write_text("title: committed\n", encoding="utf-8")
    commit_all(repo)
    edited.write_text("title: [\n", encoding="utf-8")
    added.write_text("title: [\n", encoding="utf-8")
    status, output = check("--format", "json", "--changed-since", "HEAD")
    paths = {f["path"] for f in json.loads(output)["findings"]}
    assert status == 1
    assert paths == {edited.relative_to(repo).as_posix(), added.relative_to(repo).as_posix()}


def test_changed_files_from_a_subfolder(repo: Path) -> None:
    from siemgen.check import changed_files

    (repo / "docs").mkdir()
    (repo / "docs" / "notes.md").write_text("notes\n", encoding="utf-8")
    commit_all(repo)
    edit(repo, "    - attack.t1098.003", "    - attack.t1999.999")
    added = repo / "sigma" / "aws" / "cloudtrail" / "added.yml"
    added.write_text("title: [\n", encoding="utf-8")
    expected = {(repo / RULE).resolve(), added.resolve()}
    assert changed_files(repo / "docs", "HEAD") == expected
    assert changed_files(repo, "HEAD") == expected


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def test_whole_check_runs_with_sockets_blocked(repo: Path, no_network: None) -> None:
    generate(repo)
    status, output = check()
    assert status == 0, output


def test_check_help_states_exit_codes() -> None:
    result = CliRunner().invoke(app, ["check", "--help"])
    assert "Exit status" in result.stdout
    assert "2 on a usage" in result.stdout


TESTS = "sigma/aws/cloudtrail/aws_iam_policy_changed.tests.json"


@pytest.mark.parametrize("output_format", FORMATS)
def test_failing_rule_test_points_at_its_group(repo: Path, output_format: str) -> None:
    text = (repo / TESTS).read_text(encoding="utf-8")
    group = json.loads(text)["groups"][0]
    assert group["expect"] == "match"
    line = text[: text.index(f'"{group["name"]}"')].count("\n") + 1
    start = text.index(f'"{group["name"]}"')
    tail = text[start:].replace('"expect": "match"', '"expect": "no-match"', 1)
    (repo / TESTS).write_text(text[:start] + tail, encoding="utf-8")
    status, output = check("--format", output_format)
    assert status == 1
    assert (TESTS, line) in locations(output_format, output)


def test_junit_stays_well_formed_with_control_characters() -> None:
    from siemgen.findings import Finding, to_junit

    finding = Finding("a.yml", 3, "test", "athena", "record \x01 \x1b[31mred", detail="x\x00y")
    suite = ElementTree.fromstring(to_junit([finding], 1, ["a.yml"]))
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert "\ufffd" in (failure.text or "")


def test_list_validators_names_every_mode() -> None:
    result = CliRunner().invoke(app, ["check", "--list-validators"])
    assert result.exit_code == 0
    modes = {line.split("\t")[2] for line in result.stdout.splitlines()}
    assert {"as-is", "shipped-data", "replaced", "siemgen"} <= modes
    names = {line.split("\t")[0] for line in result.stdout.splitlines()}
    assert "attacktag" in names
    assert "sigmahq_invalid_fieldname" in names


def test_repository_as_committed_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    from paths import REPO

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["check", "--no-cache-results"])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip().endswith("no findings")
