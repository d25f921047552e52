"""The columns a hunt reads: Athena names, raw CloudTrail keys and the read structure."""

from __future__ import annotations

import json

import pytest

from siemgen.errors import ConversionError
from siemgen.fields import ATHENA_COLUMNS
from siemgen.hunt import load_rules
from siemgen.hunt.schema import (
    OUTPUT_PATHS,
    Node,
    athena_schema,
    referenced_paths,
    select_columns,
    selection_from_structure,
)

from paths import CANONICAL


def walk(
    nodes: dict[str, Node], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Node]]:
    found = []
    for name, node in nodes.items():
        found.append(((*prefix, name), node))
        found.extend(walk(node.members, (*prefix, name)))
    return found


def test_schema_covers_every_athena_column() -> None:
    assert list(athena_schema()) == [name for name, _ in ATHENA_COLUMNS]


def test_every_athena_name_is_its_raw_key_in_lower_case() -> None:
    for path, node in walk(athena_schema()):
        assert node.raw.lower() == path[-1], path


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (("useridentity", "sessioncontext", "sessionissuer", "username"), "userName"),
        (("resources", "arn"), "ARN"),
        (("sourceipaddress",), "sourceIPAddress"),
        (("addendum", "originalrequestid"), "originalRequestID"),
        (("tlsdetails", "clientprovidedhostheader"), "clientProvidedHostHeader"),
    ],
)
def test_raw_keys(path: tuple[str, ...], raw: str) -> None:
    nodes = dict(walk(athena_schema()))
    assert nodes[path].raw == raw


def test_json_object_columns_read_as_text() -> None:
    schema = athena_schema()
    for name in ("requestparameters", "responseelements", "additionaleventdata"):
        assert schema[name].duckdb_type == "VARCHAR"


def test_resources_is_a_list_of_structs() -> None:
    resources = athena_schema()["resources"]
    assert resources.is_list
    assert resources.structure() == [{"ARN": "VARCHAR", "accountId": "VARCHAR", "type": "VARCHAR"}]


def test_referenced_paths_of_struct_members_and_lambdas() -> None:
    sql = (
        "LOWER(useridentity.sessioncontext.sessionissuer.type) = 'role' AND "
        "LEN(LIST_FILTER(resources, LAMBDA r : r.arn = 'x')) > 0 AND "
        "LEN(LIST_FILTER(TRY_CAST(JSON_EXTRACT(requestparameters, '$.items') AS JSON[]), "
        "LAMBDA e1 : SIEMGEN_JSON_SCALAR(e1, '$') = 'y')) > 0"
    )
    assert referenced_paths(sql) == {
        ("useridentity", "sessioncontext", "sessionissuer", "type"),
        ("resources",),
        ("requestparameters",),
    }


def test_selection_reads_only_named_members() -> None:
    selection = select_columns([("useridentity", "arn"), ("eventname",)])
    assert selection.structure() == {"userIdentity": {"arn": "VARCHAR"}, "eventName": "VARCHAR"}


def test_selection_of_whole_struct() -> None:
    selection = select_columns([("tlsdetails",)])
    assert selection.structure() == {
        "tlsDetails": {
            "tlsVersion": "VARCHAR",
            "cipherSuite": "VARCHAR",
            "clientProvidedHostHeader": "VARCHAR",
        }
    }


def test_selection_rejects_unknown_column() -> None:
    with pytest.raises(ConversionError, match="'useragentx'"):
        select_columns([("useragentx",)])


def test_canonical_rule_reads_few_columns() -> None:
    [detection] = load_rules([CANONICAL]).detections
    assert detection.paths == {("eventsource",), ("eventname",)}
    selection = select_columns([*detection.paths, *OUTPUT_PATHS])
    assert set(selection.structure()) == {
        "awsRegion",
        "errorCode",
        "eventID",
        "eventName",
        "eventSource",
        "eventTime",
        "recipientAccountId",
        "sourceIPAddress",
        "userIdentity",
    }


def test_covers_and_union() -> None:
    small = select_columns([("eventname",), ("useridentity", "arn")])
    other = select_columns([("useridentity", "type"), ("readonly",)])
    both = small.union(other)
    assert both.covers(small)
    assert both.covers(other)
    assert not small.covers(other)
    assert both.structure()["userIdentity"] == {"arn": "VARCHAR", "type": "VARCHAR"}


def test_selection_round_trips_through_structure() -> None:
    selection = select_columns([*OUTPUT_PATHS, ("resources",), ("requestparameters",)])
    again = selection_from_structure(json.loads(selection.key()))
    assert again.key() == selection.key()
    assert again.covers(selection)
    assert selection.covers(again)


def test_selection_from_invalid_structure() -> None:
    with pytest.raises(ValueError, match="invalid structure"):
        selection_from_structure({"eventName": 5})
