"""SPL check: balanced quotes and parentheses, the sourcetype clause and known fields."""

from __future__ import annotations

import pytest

from siemgen import fields
from siemgen.convert import Converter
from siemgen.engines import spl
from siemgen.rules import load_collection

from paths import CORPUS

KNOWN = {known.splunk for known in fields.FIELDS}
PREFIXES = tuple(f"{column.value}." for column in fields.JsonColumn)
HEAD = 'sourcetype="aws:cloudtrail" '


def problems(query: str) -> list[str]:
    return spl.check(query, KNOWN, PREFIXES)


def test_generated_shape_passes() -> None:
    query = (
        HEAD + '\n| rex field=eventName "(?<eventNameMatch>^Get.*)"\n'
        '| eval eventNameCondition=if(isnotnull(eventNameMatch), "true", "false")\n'
        '| search (eventSource="iam.amazonaws.com" NOT errorMessage=* '
        '"resources{}.ARN"="*bucket*" requestParameters.policyArn="*Admin*" '
        'eventNameCondition="true") OR eventName IN ("A*", "B*c")'
    )
    assert problems(query) == []


def test_fields_in_order() -> None:
    search = spl.inspect(HEAD + 'eventName="x" userAgent!="y"', KNOWN, PREFIXES)
    assert search.fields == ["sourcetype", "eventName", "userAgent"]


def test_index_clause_allowed() -> None:
    assert problems('index=aws sourcetype="aws:cloudtrail" eventName=CreateUser') == []


def test_missing_sourcetype_reported() -> None:
    assert problems('eventName="CreateUser"') == [
        'the first command does not select sourcetype="aws:cloudtrail"'
    ]


def test_unknown_field_reported() -> None:
    assert problems(HEAD + 'EventName="CreateUser"') == [
        "field 'EventName' at offset 28 is not a CloudTrail field of the Splunk Add-on for AWS"
    ]


def test_lowercase_operator_reported() -> None:
    assert problems(HEAD + "eventName=A or eventName=B") == [
        "'or' at offset 40 is a search term, not an operator; Splunk reads only 'OR' as the "
        "operator"
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (HEAD + "(eventName=A", "unclosed '(' at offset 28"),
        (HEAD + "eventName=A)", "unmatched ')' at offset 39"),
        (HEAD + 'eventName="A', "unterminated string literal"),
        (HEAD + "eventName=A | stats count", "command 'stats' at offset 42 is not one siemgen"),
        (HEAD + "eventName=A || search x=1", "empty command between two |"),
        (HEAD + "| eval x", "eval must assign a field"),
        (HEAD + "| where isnull(notAField)", "field 'notAField'"),
    ],
)
def test_structure_problem(query: str, expected: str) -> None:
    assert any(expected in problem for problem in problems(query)), problems(query)


def test_quoted_parenthesis_is_text() -> None:
    assert problems(HEAD + 'userAgent="aws-cli (x"') == []


def test_rex_group_becomes_field() -> None:
    query = HEAD + '| rex field=userAgent "(?<tool>[a-z]+)/" | search tool="aws-cli"'
    assert problems(query) == []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="community rule corpus not available")
def test_corpus_spl_passes() -> None:
    collection = load_collection([CORPUS])
    converter = Converter()
    failures = {}
    for rule in collection.rules:
        found = problems(converter.convert(rule, "splunk"))
        if found:
            failures[rule.stem] = found
    assert len(collection.rules) == 40
    assert failures == {}
