"""`--cache`: Parquet copies of what a hunt read, keyed by path, size and modification time."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from siemgen.cli import app
from siemgen.hunt import Hunt, TimeRange, hunt, load_rules, parse_time
from siemgen.hunt.cache import CACHE_TAG, MANIFEST
from siemgen.hunt.detections import DETECTIONS_FILE

from paths import CANONICAL, RULES

DATA = Path(__file__).resolve().parent / "data" / "hunt"
PLANTED = [event["record"] for event in json.loads((DATA / "planted.json").read_text())["events"]]
NOISE = [event["record"] for event in json.loads((DATA / "noise.json").read_text())["events"]]
# A project rule that reads more columns than the canonical rule: additionalEventData,
# responseElements and userIdentity.type.
WIDER_RULE = RULES / "aws" / "cloudtrail" / "aws_console_login_without_mfa.yml"


def write_log(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump({"Records": records}, handle)
    return path


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    day = root / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "11"
    write_log(day / "02" / "one.json.gz", [PLANTED[0], NOISE[0], PLANTED[1]])
    write_log(day / "03" / "two.json.gz", [PLANTED[2], NOISE[1]])
    write_log(day / "04" / "three.json.gz", [PLANTED[3], PLANTED[4], NOISE[2]])
    return root


def ids(hits: list[Any]) -> list[str]:
    return [str(hit.event_id) for hit in hits]


def test_second_hunt_reads_parquet(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _, first = hunt([logs], rules=[CANONICAL], cache=cache)
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert first.cached_files == 0
    assert second.cached_files == 3
    assert ids(second.hits) == ids(first.hits)
    assert second.hits == first.hits
    assert second.records == first.records == 8
    assert sorted(path.suffix for path in cache.iterdir()) == [".TAG", ".json", ".json", ".parquet"]
    assert {path.name for path in cache.glob("*.json")} == {MANIFEST, DETECTIONS_FILE}


def test_cached_hunt_does_not_read_the_json(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    # Rewrite one log with the same size and modification time but other content: a hunt
    # that reads the Parquet copy still sees the old records.
    path = next(logs.rglob("two.json.gz"))
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    _, cached = hunt([logs], rules=[CANONICAL], cache=cache)
    assert cached.cached_files == 3
    assert PLANTED[2]["eventID"] in ids(cached.hits)
    _, fresh = hunt([logs], rules=[CANONICAL])
    assert [skipped.path for skipped in fresh.skipped] == [path]


def test_changed_file_is_read_again(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    path = next(logs.rglob("two.json.gz"))
    write_log(path, [NOISE[1]])
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert second.cached_files == 2
    assert PLANTED[2]["eventID"] not in ids(second.hits)
    _, third = hunt([logs], rules=[CANONICAL], cache=cache)
    assert third.cached_files == 3
    assert ids(third.hits) == ids(second.hits)


def test_rules_needing_more_columns_read_json_again(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    _, wider = hunt([logs], rules=[WIDER_RULE], cache=cache)
    assert wider.cached_files == 0
    # The new copy keeps the columns of both rule sets, so either hunt now reads it.
    _, again = hunt([logs], rules=[CANONICAL], cache=cache)
    assert again.cached_files == 3
    _, wider_again = hunt([logs], rules=[WIDER_RULE], cache=cache)
    assert wider_again.cached_files == 3
    assert len(list(cache.glob("*.parquet"))) == 1


def test_cached_hunt_applies_time_range(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    window = TimeRange(
        since=parse_time("2026-11-03"), until=parse_time("2026-11-03", end_of_day=True)
    )
    _, cached = hunt([logs], rules=[CANONICAL], time_range=window, cache=cache)
    _, direct = hunt([logs], rules=[CANONICAL], time_range=window)
    assert cached.cached_files == 3
    assert ids(cached.hits) == ids(direct.hits) == [PLANTED[2]["eventID"], PLANTED[3]["eventID"]]
    assert cached.records_in_range == direct.records_in_range


def test_cached_hunt_over_subset_of_files(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    one = next(logs.rglob("one.json.gz"))
    _, subset = hunt([one], rules=[CANONICAL], cache=cache)
    assert subset.cached_files == 1
    assert ids(subset.hits) == [PLANTED[0]["eventID"], PLANTED[1]["eventID"]]
    assert subset.records == 3


def test_bad_files_are_not_cached(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    bad = logs / "broken.json.gz"
    bad.write_bytes(gzip.compress(b"not json"))
    _, first = hunt([logs], rules=[CANONICAL], cache=cache)
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert [skipped.path for skipped in first.skipped] == [bad]
    assert [skipped.path for skipped in second.skipped] == [bad]
    assert second.cached_files == 3


def test_corrupt_manifest_reads_logs_again(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    (cache / MANIFEST).write_text("{not json")
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert second.cached_files == 0
    assert len(second.warnings) == 1
    assert second.warnings[0].startswith(f"{cache / MANIFEST}: cache manifest is unreadable")
    _, third = hunt([logs], rules=[CANONICAL], cache=cache)
    assert third.cached_files == 3
    assert third.warnings == []


def test_deleted_parquet_reads_logs_again(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    for parquet in cache.glob("*.parquet"):
        parquet.unlink()
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert second.cached_files == 0
    assert len(second.hits) == len(PLANTED)


def test_unused_parquet_files_are_deleted(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    [old] = cache.glob("*.parquet")
    for path in logs.rglob("*.json.gz"):
        write_log(path, [NOISE[0]])
    hunt([logs], rules=[CANONICAL], cache=cache)
    assert not old.exists()
    assert len(list(cache.glob("*.parquet"))) == 1


def test_cache_path_that_is_a_file_is_a_usage_error(logs: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.write_text("")
    result = CliRunner().invoke(
        app, ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(target)]
    )
    assert result.exit_code == 2
    assert "cache path is not a folder" in result.stderr


def test_hunt_writes_only_output_and_cache(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = {path for path in tmp_path.rglob("*")}
    cache = tmp_path / "cache"
    output = tmp_path / "hits.jsonl"
    args = ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(cache), "-o", str(output)]
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.stderr
    created = {path for path in tmp_path.rglob("*")} - before
    assert {path for path in created if cache not in path.parents and path != cache} == {output}
    assert list(work.iterdir()) == []
    assert not list(cache.glob("*.partial"))


def _fail_if_loaded(path: Path) -> Any:
    raise AssertionError(f"rule {path} was parsed again")


def test_cached_rules_are_not_parsed_again(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    rule_set, first = hunt([logs], rules=[RULES], cache=cache)
    monkeypatch.setattr("siemgen.rules.load_rule", _fail_if_loaded)
    cached_set, second = hunt([logs], rules=[RULES], cache=cache)
    assert cached_set.detections == rule_set.detections
    assert second.hits == first.hits


def test_changed_rule_is_converted_again(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rule = tmp_path / "rules" / "canonical.yml"
    rule.parent.mkdir()
    rule.write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
    _, first = hunt([logs], rules=[rule], cache=cache)
    assert len(first.hits) == len(PLANTED)
    text = rule.read_text(encoding="utf-8").replace("- PutUserPolicy\n", "")
    rule.write_text(text, encoding="utf-8")
    _, second = hunt([logs], rules=[rule], cache=cache)
    assert "PutUserPolicy" not in {hit.fields()["eventName"] for hit in second.hits}
    assert len(second.hits) == len(first.hits) - 1


def test_warm_cache_reports_broken_rule(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "canonical.yml").write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
    hunt([logs], rules=[rules], cache=cache)
    (rules / "broken.yml").write_text("title: [unclosed\n", encoding="utf-8")
    rule_set, result = hunt([logs], rules=[rules], cache=cache)
    assert [error.path for error in rule_set.errors] == [rules / "broken.yml"]
    assert len(result.hits) == len(PLANTED)


def test_warm_cache_skips_other_logsources(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "canonical.yml").write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
    other = CANONICAL.read_text(encoding="utf-8").replace("product: aws", "product: azure")
    assert other != CANONICAL.read_text(encoding="utf-8")
    (rules / "azure.yml").write_text(other, encoding="utf-8")
    for _ in range(2):
        rule_set, result = hunt([logs], rules=[rules], cache=cache)
        assert rule_set.other_logsources == 1
        assert len(rule_set.detections) == 1
        assert len(result.hits) == len(PLANTED)


def test_warm_cache_reports_duplicate_names(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = tmp_path / "team-a" / "canonical.yml"
    second = tmp_path / "team-b" / "canonical.yml"
    for rule in (first, second):
        rule.parent.mkdir()
        rule.write_text(CANONICAL.read_text(encoding="utf-8"), encoding="utf-8")
        hunt([logs], rules=[rule], cache=cache)
    rule_set, _ = hunt([logs], rules=[first.parent, second.parent], cache=cache)
    assert len(rule_set.detections) == 1
    assert [error.path for error in rule_set.errors] == [second]
    assert "already used" in str(rule_set.errors[0])


def _edit_detections(cache: Path, change: Any) -> None:
    path = cache / DETECTIONS_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    for entry in data["rules"].values():
        change(entry)
    path.write_text(json.dumps(data), encoding="utf-8")


DAMAGED_ENTRIES = {
    "syntax": {"condition": "eventname = = (", "fast_condition": "eventname = = ("},
    "comment": {"condition": "TRUE -- x", "fast_condition": "TRUE -- x"},
    "two-statements": {"condition": "TRUE; DROP TABLE t", "fast_condition": "TRUE"},
    "digest": {"digest": "0" * 64},
}
# Entries of the wrong shape whose digest was recomputed, which the type checks catch.
MISSHAPEN_ENTRIES = {
    "paths-text": {"paths": "x"},
    "unknown-column": {"paths": [["no_such_column"]]},
    "level": {"level": 5},
    "title": {"title": None},
    "screen-text": {"screen": "eventname = 'x'"},
    "screen-pair": {"screen": {"values": [["eventname"]], "tests": []}},
}


def _rehash(entry: dict[str, Any]) -> None:
    members = {name: value for name, value in entry.items() if name != "digest"}
    text = json.dumps(members, sort_keys=True).encode("utf-8")
    entry["digest"] = hashlib.sha256(text).hexdigest()


@pytest.mark.parametrize(
    ("damage", "rehash"),
    [(damage, False) for damage in DAMAGED_ENTRIES.values()]
    + [(damage, True) for damage in MISSHAPEN_ENTRIES.values()],
    ids=[*DAMAGED_ENTRIES, *MISSHAPEN_ENTRIES],
)
def test_damaged_rule_cache_converts_again(
    logs: Path, tmp_path: Path, damage: dict[str, Any], rehash: bool
) -> None:
    cache = tmp_path / "cache"
    _, first = hunt([logs], rules=[CANONICAL], cache=cache)

    def change(entry: dict[str, Any]) -> None:
        entry.update(damage)
        if rehash:
            _rehash(entry)

    _edit_detections(cache, change)
    rule_set, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert rule_set.errors == []
    assert second.hits == first.hits


def _parquet_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("records-*.parquet"))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_parquet_reads_logs_again(logs: Path, tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    _, first = hunt([logs], rules=[CANONICAL], cache=cache)
    for path in _parquet_files(cache):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"garbage\n")
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert second.cached_files == 0
    assert second.hits == first.hits
    [warning] = [warning for warning in second.warnings if "unreadable" in warning]
    assert "LINE" not in warning
    assert "read_parquet" not in warning
    _, third = hunt([logs], rules=[CANONICAL], cache=cache)
    assert third.cached_files == 3
    assert third.hits == first.hits


def test_manifest_extra_columns_reread_logs(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    manifest = json.loads((cache / MANIFEST).read_text(encoding="utf-8"))
    for entry in manifest["files"].values():
        columns = json.loads(entry["columns"])
        columns["responseElements"] = "JSON"
        columns["additionalEventData"] = "JSON"
        columns["userIdentity"] = {"type": "VARCHAR", "arn": "VARCHAR"}
        entry["columns"] = json.dumps(columns, sort_keys=True, separators=(",", ":"))
    (cache / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    _, cached = hunt([logs], rules=[WIDER_RULE], cache=cache)
    _, fresh = hunt([logs], rules=[WIDER_RULE])
    assert ids(cached.hits) == ids(fresh.hits)


@pytest.mark.parametrize(
    "damage",
    [{"records": "lots"}, {"missing": {"eventTime": "lots"}}, {"parquet": "../../x.parquet"}],
    ids=["records", "missing", "parquet-path"],
)
def test_misshapen_manifest_rereads_logs(
    logs: Path, tmp_path: Path, damage: dict[str, Any]
) -> None:
    cache = tmp_path / "cache"
    _, first = hunt([logs], rules=[CANONICAL], cache=cache)
    manifest = json.loads((cache / MANIFEST).read_text(encoding="utf-8"))
    for entry in manifest["files"].values():
        entry.update(damage)
    (cache / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert second.cached_files == 0
    assert second.records == first.records
    assert second.hits == first.hits
    assert any("manifest is unreadable" in warning for warning in second.warnings)


def test_cache_keeps_foreign_parquet_files(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "mine"
    hunt([logs], rules=[CANONICAL], cache=cache)
    precious = cache / "records-0123456789abcdef.parquet"
    precious.write_text("not siemgen's\n", encoding="utf-8")
    hunt([logs], rules=[CANONICAL], cache=cache)
    hunt([logs], rules=[WIDER_RULE], cache=cache)
    assert precious.read_text(encoding="utf-8") == "not siemgen's\n"


def test_cache_inside_logs_is_skipped(logs: Path) -> None:
    cache = logs / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert second.skipped == []
    assert second.cached_files == 3


def test_hand_edited_rule_cache_is_not_trusted(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _, first = hunt([logs], rules=[CANONICAL], cache=cache)
    edit = {"condition": "TRUE", "fast_condition": "TRUE", "title": "Edited title"}
    _edit_detections(cache, lambda entry: entry.update(edit))
    rule_set, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert [detection.title for detection in rule_set.detections] == ["AWS IAM Policy Changed"]
    assert second.hits == first.hits


@pytest.mark.parametrize("inside", [False, True])
def test_log_path_in_cache_folder_refused(logs: Path, inside: bool) -> None:
    log_path = next(logs.rglob("one.json.gz")) if inside else logs
    result = CliRunner().invoke(
        app, ["hunt", str(log_path), "--rules", str(CANONICAL), "--cache", str(logs)]
    )
    assert result.exit_code == 2
    where = "inside the cache folder" if inside else "the cache folder"
    assert f"the log path is {where}, which the hunt writes" in result.stderr
    assert not (logs / DETECTIONS_FILE).exists()
    assert not (logs / MANIFEST).exists()


def test_cache_folder_holding_logs_refused(logs: Path) -> None:
    cache = next(logs.rglob("one.json.gz")).parent
    result = CliRunner().invoke(
        app, ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(cache)]
    )
    assert result.exit_code == 2
    assert "contains 1 log file, which the hunt would leave out" in result.stderr
    assert not (cache / DETECTIONS_FILE).exists()


def test_cache_folder_inside_log_folder_is_left_out(logs: Path) -> None:
    cache = logs / "cache"
    args = ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(cache)]
    first = CliRunner().invoke(app, args)
    second = CliRunner().invoke(app, args)
    assert first.exit_code == second.exit_code == 0, second.stderr
    assert second.stdout == first.stdout
    assert "warning" not in second.stderr


def test_unwritable_manifest_warns_and_keeps_results(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[WIDER_RULE], cache=cache)
    (cache / MANIFEST).unlink()
    (cache / MANIFEST).mkdir()
    result = CliRunner().invoke(
        app, ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(cache)]
    )
    assert result.exit_code == 0, result.stderr
    assert "cannot write the cache manifest" in result.stderr
    assert "the next hunt reads these logs from JSON again" in result.stderr
    found = {json.loads(line)["eventID"] for line in result.stdout.splitlines()}
    assert found == {record["eventID"] for record in PLANTED}


def test_failed_parquet_write_scans_the_json(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = CliRunner().invoke(
        app, ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(cache)]
    )
    assert first.exit_code == 0, first.stderr
    # A folder where the next hunt will write its Parquet copy makes that write fail.
    (cache / MANIFEST).unlink()
    for parquet in cache.glob("*.parquet"):
        parquet.unlink()
        (parquet / "in-the-way").mkdir(parents=True)
    second = CliRunner().invoke(
        app, ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(cache)]
    )
    assert second.exit_code == 0, second.stderr
    assert "cannot write the cache" in second.stderr
    assert "the rest of this hunt is not cached" in second.stderr
    assert second.stdout == first.stdout


class StopAfterFirstBatch:
    """Progress that stops the hunt, as Ctrl-C would, once the first batch is scanned."""

    def start(self, total_bytes: int) -> None:
        """Accept the total."""

    def advance(self, scanned_bytes: int) -> None:
        """Stop the hunt."""
        raise KeyboardInterrupt


def test_interrupted_hunt_leaves_no_parquet(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rule_set = load_rules([CANONICAL], cache)
    runner = Hunt(rule_set.detections, cache=cache, progress=StopAfterFirstBatch())
    with pytest.raises(KeyboardInterrupt):
        runner.run([logs])
    assert list(cache.glob("*.parquet*")) == []
    _, result = hunt([logs], rules=[CANONICAL], cache=cache)
    assert len(result.hits) == len(PLANTED)


def test_entries_of_deleted_logs_are_dropped(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    for path in logs.rglob("*.json.gz"):
        path.unlink()
    write_log(logs / "new.json.gz", [PLANTED[0]])
    hunt([logs], rules=[CANONICAL], cache=cache)
    manifest = json.loads((cache / MANIFEST).read_text(encoding="utf-8"))
    assert [Path(entry["path"]).name for entry in manifest["files"].values()] == ["new.json.gz"]
    assert len(list(cache.glob("*.parquet"))) == 1


def test_output_inside_cache_refused(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    target = cache / "report.txt"
    result = CliRunner().invoke(
        app,
        ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(cache), "-o", str(target)],
    )
    assert result.exit_code == 2
    assert "the --output file is among the cache files" in result.stderr


def test_link_to_a_log_refused_as_output(logs: Path, tmp_path: Path) -> None:
    log = next(logs.rglob("one.json.gz"))
    before = log.read_bytes()
    link = tmp_path / "hits.txt"
    link.symlink_to(log)
    result = CliRunner().invoke(
        app, ["hunt", str(logs), "--rules", str(CANONICAL), "-o", str(link)]
    )
    assert result.exit_code == 2
    assert "the --output file is among the log files" in result.stderr
    assert log.read_bytes() == before


def test_old_cache_in_logs_not_read(logs: Path) -> None:
    cache = logs / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    result = CliRunner().invoke(app, ["hunt", str(logs), "--rules", str(CANONICAL)])
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    assert "3 files" in result.stderr


def test_missing_log_path_writes_no_cache(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["hunt", str(logs), str(tmp_path / "absent.jsonl"), "--rules", str(CANONICAL)]
    result = CliRunner().invoke(app, [*args, "--cache", str(cache)])
    assert result.exit_code == 2
    assert "log path not found" in result.stderr
    assert not cache.exists()


def _write_log_shape(target: Path, shape: str) -> None:
    """Write a CloudTrail log of the given shape, as a trail, an export or a person makes it."""
    if shape == "gzip":
        write_log(target, [NOISE[0]])
    elif shape == "json-lines":
        target.write_text("".join(json.dumps(record) + "\n" for record in NOISE[:2]))
    elif shape == "indented":
        target.write_text(json.dumps({"Records": NOISE[:1]}, indent=2))
    else:
        lines = [json.dumps(record) for record in NOISE[:3]]
        target.write_text(lines[0][40:] + "\n" + "\n".join(lines[1:]) + "\n")


@pytest.mark.parametrize("shape", ["gzip", "json-lines", "indented", "first-line-cut"])
def test_output_over_a_log_file_refused(logs: Path, tmp_path: Path, shape: str) -> None:
    target = tmp_path / "elsewhere.log"
    _write_log_shape(target, shape)
    before = target.read_bytes()
    args = ["hunt", str(logs), "--rules", str(CANONICAL), "-o", str(target)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "the --output file is a CloudTrail log file" in result.stderr
    assert target.read_bytes() == before


@pytest.mark.parametrize("output_format", ["jsonl", "json", "csv", "table"])
def test_hunt_replaces_its_own_output(logs: Path, tmp_path: Path, output_format: str) -> None:
    target = tmp_path / "hits.out"
    args = ["hunt", str(logs), "--rules", str(CANONICAL), "-f", output_format, "-o", str(target)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    if output_format == "jsonl":
        assert target.read_text().startswith('{"rule_id"')
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.stderr


def test_warm_hunt_leaves_manifest_untouched(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    manifest = cache / MANIFEST
    os.utime(manifest, ns=(0, 0))
    before = manifest.read_bytes()
    _, warm = hunt([logs], rules=[CANONICAL], cache=cache)
    assert warm.cached_files == 3
    assert manifest.stat().st_mtime_ns == 0
    assert manifest.read_bytes() == before
    next(logs.rglob("two.json.gz")).unlink()
    hunt([logs], rules=[CANONICAL], cache=cache)
    assert manifest.stat().st_mtime_ns != 0
    assert len(json.loads(manifest.read_text())["files"]) == 2


def test_new_cache_folder_is_tagged(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    tag = (cache / CACHE_TAG).read_bytes()
    assert tag.startswith(b"Signature: 8a477f597d28d172789f06886806bc55")


def test_foreign_folder_refused_as_cache(logs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "webapp"
    folder.mkdir()
    (folder / MANIFEST).write_text('{"name": "My PWA"}\n', encoding="utf-8")
    (folder / DETECTIONS_FILE).write_text('{"important": true}\n', encoding="utf-8")
    result = CliRunner().invoke(
        app, ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(folder)]
    )
    assert result.exit_code == 2
    assert "the folder is not a siemgen cache" in result.stderr
    assert "pass a new or empty folder to --cache" in result.stderr
    assert (folder / MANIFEST).read_text(encoding="utf-8") == '{"name": "My PWA"}\n'
    assert (folder / DETECTIONS_FILE).read_text(encoding="utf-8") == '{"important": true}\n'
    assert sorted(path.name for path in folder.iterdir()) == [DETECTIONS_FILE, MANIFEST]


def test_working_folder_refused_as_cache(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine\n", encoding="utf-8")
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", ""])
    assert result.exit_code == 2
    assert "which a hunt did not write" in result.stderr
    assert sorted(path.name for path in work.iterdir()) == ["notes.txt"]


def test_untagged_older_cache_is_reused(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hunt([logs], rules=[CANONICAL], cache=cache)
    (cache / CACHE_TAG).unlink()
    _, second = hunt([logs], rules=[CANONICAL], cache=cache)
    assert second.cached_files == 3
    assert (cache / CACHE_TAG).is_file()


def test_links_in_cache_lead_nowhere(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    hunt([logs], rules=[CANONICAL], cache=cache)
    # Links at the names of the files a hunt writes, and at the fixed temporary names that
    # earlier versions used.
    for name in (MANIFEST, DETECTIONS_FILE, MANIFEST + ".partial", DETECTIONS_FILE + ".partial"):
        (cache / name).unlink(missing_ok=True)
        (cache / name).symlink_to(victim)
    _, second = hunt([logs], rules=[WIDER_RULE], cache=cache)
    assert second.skipped == []
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert not (cache / MANIFEST).is_symlink()
    assert not (cache / DETECTIONS_FILE).is_symlink()


def test_cached_file_named_by_another_path(logs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    link = tmp_path / "same-logs"
    link.symlink_to(logs, target_is_directory=True)
    _, first = hunt([logs], rules=[CANONICAL], cache=cache)
    _, second = hunt([link], rules=[CANONICAL], cache=cache)
    assert second.cached_files == 3
    assert ids(second.hits) == ids(first.hits)
    for hit in second.hits:
        assert hit.file.startswith(str(link))
        assert hit.fields()["file"] == hit.file


@pytest.mark.parametrize(
    "tag",
    [
        b"Signature: 8a477f597d28d172789f06886806bc55\n# created by othertool\n",
        b"hello\n",
        b"",
    ],
    ids=["other-program", "no-signature", "empty"],
)
def test_folder_tagged_by_another_program_refused(logs: Path, tmp_path: Path, tag: bytes) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / CACHE_TAG).write_bytes(tag)
    (folder / MANIFEST).write_text('{"othertool": "index"}\n', encoding="utf-8")
    args = ["hunt", str(logs), "--rules", str(CANONICAL), "--cache", str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "its CACHEDIR.TAG was not written by siemgen" in result.stderr
    assert (folder / MANIFEST).read_text(encoding="utf-8") == '{"othertool": "index"}\n'
    assert sorted(path.name for path in folder.iterdir()) == [CACHE_TAG, MANIFEST]
