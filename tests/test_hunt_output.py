"""The hunt's writers report each record's values exactly, for any values a log can hold.

DuckDB renders the reported fields of each match as JSON during the scan, so these tests run
real hunts. The values go into a JSON lines log file and a rule that matches every record
hunts it. The output must equal what Python makes of the same values.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from siemgen import terminal
from siemgen.hunt import Detection, Hunt, HuntResult
from siemgen.hunt.output import jsonl_bytes, spreadsheet_text, write_csv, write_table

from strategies import fuzz_settings, hostile_text

TOP_LEVEL = (
    "eventTime",
    "eventID",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "errorCode",
    "recipientAccountId",
)
IDENTITY = ("type", "arn", "principalId", "userName", "invokedBy")

values = st.one_of(st.none(), hostile_text(), st.text())
identities = st.fixed_dictionaries({name: values for name in IDENTITY})
# A record without any of the first four fields is not a CloudTrail record to the hunt.
records = (
    st.fixed_dictionaries({name: values for name in TOP_LEVEL})
    .filter(lambda top: any(top[name] is not None for name in TOP_LEVEL[:4]))
    .flatmap(lambda top: identities.map(lambda identity: {**top, "userIdentity": identity}))
)


def detection(index: int, title: str) -> Detection:
    return Detection(
        rule_id=f"rule-{index}",
        title=title,
        level="high",
        path=f"rule{index}.yml",
        condition="TRUE",
        fast_condition="TRUE",
        paths=frozenset(),
    )


def hunt_records(records: list[dict[str, Any]], detections: list[Detection]) -> HuntResult:
    """Write ``records`` to a JSON lines file and hunt it with rules that match everything."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "records.jsonl"
        log.write_text("".join(json.dumps(record) + "\n" for record in records), "utf-8")
        result = Hunt(detections).run([log])
    assert result.skipped == []
    return result


def identity(record: dict[str, Any]) -> str | None:
    """The caller as the output names it: the first non-empty of these members, else type."""
    caller = record["userIdentity"]
    named = caller["arn"] or caller["invokedBy"] or caller["userName"] or caller["principalId"]
    return named or caller["type"]


def expected_object(record: dict[str, Any], rule: Detection, file: str) -> dict[str, Any]:
    top = {name: record[name] for name in TOP_LEVEL}
    return {
        "rule_id": rule.rule_id,
        "rule": rule.title,
        "level": rule.level,
        **top,
        "identity": identity(record),
        "userIdentity": {name: record["userIdentity"][name] for name in IDENTITY},
        "file": file,
    }


# A \u escape, not an escaped backslash before a u. DuckDB writes its hex digits in upper case.
_UNICODE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9A-Fa-f]{4})")


def lower_hex(line: str) -> str:
    return _UNICODE_ESCAPE.sub(lambda match: f"{match[1]}\\u{match[2].lower()}", line)


@fuzz_settings(default_examples=40)
@given(
    record=records,
    titles=st.lists(hostile_text(), min_size=2, max_size=2),
    rules=st.sampled_from([(0,), (1,), (0, 1)]),
)
def test_jsonl_matches_compact_json_dumps(
    record: dict[str, Any], titles: list[str], rules: tuple[int, ...]
) -> None:
    matching = [detection(index, titles[index]) for index in rules]
    result = hunt_records([record], matching)
    lines = jsonl_bytes(result).decode("utf-8").split("\n")
    assert lines[-1] == ""
    file = result.files[0].name
    expected = [expected_object(record, rule, file) for rule in matching]
    assert [json.loads(line) for line in lines[:-1]] == expected
    # The same text as compact json.dumps, but for the case of the hex digits of \u escapes.
    assert [lower_hex(line) for line in lines[:-1]] == [
        json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in expected
    ]


def csv_values(result: HuntResult) -> dict[str, str]:
    """Return the one CSV row that ``result`` writes, by column name."""
    stream = io.StringIO()
    write_csv(result, stream)
    header, row = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    return dict(zip(header, row, strict=True))


@fuzz_settings(default_examples=20)
@given(record=records)
def test_csv_row_holds_record(record: dict[str, Any]) -> None:
    rule = detection(0, "Rule")
    result = hunt_records([record], [rule])
    values = csv_values(result)
    expected = {
        "rule_id": rule.rule_id,
        "event_time": record["eventTime"],
        "event_name": record["eventName"],
        "source_ip": record["sourceIPAddress"],
        "account": record["recipientAccountId"],
        "identity": identity(record),
        "identity_arn": record["userIdentity"]["arn"],
        "invoked_by": record["userIdentity"]["invokedBy"],
        "file": result.files[0].name,
    }
    assert {name: values[name] for name in expected} == {
        name: spreadsheet_text(value or "") for name, value in expected.items()
    }


def test_csv_cells_never_start_a_formula() -> None:
    record = plain_record(
        '=HYPERLINK("http://example.invalid")',
        eventName="+SUM(1)",
        awsRegion="-1",
        sourceIPAddress="@A1",
        errorCode="\tTab",
    )
    values = csv_values(hunt_records([record], [detection(0, "=cmd|' /C calc'!A0")]))
    assert values["rule"] == "'=cmd|' /C calc'!A0"
    assert values["event_id"] == '\'=HYPERLINK("http://example.invalid")'
    assert values["event_name"] == "'+SUM(1)"
    assert values["region"] == "'-1"
    assert values["source_ip"] == "'@A1"
    assert values["error_code"] == "'\tTab"
    assert values["event_source"] == ""


def test_table_escapes_terminal_control_characters() -> None:
    region = "us-east-1\x1b]0;owned\x07"
    arn = "arn:aws:iam::111122223333:user/a\u202eb"
    record: dict[str, Any] = {name: None for name in TOP_LEVEL}
    record["eventID"] = "0b4a5e1c-0000-4000-8000-000000000001"
    record["awsRegion"] = region
    record["userIdentity"] = {name: None for name in IDENTITY} | {"arn": arn}
    result = hunt_records([record], [detection(0, "Rule\x1b[2J")])
    stream = io.StringIO()
    write_table(result, stream)
    table = stream.getvalue()
    assert "\x1b" not in table
    assert "\u202e" not in table
    assert "us-east-1\\x1b]0;owned\\x07" in table
    assert "a\\u202eb" in table
    assert "Rule\\x1b[2J" in table


def test_table_doubles_backslashes() -> None:
    record: dict[str, Any] = {name: None for name in TOP_LEVEL}
    record["eventID"] = "0b4a5e1c-0000-4000-8000-000000000002"
    record["awsRegion"] = "literal\\x00"
    record["sourceIPAddress"] = "real\x00"
    record["userIdentity"] = {name: None for name in IDENTITY}
    result = hunt_records([record], [detection(0, "Rule")])
    stream = io.StringIO()
    write_table(result, stream)
    row = stream.getvalue().splitlines()[1]
    assert "literal\\\\x00" in row
    assert "real\\x00" in row


def table_of(records: list[dict[str, Any]]) -> list[str]:
    result = hunt_records(records, [detection(0, "Rule")])
    stream = io.StringIO()
    write_table(result, stream)
    return stream.getvalue().splitlines()


def plain_record(event_id: str, **values: str) -> dict[str, Any]:
    record: dict[str, Any] = {name: None for name in TOP_LEVEL}
    record.update(eventID=event_id, eventTime="2026-11-02T10:00:00Z", **values)
    record["userIdentity"] = {name: None for name in IDENTITY}
    return record


def test_table_cuts_huge_values() -> None:
    lines = table_of(
        [
            plain_record("huge", sourceIPAddress="1" * 200_000, awsRegion="us-east-1"),
            plain_record("small", sourceIPAddress="192.0.2.1", awsRegion="us-east-1"),
        ]
    )
    assert max(len(line) for line in lines) < 400
    assert any("1" * 99 + "…" in line for line in lines)
    assert all(line.endswith("us-east-1") for line in lines[1:])


def test_table_aligns_wide_characters() -> None:
    wide = plain_record("wide", awsRegion="r1")
    wide["userIdentity"]["userName"] = "管理者"
    narrow = plain_record("narrow", awsRegion="r1")
    narrow["userIdentity"]["userName"] = "admin"
    lines = table_of([wide, narrow])
    ends = {terminal.width(line) for line in lines[1:]}
    assert len(ends) == 1


def test_jsonl_over_two_mask_words() -> None:
    # 70 rules take two BIGINT mask columns; every rule matches both records.
    matching = [detection(index, f"Rule {index}") for index in range(70)]
    first = {name: f"{name}-1" for name in TOP_LEVEL}
    second = {**first, "eventTime": "2026-01-01T00:00:00Z", "eventID": "second"}
    identity_values = {name: None for name in IDENTITY}
    records = [{**item, "userIdentity": identity_values} for item in (first, second)]
    result = hunt_records(records, matching)
    lines = [json.loads(line) for line in jsonl_bytes(result).splitlines()]
    assert [line["rule_id"] for line in lines] == [rule.rule_id for rule in matching] * 2
    # A record whose eventTime names no moment sorts first.
    assert [line["eventID"] for line in lines] == ["eventID-1"] * 70 + ["second"] * 70
    assert [hit.rules for hit in result.hits] == [tuple(range(70))] * 2
    assert [count for _, count in result.rule_counts()] == [2] * 70
