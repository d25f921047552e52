"""Splunk CloudTrail pipeline: field names, the source clause and unknown fields."""

from __future__ import annotations

import pytest
from sigma.backends.splunk.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError

from siemgen.backends.splunk import SplunkBackend as SiemgenSplunkBackend
from siemgen.errors import UnsupportedFeatureError
from siemgen.pipelines.splunk import splunk_pipeline


def convert(detection: str, **options: object) -> str:
    rule = SigmaCollection.from_yaml(
        f"title: t\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n{detection}"
    )
    result = SplunkBackend(splunk_pipeline(**options)).convert(rule)  # type: ignore[arg-type]
    assert len(result) == 1
    return str(result[0])


def test_raw_field_names_and_sourcetype() -> None:
    query = convert("    sel:\n        eventSource: iam.amazonaws.com\n    condition: sel")
    assert query == 'sourcetype="aws:cloudtrail" eventSource="iam.amazonaws.com"'


def test_index_clause_when_set() -> None:
    query = convert("    sel:\n        eventName: CreateUser\n    condition: sel", index="aws")
    assert query == 'index="aws" sourcetype="aws:cloudtrail" eventName="CreateUser"'


def test_no_source_clause_for_macro_searches() -> None:
    query = convert(
        "    sel:\n        eventName: CreateUser\n    condition: sel", source_clause=False
    )
    assert query == 'eventName="CreateUser"'


def test_resources_use_array_braces() -> None:
    query = convert("    sel:\n        resources.ARN: arn:aws:s3:::b\n    condition: sel")
    # The backend quotes a field name with braces, which Splunk accepts in search terms.
    assert '"resources{}.ARN"="arn:aws:s3:::b"' in query


def test_request_parameter_keeps_raw_path() -> None:
    query = convert("    sel:\n        requestParameters.policyArn: x\n    condition: sel")
    assert 'requestParameters.policyArn="x"' in query


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(SigmaTransformationError, match="'eventNmae'.*splunk"):
        convert("    sel:\n        eventNmae: CreateUser\n    condition: sel")


def test_cased_status_is_rejected() -> None:
    rule = SigmaCollection.from_yaml(
        "title: t\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n"
        "    sel:\n        status|cased: Failure\n    condition: sel"
    )
    backend = SiemgenSplunkBackend(splunk_pipeline())  # type: ignore[arg-type]
    with pytest.raises(UnsupportedFeatureError, match="cased modifier on field 'status'"):
        backend.convert(rule)
