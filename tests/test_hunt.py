"""`siemgen hunt` end to end: CloudTrail logs in the S3 layout, the project rules, each format."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from siemgen.cli import app
from siemgen.commands import hunt as command
from siemgen.hunt import Hunt, hunt, load_rules

from paths import CANONICAL, REPO, RULES

DATA = Path(__file__).resolve().parent / "data" / "hunt"
CANONICAL_TITLE = "AWS IAM Policy Changed"


def events(name: str) -> list[dict[str, Any]]:
    data = json.loads((DATA / name).read_text(encoding="utf-8"))
    return [event["record"] for event in data["events"]]


PLANTED = events("planted.json")
NOISE = events("noise.json")


def by_name(records: list[dict[str, Any]], event_name: str) -> dict[str, Any]:
    return next(record for record in records if record["eventName"] == event_name)


def write_log(folder: Path, name: str, records: list[dict[str, Any]]) -> Path:
    """Write records as CloudTrail delivers them: gzip JSON with one Records array."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump({"Records": records}, handle)
    return path


def trail_folder(root: Path, account: str, region: str, day: str, org: str | None = None) -> Path:
    base = root / "AWSLogs"
    if org is not None:
        base = base / org
    return base / account / "CloudTrail" / region / day.replace("-", "/")


def log_name(account: str, region: str, stamp: str, unique: str) -> str:
    return f"{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz"


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """A local copy of a CloudTrail bucket: one account trail, one organization trail."""
    root = tmp_path / "bucket"
    account = "111122223333"
    day_one = trail_folder(root, account, "us-east-1", "2026-11-02")
    write_log(
        day_one,
        log_name(account, "us-east-1", "20261102T1020Z", "A1B2C3D4E5F6A7B8"),
        [by_name(NOISE, "DescribeInstances"), by_name(PLANTED, "PutUserPolicy")],
    )
    write_log(
        day_one,
        log_name(account, "us-east-1", "20261102T1105Z", "B1B2C3D4E5F6A7B8"),
        [
            by_name(NOISE, "AssumeRole"),
            by_name(NOISE, "Decrypt"),
            by_name(PLANTED, "AttachRolePolicy"),
            by_name(NOISE, "GetRole"),
        ],
    )
    write_log(
        trail_folder(root, account, "eu-west-1", "2026-11-02"),
        log_name(account, "eu-west-1", "20261102T1010Z", "C1B2C3D4E5F6A7B8"),
        [by_name(NOISE, "CreatePolicy")],
    )
    write_log(
        trail_folder(root, account, "us-east-1", "2026-11-03"),
        log_name(account, "us-east-1", "20261103T0935Z", "D1B2C3D4E5F6A7B8"),
        [by_name(NOISE, "ListPolicies"), by_name(NOISE, "CreateLogStream")],
    )
    # Logged at 23:59:58 and delivered after midnight, so it sits in the next day's folder.
    write_log(
        trail_folder(root, account, "us-east-1", "2026-11-04"),
        log_name(account, "us-east-1", "20261104T0005Z", "E1B2C3D4E5F6A7B8"),
        [
            by_name(PLANTED, "DeleteGroupPolicy"),
            by_name(PLANTED, "DetachUserPolicy"),
            by_name(NOISE, "GetBucketAcl"),
        ],
    )
    member = "444455556666"
    write_log(
        trail_folder(root, member, "us-east-1", "2026-11-03", org="o-exampleorg1"),
        log_name(member, "us-east-1", "20261103T0850Z", "F1B2C3D4E5F6A7B8"),
        [by_name(PLANTED, "CreatePolicyVersion")],
    )
    # Digest and Insights files are not event logs; a decoy event in them must not be read.
    decoy = dict(by_name(PLANTED, "PutUserPolicy"), eventID="decoy-in-digest-folder")
    write_log(
        root / "AWSLogs" / account / "CloudTrail-Digest" / "us-east-1" / "2026" / "11" / "02",
        f"{account}_CloudTrail-Digest_us-east-1_trail_us-east-1_20261102T1020Z.json.gz",
        [decoy],
    )
    write_log(
        root / "AWSLogs" / account / "CloudTrail-Insight" / "us-east-1" / "2026" / "11" / "02",
        f"{account}_CloudTrail-Insight_us-east-1_20261102T1020Z_X1.json.gz",
        [dict(decoy, eventID="decoy-in-insight-folder")],
    )
    return root


def planted_ids() -> set[str]:
    return {record["eventID"] for record in PLANTED}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["hunt", *args])


def test_hunt_finds_exactly_planted_events(bucket: Path) -> None:
    rule_set, result = hunt([bucket], rules=[RULES])
    found = {hit.event_id for hit in result.hits}
    assert found == planted_ids()
    assert result.skipped == []
    assert result.warnings == []
    assert len(result.files) == 6
    assert result.records == len(PLANTED) + len(NOISE)
    titles = {result.detections[index].title for hit in result.hits for index in hit.rules}
    assert titles == {CANONICAL_TITLE}


def test_hunt_reports_hit_fields(bucket: Path) -> None:
    _, result = hunt([bucket], rules=[CANONICAL])
    planted = by_name(PLANTED, "AttachRolePolicy")
    hit = next(hit for hit in result.hits if hit.event_id == planted["eventID"])
    fields = hit.fields()
    assert hit.event_time == fields["eventTime"] == planted["eventTime"]
    assert fields["eventSource"] == "iam.amazonaws.com"
    assert fields["eventName"] == "AttachRolePolicy"
    assert fields["awsRegion"] == "us-east-1"
    assert fields["sourceIPAddress"] == "198.51.100.7"
    assert fields["identity"] == planted["userIdentity"]["arn"]
    assert fields["userIdentity"]["arn"] == planted["userIdentity"]["arn"]
    assert fields["recipientAccountId"] == "111122223333"
    assert hit.file == fields["file"]
    assert hit.file.endswith("B1B2C3D4E5F6A7B8.json.gz")


def test_hunt_sorts_hits_by_event_time(bucket: Path) -> None:
    _, result = hunt([bucket], rules=[CANONICAL])
    times = [hit.event_time for hit in result.hits]
    assert times == sorted(record["eventTime"] for record in PLANTED)


def test_hunt_sorts_by_time_not_text(tmp_path: Path) -> None:
    base = by_name(PLANTED, "PutUserPolicy")
    records = [
        {**base, "eventID": "later", "eventTime": "2026-11-05T08:00:00.9Z"},
        {**base, "eventID": "earlier", "eventTime": "2026-11-05T08:00:00Z"},
        {**base, "eventID": "no-time", "eventTime": None},
        {**base, "eventID": "first-of-day", "eventTime": "2026-11-05 00:00:01Z"},
    ]
    log = tmp_path / "records.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    _, result = hunt([log], rules=[CANONICAL])
    order = [hit.event_id for hit in result.hits]
    assert order == ["no-time", "first-of-day", "earlier", "later"]
    lines = run(str(log), "--rules", str(CANONICAL), "-f", "jsonl").stdout.splitlines()
    assert [json.loads(line)["eventID"] for line in lines] == order


def test_hunt_counts_hits_per_rule(bucket: Path) -> None:
    _, result = hunt([bucket], rules=[RULES])
    counts = {detection.title: count for detection, count in result.rule_counts()}
    assert counts[CANONICAL_TITLE] == len(PLANTED)
    assert sum(counts.values()) == len(PLANTED)
    assert len(counts) == len(list(RULES.rglob("*.yml")))


def test_hunt_reads_plain_json_and_json_lines(tmp_path: Path) -> None:
    put, attach, delete = PLANTED[0], PLANTED[1], PLANTED[3]
    (tmp_path / "export.json").write_text(json.dumps({"Records": [put, NOISE[0]]}, indent=2))
    (tmp_path / "lines.jsonl").write_text(json.dumps(attach) + "\n" + json.dumps(NOISE[1]) + "\n")
    with gzip.open(tmp_path / "more.ndjson.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(delete) + "\n")
    (tmp_path / "notes.txt").write_text("not a log file")
    _, result = hunt([tmp_path], rules=[CANONICAL])
    assert {hit.event_id for hit in result.hits} == {
        put["eventID"],
        attach["eventID"],
        delete["eventID"],
    }
    assert result.records == 5
    assert result.skipped == []


def test_hunt_reads_a_file_named_directly(bucket: Path) -> None:
    path = next(bucket.rglob("*E1B2C3D4E5F6A7B8.json.gz"))
    _, result = hunt([path], rules=[CANONICAL])
    names = {hit.fields()["eventName"] for hit in result.hits}
    assert names == {"DeleteGroupPolicy", "DetachUserPolicy"}


def test_hunt_reads_each_file_once(bucket: Path) -> None:
    path = next(bucket.rglob("*A1B2C3D4E5F6A7B8.json.gz"))
    _, result = hunt([bucket, path], rules=[CANONICAL])
    assert len(result.hits) == len(PLANTED)


def test_hunt_reads_hard_linked_file_once(bucket: Path) -> None:
    path = next(bucket.rglob("*A1B2C3D4E5F6A7B8.json.gz"))
    path.with_name("copy-" + path.name).hardlink_to(path)
    _, result = hunt([bucket], rules=[CANONICAL])
    assert len(result.hits) == len(PLANTED)
    assert len(result.files) == 6


def test_cli_jsonl_lists_matches(bucket: Path) -> None:
    result = run(str(bucket), "--rules", str(RULES))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["eventID"] for line in lines} == planted_ids()
    first = lines[0]
    assert first["rule"] == CANONICAL_TITLE
    assert first["rule_id"] == "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60"
    assert first["level"] == "medium"
    assert first["eventName"] == "PutUserPolicy"
    assert first["userIdentity"]["userName"] == "alice"


def test_cli_prints_summary_on_stderr(bucket: Path) -> None:
    result = run(str(bucket), "--rules", str(RULES))
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert f"5  {CANONICAL_TITLE} (medium)" in lines
    assert "13 records in 6 files; 5 matching records" in lines
    assert not any(line.startswith("warning:") for line in lines)


def test_cli_table_format(bucket: Path) -> None:
    result = run(str(bucket), "--rules", str(CANONICAL), "--format", "table")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = ["rule", "level", "time", "event", "identity", "source", "IP", "region"]
    assert lines[0].split() == header
    assert len(lines) == 1 + len(PLANTED)
    put = by_name(PLANTED, "PutUserPolicy")
    row = lines[1]
    assert row.startswith(CANONICAL_TITLE)
    for cell in ("medium", put["eventTime"], "iam:PutUserPolicy", put["userIdentity"]["arn"]):
        assert cell in row
    assert row.split()[-2:] == ["203.0.113.24", "us-east-1"]


def test_cli_csv_format(bucket: Path) -> None:
    result = run(str(bucket), "--rules", str(CANONICAL), "-f", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["event_id"] for row in rows} == planted_ids()
    assert {row["rule"] for row in rows} == {CANONICAL_TITLE}


def test_cli_json_format(bucket: Path) -> None:
    result = run(str(bucket), "--rules", str(RULES), "-f", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert {hit["eventID"] for hit in document["hits"]} == planted_ids()
    assert document["files"] == 6
    assert document["records"] == 13
    assert document["skipped"] == []
    counts = {rule["rule"]: rule["hits"] for rule in document["rules"]}
    assert counts[CANONICAL_TITLE] == 5


def test_cli_writes_output_file(bucket: Path, tmp_path: Path) -> None:
    target = tmp_path / "hits.jsonl"
    result = run(str(bucket), "--rules", str(CANONICAL), "-o", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    lines = target.read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["eventID"] for line in lines} == planted_ids()


def test_cli_no_hits_exits_zero(bucket: Path) -> None:
    noise_only = bucket / "AWSLogs" / "111122223333" / "CloudTrail" / "eu-west-1"
    result = run(str(noise_only), "--rules", str(CANONICAL))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "1 of 1 rule matched nothing" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "unknown output format 'xml'"),
        (["--since", "yesterday"], "invalid date or time 'yesterday'"),
        (["--since", "2026-11-04", "--until", "2026-11-02"], "is later than --until"),
        (["--rules", "no-such-folder"], "rule path not found"),
    ],
)
def test_cli_usage_errors_exit_two(bucket: Path, args: list[str], message: str) -> None:
    result = run(str(bucket), "--rules", str(CANONICAL), *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_cli_missing_log_path_exits_two(tmp_path: Path) -> None:
    result = run(str(tmp_path / "absent"), "--rules", str(CANONICAL))
    assert result.exit_code == 2
    assert "log path not found" in result.stderr


def test_cli_output_folder_is_created(bucket: Path, tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "hits.jsonl"
    result = run(str(bucket), "--rules", str(CANONICAL), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    lines = target.read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["eventID"] for line in lines} == planted_ids()


def output_event_ids(text: str, output_format: str) -> set[str]:
    """Return the eventIDs in hunt output of the given format."""
    if output_format == "csv":
        return {row["event_id"] for row in csv.DictReader(io.StringIO(text))}
    if output_format == "json":
        return {hit["eventID"] for hit in json.loads(text)["hits"]}
    return {json.loads(line)["eventID"] for line in text.splitlines()}


@pytest.mark.parametrize(
    ("name", "output_format"),
    [("hits.csv", "csv"), ("hits.JSON", "json"), ("hits.ndjson", "jsonl"), ("hits.out", "jsonl")],
)
def test_cli_output_suffix_names_format(
    bucket: Path, tmp_path: Path, name: str, output_format: str
) -> None:
    target = tmp_path / name
    result = run(str(bucket), "--rules", str(CANONICAL), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert output_event_ids(target.read_text(encoding="utf-8"), output_format) == planted_ids()


def test_cli_format_option_beats_output_suffix(bucket: Path, tmp_path: Path) -> None:
    target = tmp_path / "hits.csv"
    result = run(str(bucket), "--rules", str(CANONICAL), "-o", str(target), "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    lines = target.read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["eventID"] for line in lines} == planted_ids()


def test_cli_output_under_a_file_exits_two(bucket: Path, tmp_path: Path) -> None:
    blocking = tmp_path / "plain.txt"
    blocking.write_text("")
    result = run(str(bucket), "--rules", str(CANONICAL), "-o", str(blocking / "x.jsonl"))
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.stderr
    assert "--output" in result.stderr


def test_cli_rule_error_exits_one(bucket: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "canonical.yml").write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
    (rules / "broken.yml").write_text("title: [unclosed\n", encoding="utf-8")
    result = run(str(bucket), "--rules", str(rules))
    assert result.exit_code == 1
    assert "warning: rule skipped:" in result.stderr
    assert "broken.yml" in result.stderr
    assert len(result.stdout.splitlines()) == len(PLANTED)


REGEX_RULE = """\
title: Regular expression that RE2 rejects
id: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        userAgent|re: '{pattern}'
    condition: selection
level: low
"""


@pytest.mark.parametrize("pattern", ["^(?!aws-cli).*", "(a)\\1", "a{1001}"])
def test_cli_rejects_regex_duckdb_cannot_run(bucket: Path, tmp_path: Path, pattern: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "canonical.yml").write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
    (rules / "regex.yml").write_text(REGEX_RULE.format(pattern=pattern), encoding="utf-8")
    result = run(str(bucket), "--rules", str(rules), "-f", "jsonl")
    assert result.exit_code == 1
    assert "regex.yml" in result.stderr
    assert "DuckDB cannot evaluate the rule's condition" in result.stderr
    assert "skipped: cannot read" not in result.stderr
    assert {json.loads(line)["eventID"] for line in result.stdout.splitlines()} == planted_ids()


def test_cli_leaves_other_logsources_out(bucket: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "canonical.yml").write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
    windows = CANONICAL.read_text(encoding="utf-8").replace(
        "    product: aws\n    service: cloudtrail", "    product: windows\n    service: security"
    )
    (rules / "windows.yml").write_text(
        windows.replace(
            "7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60", "0f0e0d0c-0b0a-4909-8807-060504030201"
        ),
        encoding="utf-8",
    )
    result = run(str(bucket), "--rules", str(rules))
    assert result.exit_code == 0, result.stderr
    assert "1 rule for other log sources left out" in result.stderr


def test_cli_names_missing_cloudtrail_rules(bucket: Path, tmp_path: Path) -> None:
    windows = CANONICAL.read_text(encoding="utf-8").replace(
        "    product: aws\n    service: cloudtrail", "    product: windows\n    service: security"
    )
    rule = tmp_path / "windows.yml"
    rule.write_text(windows, encoding="utf-8")
    result = run(str(bucket), "--rules", str(rule))
    assert result.exit_code == 1
    assert "none of the rules is for AWS CloudTrail" in result.stderr
    assert "listed above" not in result.stderr


def test_cli_warns_of_shared_rule_id(bucket: Path, tmp_path: Path) -> None:
    first = tmp_path / "team-a" / "iam_policy.yml"
    second = tmp_path / "team-b" / "iam_policy_copy.yml"
    for rule in (first, second):
        rule.parent.mkdir()
        rule.write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
    result = run(str(bucket), "--rules", str(first.parent), "--rules", str(second.parent))
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {second}: rule id 7b6a2a8d-f9e4-4c1b-9d5a-3e8f1c2b4a60 is already used by "
        f"{first}; give each rule its own id to tell their matches apart"
    ]
    assert len(result.stdout.splitlines()) == 2 * len(PLANTED)


class RecordingProgress:
    """Keep what a hunt reports about its progress."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.advanced: list[int] = []

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def advance(self, scanned_bytes: int) -> None:
        self.advanced.append(scanned_bytes)


def test_hunt_reports_progress_in_bytes(bucket: Path) -> None:
    progress = RecordingProgress()
    Hunt(load_rules([CANONICAL]).detections, progress=progress).run([bucket])
    files = [path for path in bucket.rglob("*.json.gz") if "CloudTrail-" not in str(path)]
    assert progress.total == sum(path.stat().st_size for path in files)
    assert sum(progress.advanced) == progress.total


def test_progress_bar_waits_before_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    bar = command.ProgressBar()
    bar.start(100)
    bar.advance(40)
    assert bar.bar is None
    monkeypatch.setattr(command, "PROGRESS_DELAY_SECONDS", 0.0)
    bar.advance(30)
    assert bar.bar is not None
    assert bar.done == 70
    bar.advance(30)
    bar.finish()
    assert bar.bar is None


def test_output_with_log_name_in_log_folder_refused(bucket: Path) -> None:
    target = bucket / "AWSLogs" / "hits.jsonl"
    result = run(str(bucket), "--rules", str(CANONICAL), "-f", "jsonl", "-o", str(target))
    assert result.exit_code == 2
    assert "the --output file is among the log files under" in result.stderr
    assert not target.exists()


def test_csv_output_in_log_folder_is_not_read(bucket: Path) -> None:
    target = bucket / "hits.csv"
    for _ in range(2):
        result = run(str(bucket), "--rules", str(CANONICAL), "-f", "csv", "-o", str(target))
        assert result.exit_code == 0, result.stderr
        rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert {row["event_id"] for row in rows} == planted_ids()


def test_log_file_named_as_output_refused(bucket: Path) -> None:
    log = next(bucket.rglob("*A1B2C3D4E5F6A7B8.json.gz"))
    before = log.read_bytes()
    result = run(str(log), "--rules", str(CANONICAL), "-f", "csv", "-o", str(log))
    assert result.exit_code == 2
    assert "the --output file is among the log files under" in result.stderr
    assert log.read_bytes() == before


def test_overlapping_paths_read_once_without_warning(bucket: Path) -> None:
    account = bucket / "AWSLogs" / "111122223333"
    link = bucket.parent / "link"
    link.symlink_to(bucket, target_is_directory=True)
    result = run(str(bucket), str(account), str(link), str(bucket), "--rules", str(CANONICAL))
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    assert {json.loads(line)["eventID"] for line in result.stdout.splitlines()} == planted_ids()


def test_python_api_example_in_docs_runs(
    bucket: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    guide = (REPO / "docs" / "hunt.md").read_text(encoding="utf-8")
    section = guide.split("## Python API", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(bucket)
    (bucket / "sigma").symlink_to(RULES, target_is_directory=True)
    exec(compile(example, "docs/hunt.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PLANTED)
    assert any("PutUserPolicy" in line and "AWS IAM Policy Changed" in line for line in lines)
    assert (bucket / ".hunt-cache" / "CACHEDIR.TAG").is_file()
