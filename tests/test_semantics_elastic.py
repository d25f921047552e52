"""Elastic queries mean what the Sigma rule means: regex, negation, types, cased and errors.

EQL runs on the project's Elasticsearch-faithful ``eql`` engine and the Athena SQL on DuckDB,
and both must agree with a Python oracle. Lucene and ES|QL cannot run here, so their regular
expressions are read back with luqum and the ES|QL lexer and run with the engine's Lucene
RegExp emulation, which matches whole values as Elasticsearch does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from luqum import tree as lucene_tree

from siemgen.convert import Converter
from siemgen.engines import duckdb as duckdb_engine
from siemgen.engines import esql as esql_engine
from siemgen.engines import lucene as lucene_engine
from siemgen.engines.eql import compile_query, lucene_regex, matching_event_ids
from siemgen.errors import ConversionError
from siemgen.fields import JsonColumn
from siemgen.lexers import esql as esql_lexer
from siemgen.lexers.tokens import Token, TokenKind
from siemgen.pipelines.elastic import elastic_fields
from siemgen.rules import RuleFile, load_rule
from siemgen.ruletest import run_paths

from paths import CORPUS

WriteRule = Callable[..., Path]

RECORDS: list[dict[str, Any]] = [
    {
        "eventID": "put",
        "eventSource": "iam.amazonaws.com",
        "eventName": "PutUserPolicy",
        "readOnly": False,
        "recipientAccountId": "123456789012",
        "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestParameters": {"userName": "alice", "publiclyAccessible": True},
    },
    {
        "eventID": "lower",
        "eventSource": "iam.amazonaws.com",
        "eventName": "putuserpolicy",
        "readOnly": True,
        "recipientAccountId": "999999999999",
        "errorCode": "AccessDenied",
        "requestParameters": {"publiclyAccessible": False},
    },
    {
        "eventID": "get",
        "eventSource": "iam.amazonaws.com",
        "eventName": "GetUser",
        "readOnly": True,
        "userAgent": "Terraform/1.7.4",
    },
    {
        "eventID": "bucket",
        "eventSource": "s3.amazonaws.com",
        "eventName": "DeleteBucketPolicy",
        "readOnly": False,
        "errorCode": "NoSuchBucketPolicy",
    },
]
PARAMETERS = JsonColumn.REQUEST_PARAMETERS.elastic_flattened
FLATTENED_PREFIXES = tuple(f"{column.elastic_flattened}." for column in JsonColumn)


@pytest.fixture(scope="module")
def athena() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    duckdb_engine.create_cloudtrail_table(con)
    duckdb_engine.load_records(con, RECORDS)
    return con


def rule_with(write_rule: WriteRule, detection: str) -> RuleFile:
    return load_rule(write_rule(detection=detection))


def convert(rule: RuleFile, format_name: str) -> str:
    target = "athena" if format_name == "sql" else "elastic"
    return Converter().convert(rule, target, format_name)


def eql_ids(rule: RuleFile) -> set[str]:
    return matching_event_ids(convert(rule, "eql"), RECORDS)


def athena_ids(rule: RuleFile, con: duckdb.DuckDBPyConnection) -> set[str]:
    return duckdb_engine.matching_event_ids(con, convert(rule, "sql"))


def esql_tokens(query: str) -> list[Token]:
    return esql_lexer.tokenize(query)


def esql_regex(query: str) -> str:
    """Return the decoded pattern of the one ``rlike`` in an ES|QL query."""
    tokens = esql_tokens(query)
    patterns = [
        tokens[index + 1].value
        for index, token in enumerate(tokens)
        if token.kind is TokenKind.WORD and token.text.lower() == "rlike"
    ]
    assert len(patterns) == 1, query
    return patterns[0]


def lucene_query_regex(query: str) -> str:
    """Return the pattern of the one ``/regex/`` term in a Lucene query."""
    patterns = [
        str(node.value)[1:-1]
        for node in _lucene_nodes(lucene_engine.parse(query))
        if isinstance(node, lucene_tree.Regex)
    ]
    assert len(patterns) == 1, query
    return patterns[0]


def _lucene_nodes(node: Any) -> list[Any]:
    found = [node]
    for child in node.children:
        found.extend(_lucene_nodes(child))
    return found


# Unanchored, anchored and case-insensitive regular expressions.

REGEX_CASES = [
    ("eventName|re", "Policy"),
    ("eventName|re", "^Put"),
    ("eventName|re", "Policy$"),
    ("eventName|re", "^PutUserPolicy$"),
    ("eventName|re", "^Get|Bucket"),
    ("eventName|re", "^Delete|User$"),
    ("eventName|re", "(?i)^put"),
    ("eventName|re|i", "userpol"),
    ("eventName|re|i", "^[a-f]ELETE"),
    ("eventName|re", r"P\w+y$"),
    ("eventName|re", r"[\w]+Bucket"),
    ("eventName|re", "U.*?Pol"),
    ("eventName|re", "(?:Get|Put)User"),
    ("eventName|re", r"\APut"),
]


def oracle(key: str, regex: str) -> set[str]:
    """Return the records whose eventName the regex finds, as Python's re.search does."""
    flags = re.IGNORECASE if key.endswith("|i") else 0
    return {record["eventID"] for record in RECORDS if re.search(regex, record["eventName"], flags)}


def regex_detection(key: str, regex: str) -> str:
    return f"sel:\n    {key}: {json.dumps(regex)}\ncondition: sel"


@pytest.mark.parametrize(("key", "regex"), REGEX_CASES)
def test_eql_regex_matches_anywhere(
    key: str, regex: str, write_rule: WriteRule, athena: duckdb.DuckDBPyConnection
) -> None:
    rule = rule_with(write_rule, regex_detection(key, regex))
    expected = oracle(key, regex)
    assert eql_ids(rule) == expected
    assert athena_ids(rule, athena) == expected


@pytest.mark.parametrize(("key", "regex"), REGEX_CASES)
def test_lucene_regex_matches_anywhere(key: str, regex: str, write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, regex_detection(key, regex)), "lucene")
    pattern = lucene_regex(lucene_query_regex(query), case_insensitive=False)
    matched = {record["eventID"] for record in RECORDS if pattern.fullmatch(record["eventName"])}
    assert matched == oracle(key, regex)


@pytest.mark.parametrize(("key", "regex"), REGEX_CASES)
def test_esql_regex_matches_anywhere(key: str, regex: str, write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, regex_detection(key, regex)), "esql")
    pattern = lucene_regex(esql_regex(query), case_insensitive=False)
    matched = {record["eventID"] for record in RECORDS if pattern.fullmatch(record["eventName"])}
    assert matched == oracle(key, regex)


def test_eql_regex_keeps_case(write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, regex_detection("eventName|re", "Policy")), "eql")
    assert 'event.action regex ".*Policy.*"' in query


def test_eql_regex_i_uses_regex_tilde(write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, regex_detection("eventName|re|i", "^put")), "eql")
    assert 'event.action regex~ "put.*"' in query


def test_lucene_regex_i_folds_case(write_rule: WriteRule) -> None:
    query = convert(rule_with(write_rule, regex_detection("eventName|re|i", "^put")), "lucene")
    assert "event.action:/[pP][uU][tT].*/" in query


def test_literal_anchor_characters_stay_literal(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, regex_detection("userAgent|re", r"\$\^x"))
    assert r'user_agent.original rlike ".*\\$\\^x.*"' in convert(rule, "esql")
    assert compile_query(convert(rule, "eql")).notes == []


UNSUPPORTED_REGEXES = [
    ("eventName|re", "Put(?=User)", "lookahead"),
    ("eventName|re", "(?<=Put)User", "lookbehind"),
    ("eventName|re", "(^Put|Get)", "anchor '^' inside a group"),
    ("eventName|re", "Put$User", "anchor '$' inside a group"),
    ("eventName|re|m", "^Put", "m modifier"),
    ("eventName|re", "(?i:put)", "re|i"),
    ("eventName|re", r"(P)\1", "backreference"),
    ("eventName|re", r"\bPut", "word boundary"),
    ("eventName|re", "Put++", "possessive"),
    ("eventName|re", r"[\W]", "negated class"),
    ("eventName|re", "^[[:alpha:]]+$", "POSIX class"),
]


# Python's re, with which pySigma checks patterns, warns that [[:alpha:]] may be a nested set.
@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
@pytest.mark.parametrize("format_name", ["lucene", "esql", "eql"])
@pytest.mark.parametrize(("key", "regex", "fragment"), UNSUPPORTED_REGEXES)
def test_untranslatable_regex_is_rejected(
    format_name: str, key: str, regex: str, fragment: str, write_rule: WriteRule
) -> None:
    rule = rule_with(write_rule, regex_detection(key, regex))
    with pytest.raises(ConversionError) as caught:
        convert(rule, format_name)
    assert fragment in str(caught.value)
    assert "internal error" not in caught.value.message
    assert "event.action" in caught.value.message


def test_siemgen_test_runs_unanchored_regex(tmp_path: Path, write_rule: WriteRule) -> None:
    rule_path = write_rule(
        name="policy_changed",
        detection="sel:\n    eventSource: iam.amazonaws.com\n    eventName|re: 'Policy$'\n"
        "filter:\n    errorCode|contains: Denied\ncondition: sel and not filter",
    )
    base = {"eventSource": "iam.amazonaws.com", "eventTime": "2026-01-05T10:00:00Z"}
    events = {
        "match": [
            ("PutUserPolicy", {}),
            ("DeleteRolePolicy", {"errorCode": "NoSuchEntity"}),
        ],
        "no-match": [
            ("PutUserPolicy", {"errorCode": "AccessDenied"}),
            ("ListPolicyVersions", {}),
        ],
    }
    groups = []
    for expect, calls in events.items():
        records = [
            {
                "reason": name,
                "record": {**base, "eventName": name, "eventID": f"{expect}-{i}", **extra},
            }
            for i, (name, extra) in enumerate(calls)
        ]
        groups.append({"name": expect, "expect": expect, "reason": expect, "events": records})
    tests_path = rule_path.with_name("policy_changed.tests.json")
    tests_path.write_text(json.dumps({"groups": groups}), encoding="utf-8")

    report = run_paths([rule_path.parent], targets=["elastic", "athena"])
    result = report.rule("policy_changed")
    assert result is not None
    elastic = result.target("elastic")
    assert elastic is not None
    assert elastic.counts() == (4, 4)
    assert report.ok


# ES|QL negation: a missing field counts as not matching.


def test_esql_negation_survives_missing_field(write_rule: WriteRule) -> None:
    rule = rule_with(
        write_rule,
        "sel:\n    eventSource: iam.amazonaws.com\nfilter:\n    errorCode|contains: Denied\n"
        "condition: sel and not filter",
    )
    query = convert(rule, "esql")
    assert 'not coalesce(aws.cloudtrail.error_code like "*Denied*", false)' in query


def every_not_is_coalesced(query: str) -> bool:
    tokens = esql_tokens(query)
    negations = [
        index
        for index, token in enumerate(tokens)
        if token.kind is TokenKind.WORD
        and token.text.lower() == "not"
        and tokens[index - 1].text.lower() != "is"
    ]
    return bool(negations) and all(
        tokens[index + 1].text == "coalesce" and tokens[index + 2].kind is TokenKind.LPAREN
        for index in negations
    )


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the SigmaHQ corpus is not available")
def test_esql_corpus_export_failure_negation() -> None:
    rule = load_rule(CORPUS / "aws_ec2_vm_export_failure.yml")
    query = convert(rule, "esql")
    assert every_not_is_coalesced(query)
    assert query.endswith(", false)"), query
    assert esql_engine.check(query, elastic_fields(), FLATTENED_PREFIXES) == []


def test_esql_exists_false_is_null_check(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    errorCode|exists: false\ncondition: sel")
    query = convert(rule, "esql")
    assert query.endswith("aws.cloudtrail.error_code is null")


# Numbers and booleans take the type of their Elastic field.


TYPED_CASES = [
    ("recipientAccountId: 123456789012", {"put"}),
    ("readOnly: false", {"put", "bucket"}),
    ("readOnly: 'TRUE'", {"lower", "get"}),
    ("requestParameters.publiclyAccessible: true", {"put"}),
]


@pytest.mark.parametrize(("item", "expected"), TYPED_CASES)
def test_typed_value_matches_on_engines(
    item: str, expected: set[str], write_rule: WriteRule, athena: duckdb.DuckDBPyConnection
) -> None:
    rule = rule_with(write_rule, f"sel:\n    {item}\ncondition: sel")
    assert eql_ids(rule) == expected
    assert athena_ids(rule, athena) == expected


def test_number_on_keyword_is_a_string(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    recipientAccountId: 123456789012\ncondition: sel")
    assert 'aws.cloudtrail.recipient_account_id:"123456789012"' in convert(rule, "eql")
    assert 'aws.cloudtrail.recipient_account_id=="123456789012"' in convert(rule, "esql")
    assert "aws.cloudtrail.recipient_account_id:123456789012" in convert(rule, "lucene")


def test_boolean_field_keeps_boolean(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    readOnly: 'false'\ncondition: sel")
    assert "aws.cloudtrail.read_only == false" in convert(rule, "eql")
    assert "aws.cloudtrail.read_only==false" in convert(rule, "esql")
    assert "aws.cloudtrail.read_only:false" in convert(rule, "lucene")


def test_flattened_boolean_is_a_string(write_rule: WriteRule) -> None:
    rule = rule_with(
        write_rule, "sel:\n    requestParameters.publiclyAccessible: true\ncondition: sel"
    )
    assert f'{PARAMETERS}.publiclyAccessible=="true"' in convert(rule, "esql")


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("readOnly: maybe", "as a boolean"),
        ("readOnly: 1", "as a boolean"),
        ("recipientAccountId|gt: 5", "the gt modifier"),
    ],
)
def test_mistyped_value_is_rejected(item: str, fragment: str, write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, f"sel:\n    {item}\ncondition: sel")
    for format_name in ("lucene", "esql", "eql"):
        with pytest.raises(ConversionError, match=fragment):
            convert(rule, format_name)


# |cased and |exists.


CASED_CASES = [
    ("eventName|cased: PutUserPolicy", {"put"}),
    ("eventName|contains|cased: User", {"put", "get"}),
    ("eventName|cased:\n        - putuserpolicy\n        - GetUser", {"lower", "get"}),
    ("eventName|startswith|cased: put", {"lower"}),
]


@pytest.mark.parametrize(("item", "expected"), CASED_CASES)
def test_eql_cased_keeps_case(
    item: str, expected: set[str], write_rule: WriteRule, athena: duckdb.DuckDBPyConnection
) -> None:
    rule = rule_with(write_rule, f"sel:\n    {item}\ncondition: sel")
    assert eql_ids(rule) == expected
    assert athena_ids(rule, athena) == expected


@pytest.mark.parametrize("format_name", ["lucene", "esql"])
@pytest.mark.parametrize("item", [item for item, _ in CASED_CASES])
def test_cased_matches_keyword_as_is(format_name: str, item: str, write_rule: WriteRule) -> None:
    cased = convert(rule_with(write_rule, f"sel:\n    {item}\ncondition: sel"), format_name)
    plain_item = item.replace("|cased", "")
    plain = convert(rule_with(write_rule, f"sel:\n    {plain_item}\ncondition: sel"), format_name)
    assert cased == plain


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("sel:\n    errorCode|exists: true\ncondition: sel", {"lower", "bucket"}),
        ("sel:\n    errorCode|exists: false\ncondition: sel", {"put", "get"}),
        ("sel:\n    errorCode|exists: true\ncondition: not sel", {"put", "get"}),
    ],
)
def test_eql_exists(
    detection: str, expected: set[str], write_rule: WriteRule, athena: duckdb.DuckDBPyConnection
) -> None:
    rule = rule_with(write_rule, detection)
    assert eql_ids(rule) == expected
    assert athena_ids(rule, athena) == expected


def test_lucene_negated_not_exists_is_grouped(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    errorCode|exists: false\ncondition: not sel")
    query = convert(rule, "lucene")
    assert "NOT (NOT _exists_:aws.cloudtrail.error_code)" in query
    assert lucene_engine.check(query, elastic_fields(), FLATTENED_PREFIXES) == []


# Constructs without a query form raise a clear error, never an internal one.


UNSUPPORTED_CONSTRUCTS = [
    ("keywords:\n    - evil\ncondition: keywords", "esql", "keyword detection 'evil'"),
    ("keywords:\n    - evil\ncondition: keywords", "eql", "keyword detection 'evil'"),
    ("keywords:\n    - '|re': ev.l\ncondition: keywords", "lucene", "keyword detection 'ev.l'"),
    (
        "sel:\n    userIdentity.arn|fieldref: userIdentity.userName\ncondition: sel",
        "lucene",
        "the fieldref modifier on field 'aws.cloudtrail.user_identity.arn'",
    ),
    (
        "sel:\n    userIdentity.arn|fieldref: userIdentity.userName\ncondition: sel",
        "eql",
        "the fieldref modifier on field 'aws.cloudtrail.user_identity.arn'",
    ),
    (
        "sel:\n    userIdentity.arn|fieldref|contains: userIdentity.userName\ncondition: sel",
        "esql",
        "the fieldref modifier with contains",
    ),
    ("sel:\n    eventTime|minute: 5\ncondition: sel", "lucene", "the minute modifier"),
    ("sel:\n    eventTime|hour: 5\ncondition: sel", "esql", "the hour modifier"),
    ("sel:\n    eventTime|day: 5\ncondition: sel", "eql", "the day modifier"),
    ("sel:\n    requestParameters.items.0.cidrIp: x\ncondition: sel", "eql", "array member 0"),
]


@pytest.mark.parametrize(("detection", "format_name", "fragment"), UNSUPPORTED_CONSTRUCTS)
def test_unsupported_construct_is_explained(
    detection: str, format_name: str, fragment: str, write_rule: WriteRule
) -> None:
    rule = rule_with(write_rule, detection)
    with pytest.raises(ConversionError) as caught:
        convert(rule, format_name)
    assert fragment in caught.value.message
    assert "internal error" not in caught.value.message
    assert caught.value.target == "elastic"


def test_array_marker_dropped_for_flattened(write_rule: WriteRule) -> None:
    rule = rule_with(write_rule, "sel:\n    requestParameters.layers[]: arn:x\ncondition: sel")
    assert f'{PARAMETERS}.layers:"arn:x"' in convert(rule, "eql")


@pytest.mark.parametrize("key", ["and", "OR", "Not", "like"])
def test_esql_quotes_keyword_field_parts(write_rule: WriteRule, key: str) -> None:
    rule = rule_with(write_rule, f"sel:\n    requestParameters.{key}: v1\ncondition: sel")
    query = convert(rule, "esql")
    assert f"`{PARAMETERS}.{key}`==" in query.replace(" ", "")


@pytest.mark.parametrize("key", ["m[][]", "m[]"])
def test_nested_array_marks_map_to_the_array_path(write_rule: WriteRule, key: str) -> None:
    rule = rule_with(write_rule, f"sel:\n    requestParameters.{key}: deep\ncondition: sel")
    for format_name in ("lucene", "esql", "eql"):
        query = convert(rule, format_name)
        assert "[]" not in query.replace("\\[\\]", "[]")
        assert f"{PARAMETERS}.m" in query


@pytest.mark.parametrize("key", ["a\u200bb", "a\u202eb"], ids=["zero-width", "override"])
def test_invisible_characters_in_field_names_are_rejected(write_rule: WriteRule, key: str) -> None:
    rule = rule_with(write_rule, f"sel:\n    requestParameters.{key}: v1\ncondition: sel")
    for format_name in ("lucene", "esql", "eql"):
        with pytest.raises(ConversionError, match="invisible character"):
            convert(rule, format_name)
