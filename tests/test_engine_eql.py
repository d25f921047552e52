"""Local EQL engine: Elastic documents from CloudTrail records and Elasticsearch semantics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import eql
import pytest

from siemgen.convert import Converter
from siemgen.engines import duckdb as duckdb_engine
from siemgen.engines.eql import (
    EqlQueryError,
    compile_query,
    elastic_document,
    lucene_regex,
    matching_event_ids,
    wildcard_regex,
)
from siemgen.rules import load_rule

RECORDS: list[dict[str, Any]] = [
    {
        "eventID": "put",
        "eventSource": "iam.amazonaws.com",
        "eventName": "PutUserPolicy",
        "userAgent": "aws-cli/2.15.0 Python/3.11",
        "sourceIPAddress": "10.1.2.3",
        "readOnly": False,
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        "requestParameters": {
            "policyName": "Admin*Access",
            "tags": [{"key": "team"}, {"key": "owner"}],
        },
        "resources": [{"ARN": "arn:aws:s3:::logs-bucket"}, {"ARN": "arn:aws:s3:::other"}],
    },
    {
        "eventID": "lower",
        "eventSource": "IAM.amazonaws.com",
        "eventName": "putuserpolicy",
        "errorCode": "AccessDenied",
        "sourceIPAddress": "iam.amazonaws.com",
    },
    {
        "eventID": "get",
        "eventSource": "iam.amazonaws.com",
        "eventName": "GetUser",
        "userAgent": None,
        "errorMessage": "",
    },
]


def ids(query: str) -> list[str]:
    return sorted(matching_event_ids(query, RECORDS))


# Documents.


def test_document_drops_null_and_empty() -> None:
    document = elastic_document(RECORDS[2])
    assert "user_agent.original" not in document
    assert "aws.cloudtrail.error_message" not in document


def test_document_maps_field_names() -> None:
    document = elastic_document(RECORDS[0])
    assert document["event.provider"] == "iam.amazonaws.com"
    assert document["event.action"] == "PutUserPolicy"
    assert document["event.dataset"] == "aws.cloudtrail"
    assert document["event.id"] == "put"
    assert document["user.name"] == "alice"


def test_document_outcome_follows_error_code() -> None:
    assert elastic_document(RECORDS[0])["event.outcome"] == "success"
    assert elastic_document(RECORDS[1])["event.outcome"] == "failure"


def test_document_console_login_outcome() -> None:
    record = {
        "eventID": "c",
        "eventName": "ConsoleLogin",
        "responseElements": {"ConsoleLogin": "Failure"},
    }
    assert elastic_document(record)["event.outcome"] == "failure"


def test_document_source_ip_only_for_addresses() -> None:
    assert elastic_document(RECORDS[0])["source.ip"] == "10.1.2.3"
    service = elastic_document(RECORDS[1])
    assert service["source.address"] == "iam.amazonaws.com"
    assert "source.ip" not in service


def test_document_flattens_request_parameters() -> None:
    document = elastic_document(RECORDS[0])
    prefix = "aws.cloudtrail.flattened.request_parameters"
    assert document[f"{prefix}.policyName"] == "Admin*Access"
    assert document[f"{prefix}.tags.key"] == ["team", "owner"]
    assert document["aws.cloudtrail.request_parameters"].startswith("{policyName=Admin*Access, ")


def test_document_flattened_leaves_are_text() -> None:
    record = {"eventID": "x", "requestParameters": {"multiAZ": True, "count": 3}}
    document = elastic_document(record)
    assert document["aws.cloudtrail.flattened.request_parameters.multiAZ"] == "true"
    assert document["aws.cloudtrail.flattened.request_parameters.count"] == "3"


def test_document_keeps_long_object_flattened_only() -> None:
    record = {"eventID": "x", "requestParameters": {"policyDocument": "a" * 9000}}
    document = elastic_document(record)
    assert "aws.cloudtrail.request_parameters" not in document
    assert "aws.cloudtrail.flattened.request_parameters.policyDocument" in document


def test_document_resources_become_arrays() -> None:
    document = elastic_document(RECORDS[0])
    assert document["aws.cloudtrail.resources.arn"] == [
        "arn:aws:s3:::logs-bucket",
        "arn:aws:s3:::other",
    ]


def test_document_read_only_is_boolean() -> None:
    assert elastic_document(RECORDS[0])["aws.cloudtrail.read_only"] is False


def test_document_session_issuer_fills_user_name() -> None:
    record = {
        "eventID": "x",
        "userIdentity": {"sessionContext": {"sessionIssuer": {"userName": "deploy-role"}}},
    }
    assert elastic_document(record)["user.name"] == "deploy-role"


# Operators, as Elasticsearch evaluates them.


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('event.provider:"iam.amazonaws.com"', ["get", "lower", "put"]),
        ('event.provider == "iam.amazonaws.com"', ["get", "put"]),
        ('event.provider != "iam.amazonaws.com"', ["lower"]),
        ('event.action like~ ("putuser*")', ["lower", "put"]),
        ('event.action like ("Put*")', ["put"]),
        ('event.action in ("GetUser", "PutUserPolicy")', ["get", "put"]),
        ('event.action in~ ("getuser")', ["get"]),
        ('event.action not in ("GetUser")', ["lower", "put"]),
        ('event.action:"Get?ser"', ["get"]),
        ('event.action:"Get?"', []),
        (r'aws.cloudtrail.flattened.request_parameters.policyName:"Admin\\*Access"', []),
        ('aws.cloudtrail.flattened.request_parameters.policyName:"admin*access"', ["put"]),
        ('not user_agent.original:"aws-cli*"', ["get", "lower"]),
        ("?user_agent.original == null", ["get", "lower"]),
        ("user_agent.original != null", ["put"]),
        ('aws.cloudtrail.resources.arn:"*bucket"', ["put"]),
        ('aws.cloudtrail.flattened.request_parameters.tags.key:"owner"', ["put"]),
        ('event.action regex "Get.*"', ["get"]),
        ('event.action regex~ "get.*"', ["get"]),
        ('event.action regex "Get"', []),
        ('event.action regex~ "^Get.*"', []),
        ('cidrMatch(source.ip, "10.0.0.0/8")', ["put"]),
        ('cidrMatch(source.address, "10.0.0.0/8")', []),
        ('event.outcome:"failure"', ["lower"]),
        ("aws.cloudtrail.read_only == false", ["put"]),
        ('cloud.region == ""', []),
        (
            'event.action:"GetUser" or event.action:"PutUserPolicy" and not event.provider == "x"',
            ["get", "lower", "put"],
        ),
    ],
)
def test_operator_semantics(condition: str, expected: list[str]) -> None:
    assert ids(f"any where {condition}") == expected


def test_stock_engine_folds_case_of_equality() -> None:
    # The eql package compares == case-insensitively, which Elasticsearch does not.
    query = 'any where event.action == "PutUserPolicy"'
    matched: list[Any] = []
    engine = eql.PythonEngine({"flatten": True})
    engine.add_output_hook(matched.append)
    with eql.parser.elasticsearch_syntax:
        engine.add_query(eql.parse_query(query))
    engine.stream_events([eql.Event("any", 0, {"event": {"action": "putuserpolicy"}})])
    assert len(matched) == 1
    assert ids(query) == ["put"]


def test_stock_engine_not_with_missing_field() -> None:
    # eql's three-valued logic drops a record without the field; must_not keeps it.
    query = 'any where not user_agent.original:"aws-cli*"'
    matched: list[Any] = []
    engine = eql.PythonEngine({"flatten": True})
    engine.add_output_hook(matched.append)
    with eql.parser.elasticsearch_syntax:
        engine.add_query(eql.parse_query(query))
    engine.stream_events([eql.Event("any", 0, {"event": {"action": "x"}})])
    assert matched == []
    assert "get" in ids(query)


# Patterns.


def test_wildcard_backslash_is_literal() -> None:
    assert wildcard_regex(r"a\*", case_insensitive=False).fullmatch(r"a\bc")


def test_wildcard_spans_lines() -> None:
    assert wildcard_regex("a*b", case_insensitive=False).fullmatch("a\nb")


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("ab.", "abc", True),
        ("ab.", "abcd", False),
        ("a[^b]c", "axc", True),
        ("a[^b]c", "abc", False),
        ('"a.b"c', "a.bc", True),
        ('"a.b"c', "axbc", False),
        ("a@", "anything", True),
        ("a#", "a", False),
        (r"\d+", "123", True),
        ("^a", "a", False),
        ("^a", "^a", True),
        ("(ab)+", "abab", True),
        ("a{2,3}", "aaa", True),
    ],
)
def test_lucene_regex(pattern: str, text: str, expected: bool) -> None:
    assert bool(lucene_regex(pattern, case_insensitive=False).fullmatch(text)) is expected


@pytest.mark.parametrize("pattern", ["a&b", "~a", "<1-5>"])
def test_lucene_regex_rejects_unemulated_operators(pattern: str) -> None:
    with pytest.raises(EqlQueryError, match="does not emulate"):
        lucene_regex(pattern, case_insensitive=False)


# Queries Elasticsearch rejects, and notes.


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("any where aws.cloudtrail.read_only:false", "Expected string not boolean"),
        (r'any where event.action regex~ "a\/b"', "does not parse"),
        ("sequence [any where true] [any where true]", "cannot run locally"),
        ("any where true | head 1", "without pipes"),
        ('any where startsWith(event.action, "Put")', "not emulated"),
        ("any where event.action == event.provider", "invalid"),
    ],
)
def test_rejected_query(query: str, message: str) -> None:
    with pytest.raises(EqlQueryError, match=message):
        ids(query)


def test_unknown_function_rejected_at_compile() -> None:
    with pytest.raises(EqlQueryError, match=r"length\(\) is not emulated"):
        compile_query("any where length(event.action) > 3")


def test_note_on_anchored_regex() -> None:
    notes = compile_query('any where event.action regex~ "^Get.*"').notes
    assert notes == [
        "event.action: the regular expression contains ^ or $, which Lucene reads as plain "
        "characters because its patterns always match the whole value"
    ]


def test_note_on_cidr_keyword() -> None:
    notes = compile_query('any where cidrMatch(source.address, "10.0.0.0/8")').notes
    assert len(notes) == 1
    assert notes[0].startswith("source.address: cidrMatch on a keyword field")


def test_note_on_flattened_wildcard() -> None:
    query = 'any where aws.cloudtrail.flattened.request_parameters.policyName:"*Admin*"'
    assert "flattened sub-fields" in compile_query(query).notes[0]


def test_no_note_on_flattened_term() -> None:
    query = 'any where aws.cloudtrail.flattened.request_parameters.policyName:"Admin"'
    assert compile_query(query).notes == []


# pySigma's EQL against the Athena SQL on DuckDB, for records in AWS's own casing.

PARITY_RECORDS: list[dict[str, Any]] = [
    {
        "eventID": "p1",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
        "requestParameters": {"userName": "alice"},
    },
    {
        "eventID": "p2",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "userAgent": "Terraform/1.7.4",
        "errorCode": "AccessDenied",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/ci/x",
        },
    },
    {
        "eventID": "p3",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketPolicy",
        "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"},
        "requestParameters": {"bucketName": "logs", "policy": {"Version": "2012-10-17"}},
        "resources": [{"ARN": "arn:aws:s3:::logs", "type": "AWS::S3::Bucket"}],
    },
    {"eventID": "p4", "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances"},
]

PARITY_DETECTIONS = [
    "sel:\n    eventName: CreateAccessKey\ncondition: sel",
    "sel:\n    eventName|startswith: Create\ncondition: sel",
    "sel:\n    userAgent|contains: terraform\ncondition: sel",
    "sel:\n    userAgent|endswith: '2.15.0'\ncondition: sel",
    "sel:\n    eventSource: iam.amazonaws.com\nfilter:\n    userAgent|contains: terraform\n"
    "condition: sel and not filter",
    "sel:\n    errorCode: null\ncondition: sel",
    "sel:\n    eventName:\n        - CreateUser\n        - PutBucketPolicy\ncondition: sel",
    "sel:\n    userIdentity.arn|contains|all:\n        - '111122223333'\n        - alice\n"
    "condition: sel",
    "sel:\n    requestParameters.userName: alice\ncondition: sel",
    "sel:\n    resources.ARN|endswith: ':logs'\ncondition: sel",
    "sel:\n    userIdentity.type: Root\ncondition: not sel",
    "sel:\n    eventName|re: 'Create.*'\ncondition: sel",
]


@pytest.fixture(scope="module")
def athena_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    duckdb_engine.create_cloudtrail_table(con)
    duckdb_engine.load_records(con, PARITY_RECORDS)
    return con


@pytest.mark.parametrize("detection", PARITY_DETECTIONS)
def test_eql_agrees_with_athena(
    detection: str,
    write_rule: Callable[..., Path],
    athena_connection: duckdb.DuckDBPyConnection,
) -> None:
    rule = load_rule(write_rule(detection=detection))
    converter = Converter()
    sql = converter.convert(rule, "athena")
    query = converter.convert(rule, "elastic", "eql")
    athena = duckdb_engine.matching_event_ids(athena_connection, sql)
    assert matching_event_ids(query, PARITY_RECORDS) == athena


def test_anchored_regex_agrees_with_athena(
    write_rule: Callable[..., Path], athena_connection: duckdb.DuckDBPyConnection
) -> None:
    rule = load_rule(write_rule(detection="sel:\n    eventName|re: '^Create.*'\ncondition: sel"))
    converter = Converter()
    athena = duckdb_engine.matching_event_ids(athena_connection, converter.convert(rule, "athena"))
    elastic = matching_event_ids(converter.convert(rule, "elastic", "eql"), PARITY_RECORDS)
    assert athena == {"p1", "p2"}
    assert elastic == athena
