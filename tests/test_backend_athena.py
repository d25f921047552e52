"""Tests of the Athena backend: generated SQL is run on DuckDB over CloudTrail records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
import yaml
from sigma.rule import SigmaRule

from siemgen.backends.athena import AthenaBackend, parse_lookback
from siemgen.engines.duckdb import (
    create_cloudtrail_table,
    load_records,
    matching_event_ids,
    prepare_connection,
    to_duckdb,
)
from siemgen.errors import ConfigError, UnknownFieldError, UnsupportedFeatureError
from siemgen.pipelines.athena import athena_pipeline

DATA = Path(__file__).parent / "data" / "athena"
ROOT = Path(__file__).parent.parent
CORPUS = Path("/work/shared/corpus/sigmahq-aws-cloudtrail")
CASES = yaml.safe_load((DATA / "cases.yaml").read_text(encoding="utf-8"))["cases"]


def load_test_records() -> list[dict[str, Any]]:
    """Return the test records with RECENT and OLD replaced by real times."""
    now = datetime.now(UTC)
    times = {
        "RECENT": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "OLD": (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    records: list[dict[str, Any]] = json.loads((DATA / "records.json").read_text("utf-8"))[
        "records"
    ]
    for record in records:
        record["eventTime"] = times.get(record["eventTime"], record["eventTime"])
    return records


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    create_cloudtrail_table(connection)
    load_records(connection, load_test_records())
    return connection


def make_rule(detection: dict[str, Any], title: str = "test rule") -> SigmaRule:
    return SigmaRule.from_dict(
        {
            "title": title,
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "detection": detection,
        }
    )


def convert(
    detection: dict[str, Any],
    output_format: str = "condition",
    lookback: str | None = None,
    **pipeline_options: Any,
) -> str:
    backend = AthenaBackend(
        processing_pipeline=athena_pipeline(**pipeline_options), lookback=lookback
    )
    queries = backend.convert_rule(make_rule(detection), output_format)
    assert len(queries) == 1
    return str(queries[0])


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case_matches_expected_records(
    case: dict[str, Any], con: duckdb.DuckDBPyConnection
) -> None:
    query = convert(case["detection"], "default", case.get("lookback"), **case.get("pipeline", {}))
    sqlglot.parse_one(query, read="athena")
    assert matching_event_ids(con, query) == set(case["expect"])


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({case["name"] for case in CASES}) == len(CASES)


def test_condition_format_matches_same_records(con: duckdb.DuckDBPyConnection) -> None:
    for case in CASES:
        if case.get("lookback"):
            continue
        condition = convert(case["detection"], "condition", **case.get("pipeline", {}))
        assert matching_event_ids(con, condition) == set(case["expect"]), case["name"]


# Exact SQL for small rules.


def test_sql_exact_case_and_folded_fields() -> None:
    sql = convert(
        {"sel": {"eventName": "AttachUserPolicy", "userAgent": "Aws-Cli"}, "condition": "sel"}
    )
    assert sql == "eventname = 'AttachUserPolicy' AND lower(useragent) = 'aws-cli'"


def test_sql_in_list() -> None:
    sql = convert(
        {"sel": {"eventSource": ["a.amazonaws.com", "b.amazonaws.com"]}, "condition": "sel"}
    )
    assert sql == "eventsource IN ('a.amazonaws.com', 'b.amazonaws.com')"


def test_sql_like_escaping() -> None:
    sql = convert({"sel": {"userAgent|contains": "50%_o'k\\\\"}, "condition": "sel"})
    assert sql == "lower(useragent) LIKE '%50\\%\\_o''k\\\\%' ESCAPE '\\'"


def test_sql_not_is_null_safe() -> None:
    sql = convert(
        {"sel": {"eventName": "A"}, "f": {"errorCode": "X"}, "condition": "sel and not f"}
    )
    assert sql == "eventname = 'A' AND NOT coalesce(lower(errorcode) = 'x', false)"


def test_sql_json_and_resources() -> None:
    sql = convert(
        {
            "sel": {"requestParameters.policyArn|endswith": "/Admin", "resources.ARN": "arn:x"},
            "condition": "sel",
        }
    )
    assert sql == (
        "lower(json_extract_scalar(requestparameters, '$.policyArn')) LIKE '%/admin' "
        "ESCAPE '\\' AND any_match(resources, r -> lower(r.arn) = 'arn:x')"
    )


def test_sql_status_and_regex() -> None:
    sql = convert(
        {"sel": {"status": "failure", "userIdentity.arn|re|i": "^arn:.*'x"}, "condition": "sel"}
    )
    assert sql == (
        "CASE WHEN eventname = 'ConsoleLogin' AND "
        "json_extract_scalar(responseelements, '$.ConsoleLogin') IS NOT NULL "
        "THEN lower(json_extract_scalar(responseelements, '$.ConsoleLogin')) = 'failure' "
        "ELSE (errorcode IS NOT NULL OR errormessage IS NOT NULL) END "
        "AND regexp_like(useridentity.arn, '(?i)^arn:.*''x')"
    )


OUTCOME_RECORDS = [
    {
        "eventID": "failed-sign-in",
        "eventName": "ConsoleLogin",
        "errorMessage": "Failed authentication",
        "responseElements": {"ConsoleLogin": "Failure"},
    },
    {
        "eventID": "sign-in",
        "eventName": "ConsoleLogin",
        "responseElements": {"ConsoleLogin": "Success"},
    },
    {"eventID": "denied", "eventName": "PutUserPolicy", "errorCode": "AccessDenied"},
    {"eventID": "message-only", "eventName": "PutUserPolicy", "errorMessage": "Throttled"},
    {"eventID": "done", "eventName": "PutUserPolicy"},
]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("failure", {"failed-sign-in", "denied", "message-only"}),
        ("Success", {"sign-in", "done"}),
    ],
)
def test_status_follows_sign_in_result_and_errors(status: str, expected: set[str]) -> None:
    connection = duckdb.connect()
    create_cloudtrail_table(connection)
    load_records(connection, OUTCOME_RECORDS)
    sql = convert({"sel": {"status": status}, "condition": "sel"})
    assert matching_event_ids(connection, sql) == expected


@pytest.mark.parametrize(
    ("pattern", "written"),
    [
        ("^ad{,3}min$", "^ad{0,3}min$"),
        ("a\\{,3}", "a\\{,3}"),
        ("[]{,3}]x{,2}", "[]{,3}]x{0,2}"),
        ("[^]{,3}]", "[^]{,3}]"),
        ("a{2,3}", "a{2,3}"),
    ],
)
def test_open_lower_bound_is_written_as_zero(pattern: str, written: str) -> None:
    sql = convert({"sel": {"userIdentity.userName|re": pattern}, "condition": "sel"})
    assert sql == f"regexp_like(useridentity.username, '{written}')"


def test_open_lower_bound_matches_on_duckdb() -> None:
    connection = duckdb.connect()
    create_cloudtrail_table(connection)
    load_records(
        connection,
        [
            {"eventID": "admin", "userIdentity": {"userName": "admin"}},
            {"eventID": "literal", "userIdentity": {"userName": "ad{,3}min"}},
        ],
    )
    sql = convert({"sel": {"userIdentity.userName|re": "^ad{,3}min$"}, "condition": "sel"})
    assert matching_event_ids(connection, sql) == {"admin"}


def test_sql_cidr() -> None:
    sql = convert({"sel": {"sourceIPAddress|cidr": "10.1.0.0/16"}, "condition": "sel"})
    assert sql == "contains('10.1.0.0/16', try_cast(sourceipaddress AS IPADDRESS))"


def test_full_query_shape() -> None:
    sql = convert({"sel": {"eventName": "A"}, "condition": "sel"}, "default", lookback="7d")
    assert sql == (
        "SELECT\n  eventtime,\n  eventsource,\n  eventname,\n  awsregion,\n  sourceipaddress,\n"
        "  useragent,\n  useridentity.type AS useridentity_type,\n"
        "  useridentity.arn AS useridentity_arn,\n"
        "  useridentity.accountid AS useridentity_accountid,\n  errorcode,\n  errormessage,\n"
        "  requestparameters,\n  recipientaccountid,\n  eventid\nFROM cloudtrail_logs\n"
        "WHERE (eventname = 'A')\n"
        "  AND from_iso8601_timestamp(eventtime) >= current_timestamp - INTERVAL '7' DAY\n"
        "ORDER BY eventtime DESC"
    )


def test_full_query_partition_projection() -> None:
    sql = convert(
        {"sel": {"eventName": "A"}, "condition": "sel"},
        "default",
        lookback="24h",
        table="trails.cloudtrail_logs_pp",
        partition_column="timestamp",
    )
    assert "FROM trails.cloudtrail_logs_pp\n" in sql
    assert (
        "WHERE (eventname = 'A')\n"
        "  AND \"timestamp\" >= date_format(current_timestamp - INTERVAL '24' HOUR, '%Y/%m/%d')\n"
        "  AND from_iso8601_timestamp(eventtime) >= current_timestamp - INTERVAL '24' HOUR\n"
    ) in sql


def test_partition_projection_runs_on_duckdb() -> None:
    connection = duckdb.connect()
    create_cloudtrail_table(connection, "cloudtrail_logs_pp", partition_column="timestamp")
    load_records(connection, load_test_records(), "cloudtrail_logs_pp")
    sql = convert(
        {"sel": {"eventSource": "iam.amazonaws.com"}, "condition": "sel"},
        "default",
        lookback="2d",
        table="cloudtrail_logs_pp",
        partition_column="timestamp",
    )
    assert matching_event_ids(connection, sql, "cloudtrail_logs_pp") == {"put", "unicode"}


def test_named_query_format() -> None:
    backend = AthenaBackend(processing_pipeline=athena_pipeline())
    rule = make_rule({"sel": {"eventName": "A"}, "condition": "sel"}, title="Two\n  lines")
    text = backend.convert_rule(rule, "named_query")[0]
    assert text.startswith("-- Two lines\nSELECT\n")
    assert not text.rstrip().endswith(";")
    sqlglot.parse_one(text, read="athena")


def test_security_lake_profile() -> None:
    sql = convert(
        {
            "sel": {
                "eventName": "ConsoleLogin",
                "userIdentity.arn|contains": "Admin",
                "requestParameters.roleArn": "arn:r",
            },
            "condition": "sel",
        },
        profile="security-lake",
    )
    assert sql == (
        "api.operation = 'ConsoleLogin' AND lower(actor.user.uid) LIKE '%admin%' ESCAPE '\\' "
        "AND lower(json_extract_scalar(api.request.data, '$.roleArn')) = 'arn:r'"
    )


def test_security_lake_full_query_uses_time_dt() -> None:
    sql = convert(
        {"sel": {"status": "Failure"}, "condition": "sel"},
        "default",
        lookback="1h",
        profile="security-lake",
        table="amazon_security_lake_glue_db_us_east_1.amazon_security_lake_table_us_east_1_cloud_trail_mgmt_2_0",
    )
    assert (
        "WHERE (lower(status) = 'failure')\n  AND time_dt >= current_timestamp - INTERVAL '1' HOUR"
        in sql
    )
    sqlglot.parse_one(sql, read="athena")


def test_canonical_rule_columns_and_case() -> None:
    rule_path = ROOT / "sigma" / "aws" / "cloudtrail" / "aws_iam_policy_changed.yml"
    rule = SigmaRule.from_yaml(rule_path.read_text(encoding="utf-8"))
    backend = AthenaBackend(processing_pipeline=athena_pipeline(), lookback="24h")
    sql = backend.convert_rule(rule, "default")[0]
    tree = sqlglot.parse_one(sql, read="athena")
    selected = {select.unalias().sql(dialect="athena") for select in tree.expressions}
    read = {column.sql(dialect="athena") for column in tree.find_all(sqlglot.exp.Column)}
    assert read <= selected
    condition = tree.args["where"].this.sql(dialect="athena")
    assert "lower(" not in condition.lower()
    assert "eventsource = 'iam.amazonaws.com'" in sql
    assert "eventname IN ('DeleteGroupPolicy'" in sql


def test_canonical_rule_matches_its_records(con: duckdb.DuckDBPyConnection) -> None:
    rule_path = ROOT / "sigma" / "aws" / "cloudtrail" / "aws_iam_policy_changed.yml"
    rule = SigmaRule.from_yaml(rule_path.read_text(encoding="utf-8"))
    sql = AthenaBackend(processing_pipeline=athena_pipeline()).convert_rule(rule)[0]
    assert matching_event_ids(con, sql) == {"put", "old"}


# The same fields once as JSON objects and once as text, as CloudTrail writes some of them.
JSON_OR_TEXT_RECORDS = [
    {
        "eventID": "object",
        "additionalEventData": {"MFAUsed": "No"},
        "requestParameters": {
            "bucketName": "b",
            "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]},
        },
        "responseElements": {"ConsoleLogin": "Success"},
    },
    {
        "eventID": "text",
        "additionalEventData": "MFAUsed=No",
        "requestParameters": "bucketName=b",
        "responseElements": "ConsoleLogin=Success",
    },
]


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ({"sel": {"additionalEventData.MFAUsed": "No"}, "condition": "sel"}, {"object"}),
        ({"sel": {"requestParameters.bucketName|exists": True}, "condition": "sel"}, {"object"}),
        ({"sel": {"responseElements.ConsoleLogin": "Success"}, "condition": "not sel"}, {"text"}),
        (
            {
                "sel": {"requestParameters.ipPermissions.items.ipRanges.items.cidrIp": "0.0.0.0/0"},
                "condition": "sel",
            },
            {"object"},
        ),
    ],
    ids=["key", "exists", "negated", "array search"],
)
def test_json_fields_written_as_text_are_null(
    detection: dict[str, Any], expected: set[str]
) -> None:
    connection = duckdb.connect()
    create_cloudtrail_table(connection)
    load_records(connection, JSON_OR_TEXT_RECORDS)
    assert matching_event_ids(connection, convert(detection)) == expected


# Rejections with clear messages.


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(UnknownFieldError) as raised:
        convert({"sel": {"eventname": "A"}, "condition": "sel"})
    assert "'eventname'" in str(raised.value)
    assert raised.value.field == "eventname"
    assert raised.value.rule == "test rule"


def test_field_without_athena_column_is_rejected() -> None:
    with pytest.raises(UnknownFieldError, match="'managementEvent'"):
        convert({"sel": {"managementEvent": True}, "condition": "sel"})


def test_status_other_value_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="'unknown'.*'status'"):
        convert({"sel": {"status": "unknown"}, "condition": "sel"})


def test_cased_status_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="cased modifier on field 'status'"):
        convert({"sel": {"status|cased": "Failure"}, "condition": "sel"})


def test_status_wildcard_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="'\\*succ\\*' of field 'status'"):
        convert({"sel": {"status|contains": "succ"}, "condition": "sel"})


def test_keyword_without_column_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="keyword detection 'evil'.*whole record"):
        convert({"keywords": ["evil"], "condition": "keywords"})


def test_unresolved_placeholder_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="%admins%"):
        convert({"sel": {"userIdentity.userName|expand": "%admins%"}, "condition": "sel"})


def test_fieldref_to_array_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="fieldref to field 'resources.ARN'"):
        convert({"sel": {"userIdentity.arn|fieldref": "resources.ARN"}, "condition": "sel"})


def test_json_key_with_odd_characters_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="JSON key 'a-b'"):
        convert({"sel": {"requestParameters.a-b": "x"}, "condition": "sel"})


def test_security_lake_unmapped_field_is_rejected() -> None:
    with pytest.raises(UnknownFieldError, match="'additionalEventData.MFAUsed'.*security-lake"):
        convert(
            {"sel": {"additionalEventData.MFAUsed": "No"}, "condition": "sel"},
            profile="security-lake",
        )


def test_timestamp_column_string_match_is_rejected() -> None:
    with pytest.raises(UnsupportedFeatureError, match="timestamp"):
        convert({"sel": {"eventTime": "2024"}, "condition": "sel"}, profile="security-lake")


def test_other_logsource_is_rejected() -> None:
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "logsource": {"product": "windows", "service": "security"},
            "detection": {"sel": {"EventID": 1}, "condition": "sel"},
        }
    )
    backend = AthenaBackend(processing_pipeline=athena_pipeline())
    with pytest.raises(Exception, match="logsource product 'aws'"):
        backend.convert_rule(rule)


def test_invalid_lookback_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'2 weeks'"):
        parse_lookback("2 weeks")


def test_lookback_parsing() -> None:
    assert parse_lookback("24h") == (24, "HOUR")
    assert parse_lookback("30m") == (30, "MINUTE")
    assert parse_lookback("none") is None
    assert parse_lookback(None) is None


def test_converting_a_rule_twice_is_stable() -> None:
    backend = AthenaBackend(processing_pipeline=athena_pipeline())
    rule = make_rule({"sel": {"eventName": "A", "userAgent": "b"}, "condition": "sel"})
    first = backend.convert_rule(rule, "condition")
    second = backend.convert_rule(rule, "condition")
    assert first == second


# The community corpus.


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.yml")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="community rule corpus not present")
@pytest.mark.parametrize("path", corpus_files(), ids=[path.name for path in corpus_files()])
def test_corpus_rule_converts(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    rule = SigmaRule.from_yaml(path.read_text(encoding="utf-8"))
    backend = AthenaBackend(processing_pipeline=athena_pipeline(), lookback="30d")
    for query in backend.convert_rule(rule, "default"):
        sqlglot.parse_one(query, read="athena")
        matching_event_ids(con, query)


SECURITY_LAKE_TABLE = """CREATE TABLE sl (
  time_dt TIMESTAMPTZ, status VARCHAR,
  api STRUCT(operation VARCHAR, service STRUCT(name VARCHAR),
    request STRUCT(data VARCHAR), response STRUCT(error VARCHAR, message VARCHAR)),
  actor STRUCT("user" STRUCT(uid VARCHAR, type VARCHAR, account STRUCT(uid VARCHAR)),
    session STRUCT(is_mfa BOOLEAN)),
  cloud STRUCT(region VARCHAR), src_endpoint STRUCT(ip VARCHAR),
  http_request STRUCT(user_agent VARCHAR), metadata STRUCT(uid VARCHAR),
  resources STRUCT(uid VARCHAR, type VARCHAR, account STRUCT(uid VARCHAR))[])"""

SECURITY_LAKE_ROWS = """INSERT INTO sl (time_dt, status, api, actor, metadata, resources) VALUES
  (now() - INTERVAL 1 HOUR, 'Failure',
   {'operation': 'ConsoleLogin', 'service': {'name': 'signin.amazonaws.com'},
    'request': {'data': '{"roleArn":"arn:R"}'}, 'response': {'error': 'x', 'message': 'y'}},
   {'user': {'uid': 'arn:aws:iam::1:user/Admin', 'type': 'IAMUser', 'account': {'uid': '1'}},
    'session': {'is_mfa': false}},
   {'uid': 'e1'}, [{'uid': 'arn:b', 'type': 'AWS::S3::Bucket', 'account': {'uid': '1'}}]),
  (now() - INTERVAL 1 HOUR, 'Success',
   {'operation': 'ConsoleLogin', 'service': {'name': 'signin.amazonaws.com'},
    'request': {'data': NULL}, 'response': {'error': NULL, 'message': NULL}},
   {'user': {'uid': 'arn:aws:iam::1:user/bob', 'type': 'IAMUser', 'account': {'uid': '1'}},
    'session': {'is_mfa': true}},
   {'uid': 'e2'}, []),
  (now() - INTERVAL 3 DAY, 'Failure',
   {'operation': 'ConsoleLogin', 'service': {'name': 'signin.amazonaws.com'},
    'request': {'data': '{"roleArn":"arn:R"}'}, 'response': {'error': 'x', 'message': 'y'}},
   {'user': {'uid': 'arn:aws:iam::1:user/Admin', 'type': 'IAMUser', 'account': {'uid': '1'}},
    'session': {'is_mfa': false}},
   {'uid': 'e3'}, [{'uid': 'arn:b', 'type': 'AWS::S3::Bucket', 'account': {'uid': '1'}}])"""


def test_security_lake_query_runs_on_ocsf_table() -> None:
    connection = duckdb.connect()
    prepare_connection(connection)
    connection.execute(SECURITY_LAKE_TABLE)
    connection.execute(SECURITY_LAKE_ROWS)
    detection = {
        "sel": {
            "eventName": "ConsoleLogin",
            "userIdentity.arn|contains": "admin",
            "requestParameters.roleArn": "arn:r",
            "status": "failure",
            "resources.accountId": "1",
            "userIdentity.sessionContext.attributes.mfaAuthenticated": "false",
        },
        "condition": "sel",
    }
    sql = convert(detection, "default", lookback="24h", profile="security-lake", table="sl")
    sqlglot.parse_one(sql, read="athena")
    rows = connection.execute(f"SELECT metadata_uid FROM ({to_duckdb(sql)})").fetchall()
    assert rows == [("e1",)]
