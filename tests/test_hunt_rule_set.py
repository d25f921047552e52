"""A month of synthetic CloudTrail logs, hunted with every project rule at once.

The planted records are the must-match events of each rule's own test file; the noise is
read-only activity that no CIS control selects. The hunt must return the planted records,
each for its own rule, and nothing else, and agree record for record with each rule's
Athena SQL run on an in-memory DuckDB table.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest

from siemgen.convert import Converter
from siemgen.engines.duckdb import create_cloudtrail_table, load_records, matching_event_ids
from siemgen.hunt import hunt
from siemgen.hunt.logs import TimeRange
from siemgen.rules import load_collection

from paths import RULES

ACCOUNT = "111122223333"
REGION = "us-east-1"
MONTH_START = dt.date(2026, 11, 1)
DAYS = 30
NOISE_CALLS = [
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("iam.amazonaws.com", "ListUsers"),
    ("iam.amazonaws.com", "GetPolicy"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("cloudtrail.amazonaws.com", "LookupEvents"),
    ("kms.amazonaws.com", "Decrypt"),
    ("monitoring.amazonaws.com", "DescribeAlarms"),
]


def athena_expects_match(expect: object) -> bool:
    if isinstance(expect, str):
        return expect == "match"
    assert isinstance(expect, dict)
    return expect.get("athena", expect.get("default")) == "match"


def planted_events() -> dict[str, list[dict[str, Any]]]:
    """Map each rule file stem to the records its tests say the Athena SQL must match."""
    planted: dict[str, list[dict[str, Any]]] = {}
    for tests in sorted(RULES.rglob("*.tests.json")):
        stem = tests.name.removesuffix(".tests.json")
        for group in json.loads(tests.read_text(encoding="utf-8"))["groups"]:
            if athena_expects_match(group["expect"]):
                planted.setdefault(stem, []).extend(
                    copy.deepcopy(event["record"]) for event in group["events"]
                )
    return planted


def noise_record(index: int, when: dt.datetime) -> dict[str, Any]:
    source, name = NOISE_CALLS[index % len(NOISE_CALLS)]
    return {
        "eventVersion": "1.11",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLENOISE",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/reader",
            "accountId": ACCOUNT,
            "userName": "reader",
        },
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.20",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "requestID": f"noise-request-{index}",
        "eventID": f"noise-{index:05d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Write a month of delivered log files with the planted records spread over its days."""
    shuffle = random.Random(20261101)
    records: list[dict[str, Any]] = []
    planted = planted_events()
    for stem in sorted(planted):
        for record in planted[stem]:
            day = MONTH_START + dt.timedelta(days=shuffle.randrange(DAYS))
            when = dt.datetime.combine(day, dt.time(shuffle.randrange(24), 7, 3))
            record["eventTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            records.append(record)
    for index in range(1500):
        day = MONTH_START + dt.timedelta(days=index % DAYS)
        records.append(noise_record(index, dt.datetime.combine(day, dt.time(index % 24, 30))))

    bucket = tmp_path_factory.mktemp("bucket")
    by_day: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_day.setdefault(record["eventTime"][:10], []).append(record)
    for day, day_records in sorted(by_day.items()):
        folder = bucket / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION / day.replace("-", "/")
        folder.mkdir(parents=True)
        stamp = day.replace("-", "") + "T2355Z"
        name = f"{ACCOUNT}_CloudTrail_{REGION}_{stamp}_A1B2C3D4E5F6A7B8.json.gz"
        with gzip.open(folder / name, "wt", encoding="utf-8") as handle:
            json.dump({"Records": day_records}, handle)
    return bucket, records


def expected_hits(records: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Run each rule's Athena SQL on an in-memory table of the records: (title, eventID)."""
    con = duckdb.connect()
    create_cloudtrail_table(con)
    load_records(con, records)
    converter = Converter()
    expected = set()
    for rule_file in load_collection([RULES]).rules:
        query = converter.convert(rule_file, "athena", backend_format="condition")
        expected |= {(rule_file.title, event_id) for event_id in matching_event_ids(con, query)}
    return expected


def found_hits(result: Any) -> set[tuple[str, str]]:
    return {
        (result.detections[index].title, hit.event_id) for hit in result.hits for index in hit.rules
    }


def test_month_returns_planted_events_and_nothing_else(
    month: tuple[Path, list[dict[str, Any]]],
) -> None:
    bucket, records = month
    _, result = hunt([bucket], rules=[RULES])
    found = found_hits(result)
    assert result.skipped == []
    assert len(result.files) == DAYS
    assert result.records == len(records)
    assert not {event_id for _, event_id in found if event_id.startswith("noise-")}
    assert found == expected_hits(records)

    titles = {rule.path.name.removesuffix(".yml"): rule.title for rule in load_collection([RULES])}
    for stem, planted in planted_events().items():
        for record in planted:
            assert (titles[stem], record["eventID"]) in found, (stem, record["eventID"])


def test_week_window_keeps_only_that_week(month: tuple[Path, list[dict[str, Any]]]) -> None:
    bucket, records = month
    since = dt.datetime(2026, 11, 8, tzinfo=dt.UTC)
    until = dt.datetime(2026, 11, 14, 23, 59, 59, tzinfo=dt.UTC)
    _, result = hunt([bucket], rules=[RULES], time_range=TimeRange(since, until))
    in_week = [r for r in records if "2026-11-08" <= r["eventTime"][:10] <= "2026-11-14"]
    assert found_hits(result) == expected_hits(in_week)
    assert result.pruned_files + result.pruned_folders > 0
