"""`--since` and `--until`: pruning dated folders before reading, then filtering by eventTime."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from siemgen.cli import app
from siemgen.errors import ConfigError
from siemgen.hunt import TimeRange, find_log_files, hunt, parse_time
from siemgen.hunt.logs import folder_days

from paths import CANONICAL

DATA = Path(__file__).resolve().parent / "data" / "hunt"
PLANTED = {
    event["record"]["eventName"]: event["record"]
    for event in json.loads((DATA / "planted.json").read_text())["events"]
}
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def day_folder(root: Path, day: str, account: str = "111122223333") -> Path:
    folder = root / "AWSLogs" / account / "CloudTrail" / "us-east-1" / day.replace("-", "/")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_log(folder: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = folder / name
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump({"Records": records}, handle)
    return path


def with_time(record: dict[str, Any], event_time: str, event_id: str) -> dict[str, Any]:
    return dict(record, eventTime=event_time, eventID=event_id)


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """Logs delivered over several days, with a corrupt file in a day far outside the range."""
    root = tmp_path / "bucket"
    put = PLANTED["PutUserPolicy"]
    write_log(
        day_folder(root, "2026-10-01"),
        "old.json.gz",
        [with_time(put, "2026-10-01T08:00:00Z", "old-october")],
    )
    # A corrupt file in a folder the range excludes: reading it would print a warning.
    (day_folder(root, "2026-09-15") / "corrupt.json.gz").write_bytes(b"\x1f\x8b\x08broken")
    write_log(
        day_folder(root, "2026-11-02"),
        "day-two.json.gz",
        [
            with_time(put, "2026-11-02T10:00:00Z", "nov-02-morning"),
            with_time(put, "2026-11-02T23:59:59Z", "nov-02-last-second"),
        ],
    )
    # Logged just before midnight and delivered after it, so it sits in the next day's folder.
    write_log(
        day_folder(root, "2026-11-03"),
        "day-three.json.gz",
        [
            with_time(put, "2026-11-02T23:58:00Z", "nov-02-delivered-nov-03"),
            with_time(put, "2026-11-03T12:00:00Z", "nov-03-noon"),
        ],
    )
    write_log(
        day_folder(root, "2026-11-05"),
        "day-five.json.gz",
        [with_time(put, "2026-11-05T01:00:00Z", "nov-05")],
    )
    return root


def event_ids(root: Path, time_range: TimeRange) -> set[str]:
    _, result = hunt([root], rules=[CANONICAL], time_range=time_range)
    return {str(hit.event_id) for hit in result.hits}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["hunt", *args, "--rules", str(CANONICAL)])


def test_parse_time_date_is_midnight_utc() -> None:
    assert parse_time("2026-11-02") == at("2026-11-02T00:00:00")


def test_parse_time_end_of_day() -> None:
    assert parse_time("2026-11-02", end_of_day=True) == at("2026-11-02T23:59:59.999999")


def test_parse_time_without_offset_is_utc() -> None:
    assert parse_time("2026-11-02T10:30:00") == at("2026-11-02T10:30:00")


def test_parse_time_converts_offsets_to_utc() -> None:
    assert parse_time("2026-11-02T10:30:00+02:00") == at("2026-11-02T08:30:00")
    assert parse_time("2026-11-02T10:30:00Z") == at("2026-11-02T10:30:00")


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "02/11/2026", ""])
def test_parse_time_rejects_invalid_text(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid date or time"):
        parse_time(text)


def test_folder_days_of_s3_layout() -> None:
    base = Path("bucket/AWSLogs/111122223333/CloudTrail/us-east-1")
    assert folder_days(base) is None
    assert folder_days(base / "2026") == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert folder_days(base / "2026" / "02") == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert folder_days(base / "2026" / "12") == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert folder_days(base / "2026" / "11" / "03") == (dt.date(2026, 11, 3), dt.date(2026, 11, 3))


def test_folder_days_of_organization_trail() -> None:
    base = Path("AWSLogs/o-exampleorg1/444455556666/CloudTrail/eu-west-1/2026/11/03")
    assert folder_days(base) == (dt.date(2026, 11, 3), dt.date(2026, 11, 3))


def test_folder_days_ignores_other_folders() -> None:
    assert folder_days(Path("exports/2026/11/03")) is None
    assert folder_days(Path("AWSLogs/1/CloudTrail/us-east-1/2026/13/40")) is None


def test_keeps_days_with_one_day_margin() -> None:
    window = TimeRange(since=at("2026-11-03T00:00:00"), until=at("2026-11-03T23:59:59"))
    assert window.keeps_days(dt.date(2026, 11, 3), dt.date(2026, 11, 3))
    # Files delivered the day before may hold records of the range only through clock
    # differences, and files delivered a day later hold late records; both are read.
    assert window.keeps_days(dt.date(2026, 11, 2), dt.date(2026, 11, 2))
    assert window.keeps_days(dt.date(2026, 11, 4), dt.date(2026, 11, 4))
    assert not window.keeps_days(dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    assert not window.keeps_days(dt.date(2026, 11, 6), dt.date(2026, 11, 6))


def test_open_range_keeps_every_day() -> None:
    assert TimeRange().keeps_days(dt.date(1999, 1, 1), dt.date(1999, 1, 1))


def test_since_prunes_old_folders_before_reading(bucket: Path) -> None:
    found = find_log_files([bucket], TimeRange(since=at("2026-11-01T00:00:00")))
    names = sorted(log_file.path.name for log_file in found.files)
    assert names == ["day-five.json.gz", "day-three.json.gz", "day-two.json.gz"]
    # 2026/09 and 2026/10 are left out whole, without listing them.
    assert found.pruned_folders == 2
    assert found.skipped == []


def test_until_prunes_later_days(bucket: Path) -> None:
    found = find_log_files([bucket], TimeRange(until=at("2026-11-02T23:59:59")))
    names = sorted(log_file.path.name for log_file in found.files)
    assert "day-five.json.gz" not in names
    assert "day-three.json.gz" in names


def test_until_keeps_record_delivered_next_day(bucket: Path) -> None:
    found = event_ids(bucket, TimeRange(until=parse_time("2026-11-02", end_of_day=True)))
    assert found == {
        "old-october",
        "nov-02-morning",
        "nov-02-last-second",
        "nov-02-delivered-nov-03",
    }


def test_since_filters_records_by_event_time(bucket: Path) -> None:
    found = event_ids(bucket, TimeRange(since=parse_time("2026-11-03")))
    assert found == {"nov-03-noon", "nov-05"}


def test_single_day_range(bucket: Path) -> None:
    window = TimeRange(
        since=parse_time("2026-11-02"), until=parse_time("2026-11-02", end_of_day=True)
    )
    assert event_ids(bucket, window) == {
        "nov-02-morning",
        "nov-02-last-second",
        "nov-02-delivered-nov-03",
    }


def test_until_datetime_is_inclusive(bucket: Path) -> None:
    window = TimeRange(
        since=parse_time("2026-11-02T23:59:59Z"), until=parse_time("2026-11-02T23:59:59Z")
    )
    assert event_ids(bucket, window) == {"nov-02-last-second"}


def test_cli_since_until_and_summary(bucket: Path) -> None:
    result = run(str(bucket), "--since", "2026-11-02", "--until", "2026-11-03")
    assert result.exit_code == 0, result.stderr
    found = {json.loads(line)["eventID"] for line in result.stdout.splitlines()}
    assert found == {
        "nov-02-morning",
        "nov-02-last-second",
        "nov-02-delivered-nov-03",
        "nov-03-noon",
    }
    assert "warning:" not in result.stderr
    assert "4 records in 2 files; 4 matching records" in result.stderr
    assert "left out by date: 3 folders and 0 files outside the time range" in result.stderr


def test_cli_summary_counts_records_in_range(bucket: Path) -> None:
    result = run(str(bucket), "--since", "2026-11-03")
    assert result.exit_code == 0, result.stderr
    assert "5 records in 3 files; 2 in the time range; 2 matching records" in result.stderr


def test_cli_without_range_reads_corrupt_old_file(bucket: Path) -> None:
    result = run(str(bucket))
    assert result.exit_code == 1
    assert "corrupt.json.gz: skipped:" in result.stderr


def test_records_without_event_time_are_outside_any_range(tmp_path: Path) -> None:
    put = PLANTED["PutUserPolicy"]
    timeless = {key: value for key, value in put.items() if key != "eventTime"}
    write_log(tmp_path, "export.json.gz", [timeless])
    _, everything = hunt([tmp_path], rules=[CANONICAL])
    assert [hit.event_id for hit in everything.hits] == [put["eventID"]]
    _, bounded = hunt(
        [tmp_path], rules=[CANONICAL], time_range=TimeRange(since=at("2000-01-01T00:00:00"))
    )
    assert bounded.hits == []
    assert bounded.records_in_range == 0


def test_files_outside_dated_layout_are_filtered_by_event_time(tmp_path: Path) -> None:
    put = PLANTED["PutUserPolicy"]
    write_log(
        tmp_path,
        "export.json.gz",
        [
            with_time(put, "2026-11-02T10:00:00Z", "in"),
            with_time(put, "2026-12-02T10:00:00Z", "out"),
        ],
    )
    window = TimeRange(
        since=parse_time("2026-11-01"), until=parse_time("2026-11-30", end_of_day=True)
    )
    assert event_ids(tmp_path, window) == {"in"}


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_folders_at_calendar_ends_hunted(tmp_path: Path, day: str) -> None:
    put = PLANTED["PutUserPolicy"]
    write_log(day_folder(tmp_path, day), "edge.json.gz", [with_time(put, f"{day}T12:00:00Z", day)])
    assert event_ids(tmp_path, TimeRange()) == {day}
    assert event_ids(tmp_path, TimeRange(since=at("2024-01-01T00:00:00"))) == (
        {day} if day.startswith("9999") else set()
    )
    assert event_ids(tmp_path, TimeRange(until=parse_time(day, end_of_day=True))) == {day}


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_time_outside_utc_years_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="outside the years 1 to 9999"):
        parse_time(text)


def test_until_last_day_of_calendar() -> None:
    until = parse_time("9999-12-31", end_of_day=True)
    assert until == dt.datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-10-28", "20261028", "2026-W44-3", "2026W443"])
def test_every_date_form_ends_the_day(text: str) -> None:
    assert parse_time(text, end_of_day=True) == at("2026-10-28T23:59:59.999999")
    assert parse_time(text) == at("2026-10-28T00:00:00")


@pytest.mark.parametrize("word", ["epoch", "infinity", "-infinity"])
def test_words_duckdb_casts_are_not_times(tmp_path: Path, word: str) -> None:
    put = PLANTED["PutUserPolicy"]
    write_log(tmp_path, "words.json.gz", [with_time(put, word, word)])
    assert event_ids(tmp_path, TimeRange(since=at("2000-01-01T00:00:00"))) == set()
    assert event_ids(tmp_path, TimeRange(until=at("2100-01-01T00:00:00"))) == set()
    assert event_ids(tmp_path, TimeRange()) == {word}
