"""The shape of the Athena tables that queries run on: columns to select, time and partitions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from siemgen.errors import ConfigError

STATE_KEY = "athena_table"
"""Pipeline state key under which the Athena pipelines store the ``AthenaTable``."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote_identifier(name: str) -> str:
    """Quote one SQL identifier with double quotes unless it is a plain lowercase name."""
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_table(name: str) -> str:
    """Quote a table name, optionally qualified as ``database.table`` or ``catalog.db.table``."""
    parts = name.split(".")
    if not name or len(parts) > 3 or not all(parts):
        raise ConfigError(
            f"invalid Athena table name {name!r}",
            hint="write table, database.table or catalog.database.table",
        )
    for part in parts:
        if not _IDENTIFIER.fullmatch(part) and not re.fullmatch(r"[A-Za-z0-9_-]+", part):
            raise ConfigError(
                f"invalid part {part!r} in Athena table name {name!r}",
                hint="use letters, digits, underscores and hyphens in table and database names",
            )
    return ".".join(quote_identifier(part) for part in parts)


@dataclass(frozen=True)
class AthenaTable:
    """One Athena table profile: what a full query selects and how it bounds time."""

    profile: str
    table: str
    select: tuple[tuple[str, str], ...]
    """Pairs of SQL expression and output column name, in output order."""
    time_expression: str
    """SQL expression giving the event time as a timestamp, for the lookback window."""
    order_by: str
    partition_column: str | None = None
    """Partition column bounded by the lookback window, for partition projection or pruning."""
    partition_format: str = "%Y/%m/%d"
    """Trino ``date_format`` pattern of the partition column's values."""
    keyword_column: str | None = None
    """Column holding the whole record as text, searched by keyword detections."""
    exact_case: dict[str, str] = field(default_factory=dict)
    """Athena field text forms compared without ``lower()``, each with the reason."""


def cloudtrail_table(
    table: str = "cloudtrail_logs",
    partition_column: str | None = None,
    partition_format: str = "%Y/%m/%d",
    keyword_column: str | None = None,
    exact_case: dict[str, str] | None = None,
) -> AthenaTable:
    """Describe the CloudTrail table that AWS documents for Athena (lowercase columns)."""
    quote_table(table)
    return AthenaTable(
        profile="cloudtrail",
        table=table,
        select=(
            ("eventtime", "eventtime"),
            ("eventsource", "eventsource"),
            ("eventname", "eventname"),
            ("awsregion", "awsregion"),
            ("sourceipaddress", "sourceipaddress"),
            ("useragent", "useragent"),
            ("useridentity.type", "useridentity_type"),
            ("useridentity.arn", "useridentity_arn"),
            ("useridentity.accountid", "useridentity_accountid"),
            ("errorcode", "errorcode"),
            ("errormessage", "errormessage"),
            ("requestparameters", "requestparameters"),
            ("recipientaccountid", "recipientaccountid"),
            ("eventid", "eventid"),
        ),
        time_expression="from_iso8601_timestamp(eventtime)",
        order_by="eventtime DESC",
        partition_column=partition_column,
        partition_format=partition_format,
        keyword_column=keyword_column,
        exact_case=dict(exact_case or {}),
    )


def security_lake_table(
    table: str = "amazon_security_lake_table_us_east_1_cloud_trail_mgmt_2_0",
    partition_column: str | None = None,
    partition_format: str = "%Y%m%d",
    keyword_column: str | None = None,
    exact_case: dict[str, str] | None = None,
) -> AthenaTable:
    """Describe an Amazon Security Lake CloudTrail table (OCSF 1.1, source version 2)."""
    quote_table(table)
    return AthenaTable(
        profile="security-lake",
        table=table,
        select=(
            ("time_dt", "time_dt"),
            ("api.service.name", "api_service_name"),
            ("api.operation", "api_operation"),
            ("cloud.region", "cloud_region"),
            ("src_endpoint.ip", "src_endpoint_ip"),
            ("http_request.user_agent", "http_request_user_agent"),
            ("actor.user.type", "actor_user_type"),
            ("actor.user.uid", "actor_user_uid"),
            ("actor.user.account.uid", "actor_user_account_uid"),
            ("api.response.error", "api_response_error"),
            ("api.response.message", "api_response_message"),
            ("api.request.data", "api_request_data"),
            ("metadata.uid", "metadata_uid"),
        ),
        time_expression="time_dt",
        order_by="time_dt DESC",
        partition_column=partition_column,
        partition_format=partition_format,
        keyword_column=keyword_column,
        exact_case=dict(exact_case or {}),
    )
