"""The hunt matches what each rule's own tests expect, and what the Athena engine matches."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from siemgen.convert import Converter
from siemgen.engines.duckdb import create_cloudtrail_table, load_records, matching_event_ids
from siemgen.hunt import hunt, load_rules
from siemgen.hunt.rewrite import screen, short_circuit
from siemgen.hunt.screen import screen_condition
from siemgen.rules import load_collection
from siemgen.ruletest import load_tests, rule_tests_path

from paths import CORPUS, RULES
from strategies import fuzz_settings

DATA = Path(__file__).resolve().parent / "data" / "hunt"


def rule_test_events() -> Iterator[tuple[Path, str, dict[str, Any], bool]]:
    """Yield (rule path, event id, record, expected on athena) for every rule test event."""
    for rule_path in sorted(RULES.rglob("*.yml")):
        tests_path = rule_tests_path(rule_path)
        if not tests_path.exists():
            continue
        for group, event in load_tests(tests_path).events():
            yield rule_path, event.event_id, dict(event.record), group.expects_match("athena")


def pooled_records() -> list[dict[str, Any]]:
    """Every rule test record once, plus the hunt test data, in a fixed order."""
    seen: dict[str, dict[str, Any]] = {}
    for _, event_id, record, _ in rule_test_events():
        seen.setdefault(event_id, record)
    for name in ("planted.json", "noise.json"):
        for event in json.loads((DATA / name).read_text())["events"]:
            seen.setdefault(event["record"]["eventID"], event["record"])
    return list(seen.values())


@pytest.fixture(scope="module")
def pool_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pooled records split over a delivered gzip file and a JSON lines file."""
    root = tmp_path_factory.mktemp("pool")
    records = pooled_records()
    folder = root / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "11" / "02"
    folder.mkdir(parents=True)
    half = len(records) // 2
    with gzip.open(folder / "pool.json.gz", "wt", encoding="utf-8") as handle:
        json.dump({"Records": records[:half]}, handle)
    with (root / "rest.jsonl").open("w", encoding="utf-8") as handle:
        for record in records[half:]:
            handle.write(json.dumps(record) + "\n")
    return root


@pytest.fixture(scope="module")
def project_hits(pool_folder: Path) -> dict[str, set[str]]:
    """Event ids each project rule matches in the pool, by rule file path."""
    _, result = hunt([pool_folder], rules=[RULES])
    assert result.skipped == []
    found: dict[str, set[str]] = {detection.path: set() for detection in result.detections}
    for hit in result.hits:
        for index in hit.rules:
            found[result.detections[index].path].add(str(hit.event_id))
    return found


def test_rule_test_event_ids_name_one_record() -> None:
    records: dict[str, dict[str, Any]] = {}
    for _, event_id, record, _ in rule_test_events():
        assert records.setdefault(event_id, record) == record, event_id
    assert len(records) > 50


@pytest.mark.parametrize(
    "rule_path", sorted(path for path in RULES.rglob("*.yml") if rule_tests_path(path).exists())
)
def test_hunt_matches_rule_tests(rule_path: Path, project_hits: dict[str, set[str]]) -> None:
    expected_match = {
        event_id
        for path, event_id, _, expected in rule_test_events()
        if path == rule_path and expected
    }
    expected_no_match = {
        event_id
        for path, event_id, _, expected in rule_test_events()
        if path == rule_path and not expected
    }
    found = project_hits[str(rule_path)]
    assert expected_match <= found
    assert not expected_no_match & found


def reference_matches(rule_paths: list[Path], records: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Run each rule's Athena SQL on the Athena CloudTrail table in DuckDB."""
    con = duckdb.connect()
    create_cloudtrail_table(con)
    load_records(con, records)
    converter = Converter()
    found = {}
    for rule_file in load_collection(rule_paths).rules:
        athena_sql = converter.convert(rule_file, "athena", "sql", backend_format="condition")
        found[rule_file.path.name] = matching_event_ids(con, athena_sql)
    return found


def noise_records(count: int) -> list[dict[str, Any]]:
    """Vary the pooled records: other names, sources, identities, errors and missing keys."""
    rng = random.Random(11)
    pool = pooled_records()
    names = sorted({str(record.get("eventName")) for record in pool})
    sources = sorted({str(record.get("eventSource")) for record in pool})
    varied = []
    for index in range(count):
        record = json.loads(json.dumps(rng.choice(pool)))
        record["eventID"] = f"varied-{index}"
        record["eventName"] = rng.choice(names)
        record["eventSource"] = rng.choice(sources)
        if rng.random() < 0.2:
            record["errorCode"] = rng.choice(["AccessDenied", "Client.UnauthorizedOperation"])
        if rng.random() < 0.2:
            record.pop(rng.choice(sorted(record)), None)
            record["eventID"] = f"varied-{index}"
        varied.append(record)
    return varied


def test_hunt_agrees_with_athena_engine(tmp_path: Path) -> None:
    records = pooled_records() + noise_records(400)
    with gzip.open(tmp_path / "all.json.gz", "wt", encoding="utf-8") as handle:
        json.dump({"Records": records}, handle)
    rule_paths = [RULES]
    if CORPUS.is_dir():
        rule_paths.append(CORPUS)
    expected = reference_matches(rule_paths, records)
    _, result = hunt([tmp_path], rules=rule_paths)
    found: dict[str, set[str]] = {Path(d.path).name: set() for d in result.detections}
    for hit in result.hits:
        for index in hit.rules:
            found[Path(result.detections[index].path).name].add(str(hit.event_id))
    assert set(found) == set(expected)
    mismatched = sorted(name for name in expected if expected[name] != found[name])
    assert mismatched == []
    assert any(expected.values())


def test_corpus_rules_all_run() -> None:
    if not CORPUS.is_dir():
        pytest.skip("SigmaHQ corpus not present")
    rule_set = load_rules([CORPUS])
    assert rule_set.errors == []
    assert len(rule_set.detections) == len(list(CORPUS.glob("*.yml")))


# Truth-value rewrite: TRUE exactly where the original condition is TRUE.

ATOMS = (
    "a = 1",
    "b = 'x'",
    "b = 'it''s'",
    "b IN ('y', 'a\\b')",
    "upper(b) = 'XX'",
    "a = 1 + 1",
    "b = concat('x', '')",
    "a IS NULL",
    "b IS NOT NULL",
    "lower(b) LIKE '%x%'",
    "c",
    "NOT c",
    "a > 0",
    "TRUE",
    "FALSE",
    "NULL",
)


def conditions(depth: int = 3) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(ATOMS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda pair: f"({pair[0]}) AND ({pair[1]})"),
            st.tuples(inner, inner).map(lambda pair: f"({pair[0]}) OR ({pair[1]})"),
            inner.map(lambda text: f"NOT COALESCE({text}, FALSE)"),
            inner.map(lambda text: f"COALESCE({text}, FALSE)"),
            inner.map(lambda text: f"NOT ({text})"),
        )

    return st.recursive(leaf, extend, max_leaves=2**depth)


@pytest.fixture(scope="module")
def truth_table() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INTEGER, a INTEGER, b VARCHAR, c BOOLEAN)")
    rows = []
    for a in [None, 0, 1, 2]:
        for b in [None, "x", "y", "Xx", "it's", "a\\b"]:
            for c in [None, True, False]:
                rows.append((len(rows), a, b, c))
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    return con


@fuzz_settings(default_examples=200)
@given(condition=conditions())
def test_short_circuit_keeps_true_rows(
    truth_table: duckdb.DuckDBPyConnection, condition: str
) -> None:
    def true_rows(text: str) -> set[int]:
        rows = truth_table.execute(f"SELECT id FROM t WHERE coalesce({text}, FALSE)").fetchall()
        return {int(row[0]) for row in rows}

    assert true_rows(short_circuit(condition)) == true_rows(condition)


def test_short_circuit_rewrites_and_as_case() -> None:
    rewritten = short_circuit("eventsource = 'iam.amazonaws.com' AND eventname = 'PutUserPolicy'")
    assert rewritten == (
        "CASE WHEN eventsource = 'iam.amazonaws.com' THEN eventname = 'PutUserPolicy' "
        "ELSE FALSE END"
    )


def test_short_circuit_keeps_plain_negation() -> None:
    assert short_circuit("NOT (a = 1 AND b = 2)") == "NOT (a = 1 AND b = 2)"


# Screens: a test that every record a rule matches passes.


def _true_rows(con: duckdb.DuckDBPyConnection, condition: str) -> set[int]:
    rows = con.execute(f"SELECT id FROM t WHERE coalesce({condition}, FALSE)").fetchall()
    return {int(row[0]) for row in rows}


@fuzz_settings(default_examples=200)
@given(rules=st.lists(conditions(), min_size=1, max_size=3))
def test_screen_passes_every_matching_row(
    truth_table: duckdb.DuckDBPyConnection, rules: list[str]
) -> None:
    combined = screen_condition((screen(rule), rule) for rule in rules)
    if combined is None:
        return
    matching = set().union(*(_true_rows(truth_table, rule) for rule in rules))
    assert matching <= _true_rows(truth_table, combined)


def test_screen_keeps_the_event_name_test() -> None:
    found = screen(
        "eventsource = 'iam.amazonaws.com' AND (eventname IN ('PutUserPolicy', 'PutRolePolicy'))"
    )
    assert found is not None
    assert found.values == (("eventname", ("PutUserPolicy", "PutRolePolicy")),)
    assert found.tests == ()


def test_screen_prefers_event_names_to_fewer_tests() -> None:
    found = screen("(eventname = 'A' OR eventname = 'B') AND lower(useridentity.type) = 'root'")
    assert found is not None
    assert found.values == (("eventname", ("A", "B")),)
    assert found.tests == ()


def test_screen_of_an_or_needs_both_sides() -> None:
    assert screen("eventname = 'A' OR SIEMGEN_JSON_SCALAR(x, '$.a') = 'b'") is None
    found = screen("eventname = 'A' OR lower(errorcode) LIKE 'accessdenied%'")
    assert found is not None
    assert found.values == (("eventname", ("A",)),)
    assert found.tests == ("LOWER(errorcode) LIKE 'accessdenied%'",)


def test_screens_merge_into_one_list_per_column() -> None:
    first = screen("eventsource = 's3.amazonaws.com' AND eventname = 'PutBucketPolicy'")
    second = screen("eventname IN ('PutBucketPolicy', 'PutBucketAcl')")
    combined = screen_condition([(first, "a = 1"), (second, "a = 2")])
    assert combined == "(eventname IN ('PutBucketPolicy', 'PutBucketAcl'))"


def test_rule_without_screen_is_screened_by_its_condition() -> None:
    first = screen("eventname = 'PutBucketPolicy'")
    combined = screen_condition([(first, "a = 1"), (None, "b = 2")])
    assert combined == "(eventname IN ('PutBucketPolicy')) OR (b = 2)"
    assert screen_condition([(None, "b = 2")]) is None
    assert screen_condition([]) is None


def test_project_rules_have_screens() -> None:
    detections = load_rules([RULES]).detections
    assert [d.path for d in detections if d.screen is None] == []
