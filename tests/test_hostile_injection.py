"""Classic injection values stay inside their literals, shown by parsing each query."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import eql
import pytest
import sqlglot
from luqum import tree as lucene_tree
from luqum.parser import parser as lucene_parser
from sigma.rule import SigmaRule
from sqlglot import exp

from siemgen.convert import Converter
from siemgen.engines.duckdb import create_cloudtrail_table, load_records, matching_event_ids
from siemgen.errors import UnsupportedFeatureError
from siemgen.lexers import TokenKind, esql, spl, string_values
from siemgen.rules import RuleFile

SPL_BREAKOUT = '" | delete'
SQL_BREAKOUT = "' OR '1'='1"
PARAMETERS = "aws.cloudtrail.flattened.request_parameters"


def rule_file(value: str) -> RuleFile:
    data: dict[str, Any] = {
        "title": "Injection",
        "id": "5f4d5e1e-8c6b-4b8e-9c8e-1a2b3c4d5e6f",
        "status": "test",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": {
            "selection": {"eventSource": "iam.amazonaws.com", "eventName": value},
            "condition": "selection",
        },
        "level": "low",
    }
    return RuleFile(Path("injection.yml"), "injection", "", data, SigmaRule.from_dict(data))


def test_spl_pipe_stays_in_string() -> None:
    query = Converter().convert(rule_file(SPL_BREAKOUT), "splunk", "spl")
    tokens = spl.tokenize(query)
    assert [token for token in tokens if token.kind is TokenKind.PIPE] == []
    assert string_values(tokens) == ["aws:cloudtrail", "iam.amazonaws.com", SPL_BREAKOUT]
    assert [t.text for t in tokens if t.kind is TokenKind.WORD] == [
        "sourcetype",
        "eventSource",
        "eventName",
    ]


def test_athena_quote_stays_in_literal() -> None:
    query = Converter().convert(rule_file(SQL_BREAKOUT), "athena", "sql")
    tree = sqlglot.parse_one(query, read="athena")
    where = tree.find(exp.Where)
    assert where is not None
    assert list(where.find_all(exp.Or)) == []
    comparisons = {
        node.this.sql(): node.expression.this
        for node in where.find_all(exp.EQ)
        if isinstance(node.expression, exp.Literal)
    }
    assert comparisons == {"eventsource": "iam.amazonaws.com", "eventname": SQL_BREAKOUT}


def test_athena_quote_matches_only_itself() -> None:
    query = Converter().convert(rule_file(SQL_BREAKOUT), "athena", "sql")
    connection = duckdb.connect()
    create_cloudtrail_table(connection)
    records = [
        {"eventID": "exact", "eventSource": "iam.amazonaws.com", "eventName": SQL_BREAKOUT},
        {"eventID": "other", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser"},
    ]
    load_records(connection, records)
    assert matching_event_ids(connection, query) == {"exact"}


def test_elastic_breakouts_stay_in_literals() -> None:
    converter = Converter()
    for value in (SPL_BREAKOUT, SQL_BREAKOUT):
        lucene = converter.convert(rule_file(value), "elastic", "lucene")
        fields = [
            node.name
            for node in lucene_parser.parse(lucene).children
            if isinstance(node, lucene_tree.SearchField)
        ]
        assert "event.dataset" in fields

        esql_query = converter.convert(rule_file(value), "elastic", "esql")
        tokens = esql.tokenize(esql_query)
        assert len([t for t in tokens if t.kind is TokenKind.PIPE]) == 1
        assert string_values(tokens)[-1] == value

        with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
            parsed = eql.parse_query(converter.convert(rule_file(value), "elastic", "eql"))
        assert parsed.pipes == []
        terms = parsed.first.query.terms
        assert [term.arguments[1].value for term in terms] == [
            "aws.cloudtrail",
            "iam.amazonaws.com",
            value,
        ]


def test_eql_list_with_literal_asterisk_split() -> None:
    data: dict[str, Any] = rule_file("x").data
    data["detection"]["selection"]["eventName"] = ["Get\\*", "List*"]
    listed = RuleFile(Path("list.yml"), "list", "", data, SigmaRule.from_dict(data))
    query = Converter().convert(listed, "elastic", "eql")
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        parsed = eql.parse_query(query)
    assert "like~" not in query
    assert 'event.action regex~ "Get\\\\*"' in query
    assert 'event.action:"List*"' in query
    assert parsed.pipes == []


def convert_selection(selection: dict[str, Any], format_name: str) -> str:
    data: dict[str, Any] = rule_file("x").data
    data["detection"]["selection"] = selection
    rule = RuleFile(Path("case.yml"), "case", "", data, SigmaRule.from_dict(data))
    targets = {"sql": "athena", "spl": "splunk"}
    target = targets.get(format_name, "elastic")
    return Converter().convert(rule, target, format_name)


@pytest.mark.parametrize(
    ("format_name", "selection", "expected"),
    [
        ("esql", {"eventName": "a\nb"}, 'event.action=="a\\nb"'),
        ("esql", {"eventName|contains": "a\\b"}, 'event.action like "*a\\\\\\\\b*"'),
        ("esql", {"eventName|contains": "a\\*b"}, 'event.action like "*a\\\\*b*"'),
        ("esql", {"requestParameters.é": "v"}, f"`{PARAMETERS}.é`"),
        ("esql", {"requestParameters.a`b": "v"}, f"`{PARAMETERS}.a``b`"),
        ("esql", {"eventName|re": 'a"b\n'}, 'event.action rlike ".*a\\\\\\"b\\n.*"'),
        ("eql", {"eventName": "a\nb"}, 'event.action:"a\\nb"'),
        ("eql", {"eventName|re": 'a"b'}, 'event.action regex ".*a\\\\\\"b.*"'),
        ("eql", {"eventName|contains": "a?b"}, 'event.action:"*a?b*"'),
        ("eql", {"eventName|contains": "a\\?b"}, 'event.action regex~ ".*a\\\\?b.*"'),
        ("eql", {"requestParameters.x-amz-acl": "v"}, f"`{PARAMETERS}.x-amz-acl`:"),
        ("eql", {"requestParameters.and": "v"}, f"`{PARAMETERS}.and`:"),
        ("lucene", {"eventName": "OR"}, 'event.action:"OR"'),
        ("lucene", {"eventName": "<5"}, 'event.action:"<5"'),
        ("lucene", {"eventName": "a\nb"}, 'event.action:"a\nb"'),
        ("lucene", {"eventName|contains": "a\nb"}, "event.action:/.*a\nb.*/"),
        ("lucene", {"eventName|contains": "a\tb'c"}, "event.action:*a\\\tb\\'c*"),
        ("lucene", {"eventName|re": 'a"b#c/d'}, 'event.action:/.*a\\"b\\#c\\/d.*/'),
        ("lucene", {"requestParameters.a:b": "v"}, f"{PARAMETERS}.a\\:b:v"),
        ("spl", {"requestParameters.x-amz-acl": "v"}, '"requestParameters.x-amz-acl"="v"'),
    ],
)  # fmt: skip
def test_fixed_escaping_cases(format_name: str, selection: dict[str, Any], expected: str) -> None:
    assert expected in convert_selection(selection, format_name)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"eventName": "a\\*b"}, "contains a literal '*'"),
        ({"eventName|contains": "a\nb"}, "contains the control character '\\n'"),
        ({"eventName|re": "a\tb"}, "regular expression 'a\\tb' contains the control character"),
        ({'requestParameters.a"b': "v"}, "field 'requestParameters.a\"b' contains characters"),
    ],
)
def test_splunk_rejects_inexpressible(selection: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedFeatureError, match=re.escape(message)):
        convert_selection(selection, "spl")
