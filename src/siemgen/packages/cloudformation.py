"""Package the rules as CloudFormation templates: Athena saved queries and the CIS alarms.

``aws/athena-named-queries.yaml`` has one ``AWS::Athena::NamedQuery`` per rule.
``aws/cis-alarms.yaml`` has, for each rule with a ``cloudwatch`` attribute, the metric filter
on the CloudTrail log group, the alarm on its metric and, shared by all, one SNS topic. The
fixed parts come from ``templates/aws/``; resources are added as data and written with
PyYAML, so no rule text is pasted into YAML syntax.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import jinja2
import yaml

import siemgen
from siemgen.convert import Converter, RuleBuild
from siemgen.engines.cloudwatch import parse as parse_filter_pattern
from siemgen.errors import ConversionError, SiemgenError
from siemgen.packages.common import one_line, package_data
from siemgen.pages import compliance
from siemgen.rules import RuleFile
from siemgen.targets import TargetOptions

logger = logging.getLogger(__name__)

NAMED_QUERIES = "aws/athena-named-queries.yaml"
CIS_ALARMS = "aws/cis-alarms.yaml"

# The CIS AWS Foundations Benchmark monitoring controls count matching events in this
# namespace and alarm when the sum over 300 seconds reaches 1.
METRIC_NAMESPACE = "CISBenchmark"
ALARM_PERIOD_SECONDS = 300
ALARM_THRESHOLD = 1

# CloudFormation and service limits on the values siemgen writes.
MAX_QUERY_NAME = 128
MAX_QUERY_DESCRIPTION = 1024
MAX_ALARM_DESCRIPTION = 1024
MAX_METRIC_NAME = 255
MAX_LOGICAL_ID = 255

Files = dict[str, bytes]


# libyaml's emitter writes the same text as the pure-Python one, several times faster.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _TemplateDumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """A YAML dumper that writes multi-line strings as literal blocks."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TemplateDumper.add_representer(str, _represent_text)


def dump_template(template: dict[str, Any], header: str) -> bytes:
    """Write a CloudFormation template as YAML under a comment header, keeping the key order."""
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    text = comment + yaml.dump(
        template,
        Dumper=_TemplateDumper,
        sort_keys=False,
        allow_unicode=True,
        width=1 << 16,
        default_flow_style=False,
    )
    return text.encode()


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def logical_id(stem: str, suffix: str) -> str:
    """Turn a rule file stem into a CloudFormation logical id such as ``AwsIamPolicyChanged``."""
    words = [word for word in re.split(r"[^A-Za-z0-9]+", stem) if word]
    base = "".join(word[:1].upper() + word[1:] for word in words) or "Rule"
    if not base[0].isalpha():
        base = f"Rule{base}"
    return base[: MAX_LOGICAL_ID - len(suffix)] + suffix


def _base(env: jinja2.Environment, name: str) -> dict[str, Any]:
    template = package_data(env, name)
    resources = template.get("Resources") or {}
    if not isinstance(resources, dict):
        raise SiemgenError(f"Resources in {name!r} must be a mapping")
    template["Resources"] = dict(resources)
    return template


def _add_resource(
    template: dict[str, Any], name: str, resource: dict[str, Any], rule_file: RuleFile
) -> None:
    if name in template["Resources"]:
        raise SiemgenError(
            f"CloudFormation logical id {name!r} is used twice",
            path=rule_file.path,
            hint="rename the rule file so its name differs in more than punctuation",
        )
    template["Resources"][name] = resource


def named_query(converter: Converter, build: RuleBuild) -> dict[str, Any]:
    """Build the AWS::Athena::NamedQuery resource of one rule."""
    rule_file = build.rule
    rule = rule_file.rule
    query = converter.convert(rule_file, "athena", "sql", backend_format="named_query")
    description = one_line(rule.description or rule.title)
    return {
        "Type": "AWS::Athena::NamedQuery",
        "Properties": {
            "Name": _truncate(one_line(rule.title), MAX_QUERY_NAME),
            "Description": _truncate(description, MAX_QUERY_DESCRIPTION),
            "Database": {"Ref": "Database"},
            "WorkGroup": {"Ref": "WorkGroup"},
            "QueryString": query,
        },
    }


def build_named_queries(
    builds: list[RuleBuild], options: TargetOptions, env: jinja2.Environment
) -> Files:
    """Write ``aws/athena-named-queries.yaml`` with one saved Athena query per rule.

    A rule that failed the Athena conversion is left out, because the build reports it already.
    """
    template = _base(env, "aws/athena-named-queries.yml")
    converter = Converter(options)
    for build in builds:
        if build.query("athena", "sql") is None:
            continue
        resource = named_query(converter, build)
        _add_resource(template, logical_id(build.rule.stem, "Query"), resource, build.rule)
    count = len(template["Resources"])
    if not count:
        # A template must declare at least one resource, so no rule means no file.
        return {}
    header = (
        f"Generated by siemgen {siemgen.__version__}: {count} Athena saved queries.\n"
        "Deploy: aws cloudformation deploy --template-file athena-named-queries.yaml "
        "--stack-name siemgen-athena-queries"
    )
    return {NAMED_QUERIES: dump_template(template, header)}


def _cloudwatch_setting(rule_file: RuleFile, key: str, check: Callable[[str], object]) -> str:
    settings = rule_file.custom("cloudwatch")
    line = rule_file.line_of("cloudwatch", key)
    if not isinstance(settings, dict) or not isinstance(settings.get(key), str):
        raise ConversionError(
            f"cloudwatch.{key} must be a string",
            path=rule_file.path,
            line=line,
            rule=rule_file.title,
            target="cis alarms",
            hint="see the cloudwatch key in docs/rule-format.md",
        )
    value: str = settings[key]
    try:
        check(value)
    except SiemgenError as error:
        error.path, error.line = rule_file.path, line
        error.rule, error.target = rule_file.title, "cis alarms"
        raise
    return value


def _check_metric_name(name: str) -> None:
    if not name or len(name) > MAX_METRIC_NAME or name != name.strip():
        raise SiemgenError(
            f"invalid CloudWatch metric name {name!r}",
            hint=f"use 1 to {MAX_METRIC_NAME} characters without leading or trailing spaces",
        )


def _controls(rule_file: RuleFile) -> str:
    return ", ".join(item.label for item in compliance(rule_file))


def cis_resources(rule_file: RuleFile) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Build the metric filter and the alarm of one rule, and return them with the metric name."""
    metric = _cloudwatch_setting(rule_file, "metric_name", _check_metric_name)
    pattern = _cloudwatch_setting(rule_file, "filter_pattern", parse_filter_pattern)
    controls = _controls(rule_file)
    description = one_line(rule_file.title)
    if controls:
        description += f" ({controls})"
    metric_filter = {
        "Type": "AWS::Logs::MetricFilter",
        "Properties": {
            "LogGroupName": {"Ref": "LogGroupName"},
            # The benchmark's pattern, byte for byte, because Security Hub's CloudWatch.4
            # check (for one) fails on any other text.
            "FilterPattern": pattern,
            "MetricTransformations": [
                {"MetricNamespace": METRIC_NAMESPACE, "MetricName": metric, "MetricValue": "1"}
            ],
        },
    }
    alarm = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": _truncate(description, MAX_ALARM_DESCRIPTION),
            "Namespace": METRIC_NAMESPACE,
            "MetricName": metric,
            "Statistic": "Sum",
            "Period": ALARM_PERIOD_SECONDS,
            "EvaluationPeriods": 1,
            "Threshold": ALARM_THRESHOLD,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
        },
    }
    return metric, metric_filter, alarm


def build_cis_alarms(
    builds: list[RuleBuild], options: TargetOptions, env: jinja2.Environment
) -> Files:
    """Write ``aws/cis-alarms.yaml`` with a metric filter and alarm per CloudWatch rule."""
    template = _base(env, "aws/cis-alarms.yml")
    metrics: dict[str, RuleFile] = {}
    for build in builds:
        rule_file = build.rule
        if rule_file.custom("cloudwatch") is None:
            continue
        metric, metric_filter, alarm = cis_resources(rule_file)
        if metric in metrics:
            raise ConversionError(
                f"CloudWatch metric {metric!r} is already used by {metrics[metric].path}",
                path=rule_file.path,
                line=rule_file.line_of("cloudwatch", "metric_name"),
                rule=rule_file.title,
                target="cis alarms",
                hint="give each rule its own cloudwatch.metric_name",
            )
        metrics[metric] = rule_file
        _add_resource(
            template, logical_id(rule_file.stem, "MetricFilter"), metric_filter, rule_file
        )
        _add_resource(template, logical_id(rule_file.stem, "Alarm"), alarm, rule_file)
    logger.debug("CIS alarms: %d metric filters", len(metrics))
    header = (
        f"Generated by siemgen {siemgen.__version__}: {len(metrics)} CIS metric filters "
        "and alarms.\n"
        "Deploy: aws cloudformation deploy --template-file cis-alarms.yaml "
        "--stack-name siemgen-cis-alarms --parameter-overrides LogGroupName=<log group>"
    )
    return {CIS_ALARMS: dump_template(template, header)}
