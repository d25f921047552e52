"""Elastic CloudTrail pipeline: ECS and aws.cloudtrail names, the dataset and index."""

from __future__ import annotations

import pytest
from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError

from siemgen.errors import UnsupportedFeatureError
from siemgen.pipelines.elastic import elastic_fields, elastic_pipeline

RULE = (
    "title: t\nlogsource:\n    product: aws\n    service: cloudtrail\n"
    "detection:\n    sel:\n        eventSource: iam.amazonaws.com\n"
    "        requestParameters.policyArn: arn:aws:iam::aws:policy/AdministratorAccess\n"
    "    condition: sel"
)


def convert(backend_class: type, text: str = RULE) -> str:
    result = backend_class(elastic_pipeline()).convert(SigmaCollection.from_yaml(text))
    assert len(result) == 1
    return str(result[0])


def test_lucene_field_names() -> None:
    query = convert(LuceneBackend)
    assert query.startswith("event.dataset:aws.cloudtrail AND (event.provider:iam.amazonaws.com")
    assert "aws.cloudtrail.flattened.request_parameters.policyArn:" in query


def test_esql_reads_the_cloudtrail_data_stream() -> None:
    query = convert(ESQLBackend)
    assert query.startswith("from logs-aws.cloudtrail-* ")
    assert 'event.provider=="iam.amazonaws.com"' in query


def test_eql_field_names() -> None:
    query = convert(EqlBackend)
    assert 'event.provider:"iam.amazonaws.com"' in query


def test_unindexed_field_is_rejected() -> None:
    text = RULE.replace("eventSource", "vpcEndpointAccountId")
    with pytest.raises(SigmaTransformationError, match="'vpcEndpointAccountId'.*not searchable"):
        convert(LuceneBackend, text)


def test_unknown_field_is_rejected() -> None:
    text = RULE.replace("eventSource", "EventSource")
    with pytest.raises(SigmaTransformationError, match="'EventSource'"):
        convert(LuceneBackend, text)


def test_field_list_holds_mapped_names() -> None:
    names = elastic_fields()
    assert "event.action" in names
    assert "event.dataset" in names
    assert "eventName" not in names


def test_cidr_on_source_ip_uses_the_ip_field() -> None:
    text = RULE.replace(
        "        requestParameters.policyArn: arn:aws:iam::aws:policy/AdministratorAccess\n",
        "        sourceIPAddress|cidr: 10.0.0.0/8\n",
    )
    assert "source.ip:10.0.0.0\\/8" in convert(LuceneBackend, text)
    assert 'cidrMatch(source.ip, "10.0.0.0/8")' in convert(EqlBackend, text)


def test_plain_source_ip_uses_the_address_field() -> None:
    text = RULE.replace(
        "        requestParameters.policyArn: arn:aws:iam::aws:policy/AdministratorAccess\n",
        "        sourceIPAddress: 192.0.2.1\n",
    )
    assert "source.address:" in convert(LuceneBackend, text)


def test_status_value_is_lower_cased() -> None:
    text = RULE.replace("eventSource: iam.amazonaws.com", "status: SUCCESS")
    assert "event.outcome:success" in convert(LuceneBackend, text)
    assert 'event.outcome=="success"' in convert(ESQLBackend, text)


def test_cased_status_is_rejected() -> None:
    text = RULE.replace("eventSource: iam.amazonaws.com", "status|cased: Failure")
    with pytest.raises(UnsupportedFeatureError, match="cased modifier on field 'status'"):
        convert(LuceneBackend, text)
