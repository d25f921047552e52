"""CloudTrail field names in the raw record and in each target's data model.

Sigma rules for ``logsource: {product: aws, service: cloudtrail}`` name fields by their path
in the raw CloudTrail JSON record. This table says what each path is called by the Splunk
Add-on for AWS (sourcetype ``aws:cloudtrail``), by the Elastic AWS integration (data stream
``logs-aws.cloudtrail-*``) and in the Athena table that AWS documents for CloudTrail logs in
S3. Every pipeline, test engine and hunt reads its names from here, so a mapping is fixed in
one place.

Sources: the AWS CloudTrail record contents reference, the Elastic integration's ingest
pipeline and ``fields.yml`` for the ``cloudtrail`` data stream, the Splunk Add-on for AWS
field documentation and the Athena partition-projection DDL for CloudTrail.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JsonColumn(StrEnum):
    """A CloudTrail object that Athena stores as a JSON string and Elastic flattens."""

    REQUEST_PARAMETERS = "requestParameters"
    RESPONSE_ELEMENTS = "responseElements"
    ADDITIONAL_EVENT_DATA = "additionalEventData"
    SERVICE_EVENT_DETAILS = "serviceEventDetails"

    @property
    def athena_column(self) -> str:
        """Return the Athena column that holds this object as JSON text."""
        return self.value.lower()

    @property
    def elastic_flattened(self) -> str:
        """Return the Elastic ``flattened`` field that holds this object's keys."""
        return f"aws.cloudtrail.flattened.{_ELASTIC_OBJECT_NAMES[self]}"

    @property
    def elastic_string(self) -> str:
        """Return the Elastic keyword field that holds the whole object as text."""
        return f"aws.cloudtrail.{_ELASTIC_OBJECT_NAMES[self]}"


_ELASTIC_OBJECT_NAMES = {
    JsonColumn.REQUEST_PARAMETERS: "request_parameters",
    JsonColumn.RESPONSE_ELEMENTS: "response_elements",
    JsonColumn.ADDITIONAL_EVENT_DATA: "additional_eventdata",
    JsonColumn.SERVICE_EVENT_DETAILS: "service_event_details",
}


@dataclass(frozen=True)
class CloudTrailField:
    """One raw CloudTrail field and its name in each target.

    ``elastic`` is None where the Elastic ingest pipeline has no step for the key, so the
    value is deleted before indexing and cannot be searched. ``athena`` is None where the
    documented Athena table has no column for it. ``exact_case`` gives the reason when AWS
    always writes the value in one fixed spelling, so a SQL comparison may skip ``lower()``.
    """

    raw: str
    splunk: str
    elastic: str | None
    elastic_type: str
    athena: str | None
    exact_case: str | None = None


_SERVICE_NAME_CASE = (
    "AWS writes eventSource as the service's endpoint name in lower case, "
    "e.g. iam.amazonaws.com (CloudTrail record contents reference)"
)
_API_NAME_CASE = (
    "AWS writes eventName as the API action in the API's own PascalCase, "
    "e.g. AttachUserPolicy (CloudTrail record contents reference)"
)
_ENUM_CASE = "AWS writes this field from a fixed list of values in one spelling"


def _field(
    raw: str,
    elastic: str | None,
    athena: str | None,
    elastic_type: str = "keyword",
    exact_case: str | None = None,
) -> CloudTrailField:
    return CloudTrailField(raw, raw, elastic, elastic_type, athena, exact_case)


_SESSION_ISSUER = "aws.cloudtrail.user_identity.session_context.session_issuer"

FIELDS: tuple[CloudTrailField, ...] = (
    _field("eventVersion", "aws.cloudtrail.event_version", "eventversion"),
    _field("eventTime", "@timestamp", "eventtime", elastic_type="date"),
    _field("eventSource", "event.provider", "eventsource", exact_case=_SERVICE_NAME_CASE),
    _field("eventName", "event.action", "eventname", exact_case=_API_NAME_CASE),
    _field("awsRegion", "cloud.region", "awsregion"),
    _field("sourceIPAddress", "source.address", "sourceipaddress"),
    _field("userAgent", "user_agent.original", "useragent"),
    _field("errorCode", "aws.cloudtrail.error_code", "errorcode"),
    _field("errorMessage", "aws.cloudtrail.error_message", "errormessage"),
    _field(
        "requestParameters",
        JsonColumn.REQUEST_PARAMETERS.elastic_string,
        "requestparameters",
    ),
    _field(
        "responseElements",
        JsonColumn.RESPONSE_ELEMENTS.elastic_string,
        "responseelements",
    ),
    _field(
        "additionalEventData",
        JsonColumn.ADDITIONAL_EVENT_DATA.elastic_string,
        "additionaleventdata",
    ),
    _field(
        "serviceEventDetails",
        JsonColumn.SERVICE_EVENT_DETAILS.elastic_string,
        "serviceeventdetails",
    ),
    _field("requestID", "aws.cloudtrail.request_id", "requestid"),
    _field("eventID", "event.id", "eventid"),
    _field("eventType", "aws.cloudtrail.event_type", "eventtype", exact_case=_ENUM_CASE),
    _field("apiVersion", "aws.cloudtrail.api_version", "apiversion"),
    _field("managementEvent", "aws.cloudtrail.management_event", None),
    _field("readOnly", "aws.cloudtrail.read_only", "readonly", elastic_type="boolean"),
    CloudTrailField(
        "resources.ARN",
        "resources{}.ARN",
        "aws.cloudtrail.resources.arn",
        "keyword",
        "resources.arn",
    ),
    CloudTrailField(
        "resources.accountId",
        "resources{}.accountId",
        "aws.cloudtrail.resources.account_id",
        "keyword",
        "resources.accountid",
    ),
    CloudTrailField(
        "resources.type",
        "resources{}.type",
        "aws.cloudtrail.resources.type",
        "keyword",
        "resources.type",
    ),
    _field("recipientAccountId", "aws.cloudtrail.recipient_account_id", "recipientaccountid"),
    _field("sharedEventID", "aws.cloudtrail.shared_event_id", "sharedeventid"),
    _field("vpcEndpointId", "aws.cloudtrail.vpc_endpoint_id", "vpcendpointid"),
    _field("vpcEndpointAccountId", None, "vpcendpointaccountid"),
    _field(
        "eventCategory", "aws.cloudtrail.event_category", "eventcategory", exact_case=_ENUM_CASE
    ),
    _field("sessionCredentialFromConsole", None, "sessioncredentialfromconsole"),
    _field("tlsDetails.tlsVersion", None, "tlsdetails.tlsversion"),
    _field("tlsDetails.cipherSuite", "tls.cipher", "tlsdetails.ciphersuite"),
    _field(
        "tlsDetails.clientProvidedHostHeader",
        "tls.client.server_name",
        "tlsdetails.clientprovidedhostheader",
    ),
    _field("userIdentity.type", "aws.cloudtrail.user_identity.type", "useridentity.type"),
    _field("userIdentity.principalId", "user.id", "useridentity.principalid"),
    _field("userIdentity.arn", "aws.cloudtrail.user_identity.arn", "useridentity.arn"),
    _field("userIdentity.accountId", "cloud.account.id", "useridentity.accountid"),
    _field(
        "userIdentity.accessKeyId",
        "aws.cloudtrail.user_identity.access_key_id",
        "useridentity.accesskeyid",
    ),
    _field("userIdentity.userName", "user.name", "useridentity.username"),
    _field(
        "userIdentity.invokedBy",
        "aws.cloudtrail.user_identity.invoked_by",
        "useridentity.invokedby",
    ),
    _field(
        "userIdentity.sessionContext.attributes.mfaAuthenticated",
        "aws.cloudtrail.user_identity.session_context.mfa_authenticated",
        "useridentity.sessioncontext.attributes.mfaauthenticated",
    ),
    _field(
        "userIdentity.sessionContext.attributes.creationDate",
        "aws.cloudtrail.user_identity.session_context.creation_date",
        "useridentity.sessioncontext.attributes.creationdate",
        elastic_type="date",
    ),
    _field(
        "userIdentity.sessionContext.sessionIssuer.type",
        f"{_SESSION_ISSUER}.type",
        "useridentity.sessioncontext.sessionissuer.type",
    ),
    _field(
        "userIdentity.sessionContext.sessionIssuer.principalId",
        f"{_SESSION_ISSUER}.principal_id",
        "useridentity.sessioncontext.sessionissuer.principalid",
    ),
    _field(
        "userIdentity.sessionContext.sessionIssuer.arn",
        f"{_SESSION_ISSUER}.arn",
        "useridentity.sessioncontext.sessionissuer.arn",
    ),
    _field(
        "userIdentity.sessionContext.sessionIssuer.accountId",
        f"{_SESSION_ISSUER}.account_id",
        "useridentity.sessioncontext.sessionissuer.accountid",
    ),
    # NOTE: the Elastic pipeline renames sessionIssuer.userName to user.name only when
    # userIdentity.userName is absent, so on Elastic this field is not searchable by itself.
    _field(
        "userIdentity.sessionContext.sessionIssuer.userName",
        None,
        "useridentity.sessioncontext.sessionissuer.username",
    ),
    _field(
        "userIdentity.sessionContext.webIdFederationData.federatedProvider",
        None,
        "useridentity.sessioncontext.webidfederationdata.federatedprovider",
    ),
    _field(
        "userIdentity.sessionContext.ec2RoleDelivery",
        None,
        "useridentity.sessioncontext.ec2roledelivery",
    ),
    _field("userIdentity.onBehalfOf.userId", None, "useridentity.onbehalfof.userid"),
    # Not in the raw record. Splunk's add-on derives CIM `status` (success or failure) from
    # eventName and errorCode with a lookup. Elastic's pipeline sets event.outcome from a
    # sign-in's responseElements, else from errorCode or errorMessage, and the Athena backend
    # derives status the same way, since Athena has no such column.
    CloudTrailField("status", "status", "event.outcome", "keyword", None),
    _field(
        "userIdentity.onBehalfOf.identityStoreArn",
        None,
        "useridentity.onbehalfof.identitystorearn",
    ),
)

FIELDS_BY_RAW_NAME: dict[str, CloudTrailField] = {field.raw: field for field in FIELDS}

# Sigma writes array members without brackets; the ``resources[]`` spelling is accepted too.
_ALIASES = {
    "resources[].ARN": "resources.ARN",
    "resources[].accountId": "resources.accountId",
    "resources[].type": "resources.type",
    "resources{}.ARN": "resources.ARN",
    "resources{}.accountId": "resources.accountId",
    "resources{}.type": "resources.type",
}


@dataclass(frozen=True)
class JsonPath:
    """A key path inside one of the CloudTrail objects held as JSON text."""

    column: JsonColumn
    keys: tuple[str, ...]

    @property
    def raw(self) -> str:
        """Return the Sigma field name for this path."""
        return ".".join((self.column.value, *self.keys))


def key_name(key: str) -> str:
    """Return a JSON key of a field path without the ``[]`` marks of arrays after it."""
    while key.endswith("[]"):
        key = key[:-2]
    return key


def lookup(field: str) -> CloudTrailField | JsonPath | None:
    """Find a Sigma field name in the table, or None when CloudTrail has no such field."""
    name = _ALIASES.get(field, field)
    known = FIELDS_BY_RAW_NAME.get(name)
    if known is not None:
        return known
    head, _, rest = name.partition(".")
    for column in JsonColumn:
        if head == column.value and rest:
            return JsonPath(column, tuple(rest.split(".")))
    return None


# The Athena CloudTrail table as AWS's partition-projection DDL defines it: every leaf is a
# STRING, `resources` is an array of structs, and the four JSON objects are STRING columns.
ATHENA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("eventversion", "STRING"),
    (
        "useridentity",
        "STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING, "
        "invokedby: STRING, accesskeyid: STRING, username: STRING, "
        "onbehalfof: STRUCT<userid: STRING, identitystorearn: STRING>, "
        "sessioncontext: STRUCT<attributes: STRUCT<mfaauthenticated: STRING, "
        "creationdate: STRING>, sessionissuer: STRUCT<type: STRING, principalid: STRING, "
        "arn: STRING, accountid: STRING, username: STRING>, ec2roledelivery: STRING, "
        "webidfederationdata: STRUCT<federatedprovider: STRING, "
        "attributes: MAP<STRING, STRING>>>>",
    ),
    ("eventtime", "STRING"),
    ("eventsource", "STRING"),
    ("eventname", "STRING"),
    ("awsregion", "STRING"),
    ("sourceipaddress", "STRING"),
    ("useragent", "STRING"),
    ("errorcode", "STRING"),
    ("errormessage", "STRING"),
    ("requestparameters", "STRING"),
    ("responseelements", "STRING"),
    ("additionaleventdata", "STRING"),
    ("requestid", "STRING"),
    ("eventid", "STRING"),
    ("readonly", "STRING"),
    ("resources", "ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>"),
    ("eventtype", "STRING"),
    ("apiversion", "STRING"),
    ("recipientaccountid", "STRING"),
    ("serviceeventdetails", "STRING"),
    ("sharedeventid", "STRING"),
    ("vpcendpointid", "STRING"),
    ("vpcendpointaccountid", "STRING"),
    ("eventcategory", "STRING"),
    (
        "addendum",
        "STRUCT<reason: STRING, updatedfields: STRING, originalrequestid: STRING, "
        "originaleventid: STRING>",
    ),
    ("sessioncredentialfromconsole", "STRING"),
    ("edgedevicedetails", "STRING"),
    (
        "tlsdetails",
        "STRUCT<tlsversion: STRING, ciphersuite: STRING, clientprovidedhostheader: STRING>",
    ),
)
