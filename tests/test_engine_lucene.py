"""Lucene check: luqum parse, field names against the Elastic data stream, regex notes."""

from __future__ import annotations

import pytest

from siemgen import fields
from siemgen.convert import Converter
from siemgen.engines import lucene
from siemgen.pipelines.elastic import elastic_fields
from siemgen.rules import load_collection

from paths import CORPUS

PREFIXES = tuple(f"{column.elastic_flattened}." for column in fields.JsonColumn)


def problems(query: str) -> list[str]:
    return lucene.check(query, elastic_fields(), PREFIXES)


def test_generated_shape_passes() -> None:
    query = (
        r"event.dataset:aws.cloudtrail AND (event.action:(Put* OR Get?ser) AND "
        r"user_agent.original:*aws\-cli* AND NOT _exists_:aws.cloudtrail.error_message AND "
        r'aws.cloudtrail.flattened.request_parameters.policyArn:*Admin* AND cloud.region:"")'
    )
    assert problems(query) == []


def test_field_names_in_order() -> None:
    tree = lucene.parse("a:1 AND (b:2 OR NOT _exists_:c) AND a:3")
    assert lucene.field_names(tree) == ["a", "b", "c"]


def test_unknown_field_reported() -> None:
    assert problems("eventName:CreateUser") == [
        "field 'eventName' is not a field of the Elastic CloudTrail data stream"
    ]


def test_exists_value_is_checked() -> None:
    assert problems("NOT _exists_:errorCode") == [
        "field 'errorCode' is not a field of the Elastic CloudTrail data stream"
    ]


def test_flattened_prefix_needs_object() -> None:
    assert problems("aws.cloudtrail.flattened.other.key:x") == [
        "field 'aws.cloudtrail.flattened.other.key' is not a field of the Elastic CloudTrail "
        "data stream"
    ]


def test_unfielded_term_reported() -> None:
    assert problems("event.action:CreateUser AND backdoor") == [
        "term 'backdoor' names no field, so Elasticsearch searches the default fields"
    ]


def test_parse_error_reported() -> None:
    found = problems("event.action:(CreateUser")
    assert len(found) == 1
    assert found[0].startswith("Lucene query does not parse:")


def test_anchored_regex_warning() -> None:
    assert lucene.warnings("event.action:/^Get.*/") == [
        "event.action: the regular expression /^Get.*/ contains ^ or $, which Lucene reads "
        "as plain characters because its patterns always match the whole value"
    ]


def test_plain_regex_has_no_warning() -> None:
    assert lucene.warnings(r"event.action:/Get.*/ AND x:/a\$/") == []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="community rule corpus not available")
def test_corpus_lucene_passes() -> None:
    collection = load_collection([CORPUS])
    converter = Converter()
    failures = {}
    for rule in collection.rules:
        found = problems(converter.convert(rule, "elastic", "lucene"))
        if found:
            failures[rule.stem] = found
    assert len(collection.rules) == 40
    assert failures == {}
