"""The hunt's JSON lines writer gives exactly ``json.dumps`` of each match, for any values."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from siemgen.hunt import Detection, Hit, HuntResult
from siemgen.hunt.output import hit_record, write_jsonl, write_table

from strategies import fuzz_settings, hostile_text

FIELD_COUNT = len(Hit._fields) - 2  # every field but ``file`` and ``rules``
values = st.one_of(st.none(), hostile_text(), st.text())


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


@fuzz_settings(default_examples=60)
@given(
    fields=st.lists(values, min_size=FIELD_COUNT, max_size=FIELD_COUNT),
    file=st.text(min_size=1),
    titles=st.lists(hostile_text(), min_size=2, max_size=2),
    rules=st.sampled_from([(0,), (1,), (0, 1)]),
)
def test_jsonl_line_is_hit_record(
    fields: list[str | None], file: str, titles: list[str], rules: tuple[int, ...]
) -> None:
    hit = Hit(file, *fields, rules=rules)
    detections = [detection(index, title) for index, title in enumerate(titles)]
    stream = io.StringIO()
    write_jsonl(HuntResult(detections=detections, hits=[hit]), stream)
    expected = [
        json.dumps(hit_record(detections[index], hit), ensure_ascii=False) for index in rules
    ]
    assert stream.getvalue().split("\n") == [*expected, ""]


def test_table_escapes_terminal_control_characters() -> None:
    region = "us-east-1\x1b]0;owned\x07"
    arn = "arn:aws:iam::111122223333:user/a\u202eb"
    fields: list[str | None] = [None] * FIELD_COUNT
    fields[Hit._fields.index("region") - 1] = region
    fields[Hit._fields.index("identity_arn") - 1] = arn
    hit = Hit("log.json", *fields, rules=(0,))
    stream = io.StringIO()
    write_table(HuntResult(detections=[detection(0, "Rule\x1b[2J")], hits=[hit]), stream)
    table = stream.getvalue()
    assert "\x1b" not in table
    assert "\u202e" not in table
    assert "us-east-1\\x1b]0;owned\\x07" in table
    assert "a\\u202eb" in table
    assert "Rule\\x1b[2J" in table
