"""Classic injection values stay inside their literals, shown by parsing each query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import eql
import sqlglot
from luqum import tree as lucene_tree
from luqum.parser import parser as lucene_parser
from sigma.rule import SigmaRule
from sqlglot import exp

from siemgen.convert import Converter
from siemgen.engines.duckdb import create_cloudtrail_table, load_records, matching_event_ids
from siemgen.lexers import TokenKind, esql, spl, string_values
from siemgen.rules import RuleFile

SPL_BREAKOUT = '" | delete'
SQL_BREAKOUT = "' OR '1'='1"


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
