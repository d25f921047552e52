"""`siemgen hunt` on bad input: each bad file is one warning, and the good files still count."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner, Result

from siemgen.cli import app
from siemgen.hunt import Detection, TimeRange, load_rules
from siemgen.hunt.isolation import batches, isolate
from siemgen.hunt.logs import LogFile, find_log_files
from siemgen.hunt.matches import MatchTable
from siemgen.hunt.results import BatchResult, FileScan
from siemgen.hunt.run import connect
from siemgen.hunt.scan import Scanner
from siemgen.hunt.schema import OUTPUT_PATHS, select_columns

from paths import CANONICAL, RULES

DATA = Path(__file__).resolve().parent / "data" / "hunt"
PLANTED = [event["record"] for event in json.loads((DATA / "planted.json").read_text())["events"]]
NOISE = [event["record"] for event in json.loads((DATA / "noise.json").read_text())["events"]]
DAY = Path("AWSLogs") / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "11" / "02"


def gzip_bytes(records: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as handle:
        handle.write(json.dumps({"Records": records}).encode())
    return buffer.getvalue()


def good_bucket(root: Path) -> Path:
    """Two good log files: three planted events and some noise."""
    folder = root / DAY
    folder.mkdir(parents=True)
    (folder / "good-1.json.gz").write_bytes(gzip_bytes([PLANTED[0], NOISE[0], NOISE[1]]))
    (folder / "good-2.json.gz").write_bytes(gzip_bytes([PLANTED[1], PLANTED[2], NOISE[2]]))
    return folder


GOOD_IDS = {PLANTED[0]["eventID"], PLANTED[1]["eventID"], PLANTED[2]["eventID"]}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["hunt", *args, "--rules", str(CANONICAL)])


def warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def found_ids(result: Result) -> set[str]:
    return {json.loads(line)["eventID"] for line in result.stdout.splitlines()}


def test_truncated_gzip_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    data = gzip_bytes(PLANTED[3:5] * 50)
    bad = folder / "truncated.json.gz"
    bad.write_bytes(data[: len(data) // 2])
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [f"warning: {bad}: skipped: gzip data is truncated"]
    assert found_ids(result) == GOOD_IDS
    assert "1 file or folder skipped" in result.stderr
    assert "6 records in 2 files; 3 matching records" in result.stderr


def test_file_that_is_not_json_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "report.json.gz"
    bad.write_bytes(gzip.compress(b"eventName,eventID\nPutUserPolicy,1\n"))
    result = run(str(tmp_path))
    assert result.exit_code == 1
    [line] = warnings(result)
    assert line == (
        f"warning: {bad}: skipped: not valid JSON (Expecting value: line 1 column 1 (char 0))"
    )
    assert found_ids(result) == GOOD_IDS


def test_file_not_gzip_despite_name_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "plain.json.gz"
    bad.write_text(json.dumps({"Records": [PLANTED[3]]}))
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [
        f"warning: {bad}: skipped: not gzip-compressed, although the name ends in .gz"
    ]
    assert found_ids(result) == GOOD_IDS


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"events": [PLANTED[3]]}, 'not a CloudTrail log file: "Records" is missing'),
        (
            {"Records": "PutUserPolicy"},
            'not a CloudTrail log file: "Records" is a string, not an array',
        ),
        (
            [PLANTED[3]],
            'not a CloudTrail log file: the JSON is an array, not an object with a "Records" array',
        ),
        (
            {"Records": [1, "two", None]},
            "no CloudTrail records: none of its 3 records has eventTime, eventID, eventSource "
            "or eventName",
        ),
    ],
)
def test_json_of_another_shape_is_skipped(tmp_path: Path, document: object, reason: str) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "other.json"
    bad.write_text(json.dumps(document))
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [f"warning: {bad}: skipped: {reason}"]
    assert found_ids(result) == GOOD_IDS


def test_json_lines_of_another_shape_are_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "lines.jsonl"
    bad.write_text('[1, 2]\n"text"\n{"unrelated": true}\n')
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [
        f"warning: {bad}: skipped: no CloudTrail records: none of its 3 records has eventTime, "
        "eventID, eventSource or eventName"
    ]


def test_record_missing_fields_is_scanned_with_warning(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    incomplete = {
        key: value for key, value in PLANTED[3].items() if key not in ("eventID", "eventTime")
    }
    path = folder / "incomplete.json.gz"
    path.write_bytes(gzip_bytes([incomplete, PLANTED[4]]))
    result = run(str(tmp_path))
    assert result.exit_code == 0
    assert warnings(result) == [
        f"warning: {path}: of 2 records, 1 lacks eventID, 1 lacks eventTime; they were scanned "
        "anyway"
    ]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["eventID"] for line in lines} == GOOD_IDS | {PLANTED[4]["eventID"], None}
    assert "skipped" not in result.stderr


def test_empty_file_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "empty.json.gz"
    bad.write_bytes(b"")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [f"warning: {bad}: skipped: file is empty"]
    assert found_ids(result) == GOOD_IDS


def test_file_name_with_glob_characters_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "export[1].json.gz"
    bad.write_bytes(gzip_bytes([PLANTED[3]]))
    # A file the pattern would match instead of the named one.
    (folder / "export1.json.gz").write_bytes(gzip_bytes([NOISE[3]]))
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [
        f"warning: {bad}: skipped: the path contains *, ? or [, which DuckDB reads as a "
        "pattern; rename the file"
    ]
    assert found_ids(result) == GOOD_IDS


def test_empty_records_array_is_fine(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    (folder / "quiet.json.gz").write_bytes(gzip_bytes([]))
    result = run(str(tmp_path))
    assert result.exit_code == 0
    assert warnings(result) == []
    assert "6 records in 3 files" in result.stderr


def test_empty_folder_is_reported(tmp_path: Path) -> None:
    good_bucket(tmp_path / "good")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("nothing to see")
    result = run(str(tmp_path / "good"), str(empty))
    assert result.exit_code == 1
    assert warnings(result) == [
        f"warning: {empty}: skipped: folder holds no CloudTrail log files (.json.gz, .json, "
        ".jsonl.gz, .jsonl, .ndjson.gz, .ndjson)"
    ]
    assert found_ids(result) == GOOD_IDS


def test_file_with_unknown_suffix_named_directly(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    result = run(str(folder), str(other))
    assert result.exit_code == 1
    [line] = warnings(result)
    assert line.startswith(f"warning: {other}: skipped: not a log file name; expected one of")


def hunt_without_file_override(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``siemgen hunt`` over ``tmp_path/AWSLogs`` in a process that file permissions bind."""
    command = [*_without_file_override(), sys.executable, "-c"]
    command += ["from siemgen.cli import main; main()", "hunt", str(tmp_path / "AWSLogs"), *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )


def _without_file_override() -> list[str]:
    """Return a command prefix that makes file permissions apply to the hunt process.

    Root reads any file through the CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH capabilities, so
    as root the hunt runs under ``setpriv`` with both dropped.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is not installed")
    dropped = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={dropped}", f"--bounding-set={dropped}"]


def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "locked.json.gz"
    bad.write_bytes(gzip_bytes([PLANTED[3]]))
    bad.chmod(0)
    hunt_args = ["hunt", str(tmp_path / "AWSLogs"), "--rules", str(CANONICAL)]
    command = [
        *_without_file_override(),
        sys.executable,
        "-c",
        "from siemgen.cli import main; main()",
        *hunt_args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert lines == [f"warning: {bad}: skipped: permission denied"]
    assert {json.loads(line)["eventID"] for line in done.stdout.splitlines()} == GOOD_IDS


def test_several_bad_files_each_warn_once(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    data = gzip_bytes(PLANTED[3:5])
    (folder / "a-truncated.json.gz").write_bytes(data[:20])
    (folder / "b-notjson.json").write_text("not json")
    (folder / "c-shape.json").write_text("{}")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert len(warnings(result)) == 3
    assert found_ids(result) == GOOD_IDS
    assert "3 files or folders skipped" in result.stderr


def _detections() -> list[Detection]:
    return load_rules([CANONICAL]).detections


class CountingRun:
    """Wrap a scanner's batch run and count how many log files each call reads."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.files_read = 0

    def __call__(self, part: Sequence[LogFile]) -> dict[str, FileScan]:
        self.files_read += len(part)
        return self.scanner.scan_part(part)


def test_bad_file_costs_one_batch_reread(tmp_path: Path) -> None:
    folder = tmp_path / DAY
    folder.mkdir(parents=True)
    for index in range(40):
        (folder / f"log-{index:02}.json.gz").write_bytes(gzip_bytes([NOISE[index % len(NOISE)]]))
    data = gzip_bytes(PLANTED * 20)
    (folder / "log-17-truncated.json.gz").write_bytes(data[: len(data) // 2])
    files = find_log_files([tmp_path]).files
    detections = _detections()
    selection = select_columns([*OUTPUT_PATHS, *(p for d in detections for p in d.paths)])
    con = connect()
    scanner = Scanner(con, detections, selection, TimeRange(), MatchTable(con, len(detections)))
    counting = CountingRun(scanner)
    result = BatchResult()
    groups = batches(files, batch_bytes=sum(log_file.size for log_file in files) // 4)
    assert len(groups) >= 4
    for group in groups:
        isolate(group, result, counting)
    assert len(result.files) == 40
    assert list(result.failed) == [str(folder / "log-17-truncated.json.gz")]
    largest = max(len(group) for group in groups)
    assert counting.files_read <= len(files) + largest + 1


def test_isolation_splits_batch_when_error_names_no_file(tmp_path: Path) -> None:
    folder = tmp_path / DAY
    folder.mkdir(parents=True)
    for index in range(9):
        (folder / f"log-{index}.json.gz").write_bytes(gzip_bytes([NOISE[index % len(NOISE)]]))
    files = find_log_files([tmp_path]).files
    detections = _detections()
    selection = select_columns([*OUTPUT_PATHS, *(p for d in detections for p in d.paths)])
    con = connect()
    scanner = Scanner(con, detections, selection, TimeRange(), MatchTable(con, len(detections)))
    poisoned = files[5].name

    def run_part(part: Sequence[LogFile]) -> dict[str, FileScan]:
        # A data error whose message names no file, as DuckDB raises for some bad values.
        if any(log_file.name == poisoned for log_file in part):
            raise duckdb.ConversionException("Conversion Error: could not convert value")
        return scanner.scan_part(part)

    result = BatchResult()
    isolate(files, result, run_part)
    assert set(result.files) == {log_file.name for log_file in files} - {poisoned}
    assert result.failed == {poisoned: "cannot read the file (DuckDB: could not convert value)"}


def _open_files(pid: int) -> list[str]:
    """Return the paths a process has open, from /proc."""
    links = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.append(str(entry.readlink()))
        except OSError:
            continue
    return links


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_interrupt_during_scan_exits_130(tmp_path: Path) -> None:
    folder = tmp_path / DAY
    folder.mkdir(parents=True)
    records = [dict(NOISE[index % len(NOISE)], eventID=f"noise-{index}") for index in range(5000)]
    data = gzip_bytes(records)
    for index in range(80):
        (folder / f"{index:03}.json.gz").write_bytes(data)
    out = tmp_path / "hits.jsonl"
    command = [sys.executable, "-c", "from siemgen.cli import main; main()", "hunt"]
    command += [str(tmp_path / "AWSLogs"), "--rules", str(RULES), "-o", str(out)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    # Wait until DuckDB is reading the log files, so the signal lands inside a query.
    while process.poll() is None and not any(
        link.startswith(str(folder)) for link in _open_files(process.pid)
    ):
        time.sleep(0.002)
    assert process.returncode is None, "the hunt ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "interrupted"
    assert not out.exists()


def test_read_only_cache_is_a_usage_error(tmp_path: Path) -> None:
    good_bucket(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    done = hunt_without_file_override(tmp_path, "--rules", str(CANONICAL), "--cache", str(cache))
    assert done.returncode == 2, done.stderr
    assert "cannot write to the cache folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreadable_log_path_is_skipped(tmp_path: Path) -> None:
    good_bucket(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "hidden.json").write_bytes(b"{}")
    locked.chmod(0)
    done = hunt_without_file_override(
        tmp_path, str(locked / "hidden.json"), "--rules", str(CANONICAL)
    )
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert lines == [f"warning: {locked / 'hidden.json'}: skipped: cannot read: Permission denied"]
    assert {json.loads(line)["eventID"] for line in done.stdout.splitlines()} == GOOD_IDS


def test_unreadable_file_named_directly_is_skipped(tmp_path: Path) -> None:
    good_bucket(tmp_path)
    locked = tmp_path / "locked.json"
    locked.write_bytes(b"{}")
    locked.chmod(0)
    done = hunt_without_file_override(tmp_path, str(locked), "--rules", str(CANONICAL))
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert lines == [f"warning: {locked}: skipped: permission denied"]
    assert {json.loads(line)["eventID"] for line in done.stdout.splitlines()} == GOOD_IDS


def test_file_name_cannot_forge_warning_lines(tmp_path: Path) -> None:
    good_bucket(tmp_path)
    forged = "a\nwarning: other.json: skipped: file is empty\n\x1b[2Jb.json"
    (tmp_path / DAY / forged).write_text("not json")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    lines = warnings(result)
    assert len(lines) == 1
    assert "\\nwarning: other.json" in lines[0]
    assert "\\x1b[2J" in lines[0]
    assert found_ids(result) == GOOD_IDS


def test_json_format_names_non_utf8_file(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    name = os.fsdecode(b"bad\xffname.json")
    (folder / name).write_text("not json")
    result = run(str(tmp_path), "-f", "json")
    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    assert [Path(item["path"]).name for item in document["skipped"]] == ["bad\\xffname.json"]
    assert {hit["eventID"] for hit in document["hits"]} == GOOD_IDS


def test_unwritable_output_folder_fails_before_scan(tmp_path: Path) -> None:
    good_bucket(tmp_path)
    locked = tmp_path / "reports"
    locked.mkdir()
    locked.chmod(0o555)
    done = hunt_without_file_override(
        tmp_path, "--rules", str(CANONICAL), "-o", str(locked / "hits.jsonl")
    )
    assert done.returncode == 2, done.stderr
    assert f"the folder {str(locked)!r} is not writable" in done.stderr
    assert "records in" not in done.stderr


def test_non_utf8_file_name_is_skipped_with_reason(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / os.fsdecode(b"bad\xffname.json.gz")
    bad.write_bytes(gzip_bytes([PLANTED[3]]))
    result = run(str(tmp_path))
    assert result.exit_code == 1
    [line] = warnings(result)
    assert line.endswith(
        "skipped: the path is not valid UTF-8, which DuckDB cannot open; rename the file"
    )
    assert found_ids(result) == GOOD_IDS


def test_empty_gzip_stream_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "empty.json.gz"
    bad.write_bytes(gzip.compress(b""))
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [f"warning: {bad}: skipped: file is empty once decompressed"]
    assert found_ids(result) == GOOD_IDS


def test_data_after_gzip_member_is_skipped(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "trailing.json.gz"
    bad.write_bytes(gzip_bytes([PLANTED[3]]) + b"not gzip at all")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    [line] = warnings(result)
    assert line.startswith(f"warning: {bad}: skipped: gzip data is damaged or followed by other")
    assert found_ids(result) == GOOD_IDS


def test_oversized_json_line_is_read(tmp_path: Path) -> None:
    # DuckDB reads a JSON value of up to 16 MiB by default; Python's parser reads the rest.
    folder = good_bucket(tmp_path)
    huge = folder / "huge.jsonl"
    record = {**PLANTED[3], "userAgent": "A" * (40 * 1024 * 1024)}
    huge.write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = run(str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == []
    assert found_ids(result) == GOOD_IDS | {PLANTED[3]["eventID"]}


def test_link_loop_named_directly(tmp_path: Path) -> None:
    good_bucket(tmp_path)
    loop = tmp_path / "loop.json.gz"
    loop.symlink_to(loop)
    result = run(str(tmp_path / "AWSLogs"), str(loop))
    assert result.exit_code == 2
    assert "log path is a symbolic link to nothing" in result.stderr
    absent = run(str(tmp_path / "absent.json.gz"))
    assert absent.exit_code == 2
    assert "log path not found" in absent.stderr


def test_folder_of_digests_says_they_are_left_out(tmp_path: Path) -> None:
    digests = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail-Digest" / "us-east-1"
    digests.mkdir(parents=True)
    (digests / "digest.json.gz").write_bytes(gzip.compress(b"{}"))
    result = run(str(tmp_path / "AWSLogs"))
    assert result.exit_code == 1
    [line] = warnings(result)
    assert "folder holds no CloudTrail log files" in line
    assert line.endswith("CloudTrail-Digest and CloudTrail-Insight folders are left out")


def test_json_column_holding_plain_text_is_read(tmp_path: Path) -> None:
    # The console sign-in rule reads keys inside additionalEventData and responseElements,
    # which CloudTrail writes as objects. Text there reads as NULL, as in Athena.
    login = {
        **NOISE[0],
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "eventID": "login-with-text",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
        "additionalEventData": "MFAUsed=No",
        "responseElements": "ConsoleLogin=Success",
    }
    folder = tmp_path / DAY
    folder.mkdir(parents=True)
    path = folder / "mixed.json.gz"
    path.write_bytes(gzip_bytes([login, PLANTED[0]]))
    result = CliRunner().invoke(app, ["hunt", str(tmp_path), "--rules", str(RULES)])
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == []
    assert found_ids(result) == {PLANTED[0]["eventID"]}
    assert "2 records in 1 file" in result.stderr


def test_bad_lines_file_does_not_repeat_batch_matches(tmp_path: Path) -> None:
    # The delivered file is scanned before the JSON lines file fails in the same batch. The
    # batch is then read again without the bad file, and its matches must count once.
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"Records": [PLANTED[0], NOISE[0]]}))
    (folder / "b.jsonl").write_text("not json\n")
    (folder / "c.jsonl").write_text("also not json\n")
    result = run(str(folder), "-f", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [hit["eventID"] for hit in document["hits"]] == [PLANTED[0]["eventID"]]
    assert [rule["hits"] for rule in document["rules"]] == [1]
    cached = run(str(folder), "-f", "json", "--cache", str(tmp_path / "cache"))
    assert json.loads(cached.stdout)["hits"] == document["hits"]


def test_lone_surrogate_does_not_hide_file(tmp_path: Path) -> None:
    # JSON allows a lone UTF-16 surrogate escape and DuckDB rejects it, so one API call with
    # such a value in a parameter must not hide the other records of its file.
    folder = good_bucket(tmp_path)
    poisoned = {**NOISE[0], "requestParameters": {"key": "\ud800 and more"}}
    bad = folder / "poisoned.json.gz"
    bad.write_bytes(gzip_bytes([poisoned, PLANTED[3]]))
    assert b"\\ud800" in gzip.decompress(bad.read_bytes())
    result = run(str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == [
        f"warning: {bad}: it contains 1 lone UTF-16 surrogate or byte sequence that is not "
        "UTF-8, which DuckDB rejects; the file was read with U+FFFD in place of each"
    ]
    assert found_ids(result) == GOOD_IDS | {PLANTED[3]["eventID"]}
    assert "8 records in 3 files" in result.stderr


def test_lone_surrogate_in_reported_field(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    record = {**PLANTED[0], "userIdentity": {"type": "IAMUser", "userName": "al\udc80ice"}}
    (folder / "records.json").write_text(json.dumps({"Records": [record]}))
    result = run(str(folder), "-f", "json")
    assert result.exit_code == 0, result.stderr
    [hit] = json.loads(result.stdout)["hits"]
    assert hit["userIdentity"]["userName"] == "al\ufffdice"


def test_bad_lines_leave_the_rest_of_the_file(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    lines = folder / "export.jsonl"
    text = [json.dumps(PLANTED[3]), "not json", "", json.dumps(PLANTED[4]), '{"truncated": ']
    lines.write_text("\n".join(text) + "\n")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [
        f"warning: {lines}: 2 of its 4 lines are not valid JSON and were left out; the others "
        "were scanned"
    ]
    assert found_ids(result) == GOOD_IDS | {PLANTED[3]["eventID"], PLANTED[4]["eventID"]}
    assert "1 file read in part" in result.stderr
    cached = run(str(tmp_path), "--cache", str(tmp_path / "cache"))
    again = run(str(tmp_path), "--cache", str(tmp_path / "cache"))
    assert cached.stdout == again.stdout == result.stdout
    assert warnings(again) == warnings(result)


def test_fallback_keeps_first_of_repeated_keys(tmp_path: Path) -> None:
    # DuckDB reads the first of two equal keys; the fallback reader must agree with it.
    folder = tmp_path / "logs"
    folder.mkdir()
    first = json.dumps(PLANTED[0])[:-1] + ', "eventName": "GetUser"}'
    other = json.dumps({**NOISE[0], "requestParameters": {"key": "\ud800"}})
    (folder / "records.jsonl").write_text(first + "\n" + other + "\n")
    result = run(str(folder))
    assert result.exit_code == 0, result.stderr
    assert found_ids(result) == {PLANTED[0]["eventID"]}


def _poisoned(record: dict[str, Any]) -> str:
    """Return a record's JSON text with a lone surrogate escape, which DuckDB rejects."""
    return json.dumps({**record, "requestParameters": {"key": "\ud800"}})


@pytest.mark.parametrize(
    ("prefix", "value"),
    [("\ufeff", '"plain"'), ("", "NaN"), ("", "1e400"), ("", "[" * 200 + "]" * 200)],
    ids=["byte-order-mark", "nan", "huge-number", "deep-nesting"],
)
def test_repair_reads_what_duckdb_reads(tmp_path: Path, prefix: str, value: str) -> None:
    # The same document without the poisoned record is read by DuckDB directly; with it, the
    # repaired text must give the planted record as well.
    folder = tmp_path / "logs"
    folder.mkdir()
    planted = json.dumps(PLANTED[0])[:-1] + f', "additionalEventData": {value}}}'
    document = prefix + '{"Records": [' + planted + ", " + _poisoned(NOISE[0]) + "]}"
    (folder / "records.json").write_text(document, encoding="utf-8")
    result = run(str(folder), "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert {hit["eventID"] for hit in json.loads(result.stdout)["hits"]} == {PLANTED[0]["eventID"]}
    assert "2 records in 1 file" in result.stderr


def test_repair_counts_each_bad_sequence(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    record = {**PLANTED[0], "userIdentity": {"type": "IAMUser", "userName": "alice"}}
    data = json.dumps({"Records": [record]}).encode()
    data = data.replace(b"alice", b"a\xffl\xfeice").replace(b"IAMUser", b"IAM\xffUser")
    (folder / "records.json").write_bytes(data)
    result = run(str(folder), "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert "it contains 3 lone UTF-16 surrogates or byte sequences that are not UTF-8" in (
        result.stderr
    )
    [hit] = json.loads(result.stdout)["hits"]
    assert hit["userIdentity"]["userName"] == "a\ufffdl\ufffdice"


def test_repair_keeps_pairs_and_escaped_backslashes(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    # A valid pair, text that only looks like an escape, a lone low surrogate and a high
    # surrogate at the end of a string.
    name = '"\\ud83d\\ude00 \\\\ud800 \\udc00 x\\ud800"'
    base = {key: value for key, value in PLANTED[0].items() if key != "userIdentity"}
    record = json.dumps(base)[:-1] + ', "userIdentity": {"userName": ' + name + "}}"
    (folder / "records.jsonl").write_text(record + "\n", encoding="utf-8")
    result = run(str(folder), "-f", "json")
    assert result.exit_code == 0, result.stderr
    [hit] = json.loads(result.stdout)["hits"]
    assert hit["userIdentity"]["userName"] == "\U0001f600 \\ud800 \ufffd x\ufffd"
    assert "it contains 2 lone UTF-16 surrogates" in result.stderr


def test_one_bad_line_of_one_is_named(tmp_path: Path) -> None:
    folder = good_bucket(tmp_path)
    bad = folder / "single.jsonl"
    bad.write_text("not json\n")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [
        f"warning: {bad}: skipped: not valid JSON: its one line is not JSON"
    ]


def test_json_document_lists_warnings(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = folder / "part.jsonl"
    lines.write_text(json.dumps(PLANTED[0]) + "\nnot json\n")
    result = run(str(folder), "-f", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["warnings"] == [
        f"{lines}: 1 of its 2 lines is not valid JSON and was left out; the others were scanned"
    ]
    assert document["skipped"] == []


def test_file_too_large_to_repair_keeps_both_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("siemgen.hunt.fallback.MAX_BYTES", 64)
    folder = good_bucket(tmp_path)
    bad = folder / "poisoned.jsonl"
    bad.write_text(_poisoned(NOISE[0]) + "\n", encoding="utf-8")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    [line] = warnings(result)
    assert line.startswith(f"warning: {bad}: skipped: not valid JSON (DuckDB: ")
    assert line.endswith(
        "; the file is larger than 64 bytes once decompressed, the most the repair reader takes"
    )
    assert found_ids(result) == GOOD_IDS


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"events": ["\\ud800"]}', 'not a CloudTrail log file: "Records" is missing'),
        (
            '{"Records": "\\ud800"}',
            'not a CloudTrail log file: "Records" is a string, not an array',
        ),
        (
            '["\\ud800"]',
            'not a CloudTrail log file: the JSON is an array, not an object with a "Records" array',
        ),
    ],
    ids=["no-records", "records-string", "array"],
)
def test_repaired_file_of_another_shape_is_named(
    tmp_path: Path, document: str, reason: str
) -> None:
    # A lone surrogate makes DuckDB reject the file, so the repair reader names the shape.
    folder = good_bucket(tmp_path)
    bad = folder / "shaped.json"
    bad.write_text(document, encoding="utf-8")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert warnings(result) == [f"warning: {bad}: skipped: {reason}"]
    assert found_ids(result) == GOOD_IDS
