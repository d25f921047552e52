"""ES|QL check: the from ... | where ... shape, its index pattern and its field names."""

from __future__ import annotations

import pytest

from siemgen import fields
from siemgen.convert import Converter
from siemgen.engines import esql
from siemgen.pipelines.elastic import INDEX_PATTERN, elastic_fields
from siemgen.rules import load_collection

from paths import CORPUS

PREFIXES = tuple(f"{column.elastic_flattened}." for column in fields.JsonColumn)
HEAD = "from logs-aws.cloudtrail-* metadata _id, _index, _version | where "


def problems(query: str) -> list[str]:
    return esql.check(query, elastic_fields(), PREFIXES, index=INDEX_PATTERN)


def test_generated_shape_parses() -> None:
    query = esql.parse(
        HEAD + 'event.dataset=="aws.cloudtrail" and (starts_with(event.action, "Put") or '
        'event.action in ("A", "B")) and not user_agent.original like "*cli*" and '
        'aws.cloudtrail.error_message is null and `cloud.region` rlike "us-.*" and '
        "aws.cloudtrail.recipient_account_id==123 and x not in (1, 2)"
    )
    assert query.sources == ["logs-aws.cloudtrail-*"]
    assert query.metadata == ["_id", "_index", "_version"]
    assert query.fields == [
        "event.dataset",
        "event.action",
        "user_agent.original",
        "aws.cloudtrail.error_message",
        "cloud.region",
        "aws.cloudtrail.recipient_account_id",
        "x",
    ]
    assert query.functions == ["starts_with"]


def test_valid_query_has_no_problems() -> None:
    assert problems(HEAD + 'event.action=="CreateUser" and cloud.region like "us-*"') == []


def test_unknown_field_reported() -> None:
    assert problems(HEAD + 'eventName=="CreateUser"') == [
        "field 'eventName' is not a field of the Elastic CloudTrail data stream"
    ]


def test_other_index_reported() -> None:
    assert problems('from logs-* | where event.action=="x"') == [
        "the query reads 'logs-*', expected 'logs-aws.cloudtrail-*'"
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("where a==1", "the query must start with a FROM command"),
        (
            "from logs-aws.cloudtrail-*",
            "the query has 1 commands; expected FROM followed by one WHERE",
        ),
        ('from logs-aws.cloudtrail-* | where a=="x" | limit 1', "the query has 3 commands"),
        (
            "from logs-aws.cloudtrail-* | keep a",
            "expected a WHERE command after FROM, found 'keep'",
        ),
        ("from logs-aws.cloudtrail-* | where (a==1", "the WHERE condition ends too early"),
        ('from logs-aws.cloudtrail-* | where a=="x', "unterminated string literal"),
        ("from logs-aws.cloudtrail-* | where a is 1", "expected NULL after IS"),
        ("from logs-aws.cloudtrail-* | where a==1 b", "unexpected 'b'"),
        ("from , | where a==1", "unexpected ','"),
    ],
)
def test_malformed_query(query: str, message: str) -> None:
    found = problems(query)
    assert len(found) == 1
    assert found[0].startswith("ES|QL query does not parse: ")
    assert message in found[0]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="community rule corpus not available")
def test_corpus_esql_passes() -> None:
    collection = load_collection([CORPUS])
    converter = Converter()
    failures = {}
    for rule in collection.rules:
        found = problems(converter.convert(rule, "elastic", "esql"))
        if found:
            failures[rule.stem] = found
    assert len(collection.rules) == 40
    assert failures == {}
