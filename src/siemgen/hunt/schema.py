"""The CloudTrail columns a hunt reads: Athena names, raw JSON keys and DuckDB types.

Rule conditions are Athena SQL, so they name the lowercase columns of the Athena CloudTrail
table (``siemgen.fields.ATHENA_COLUMNS``). DuckDB's ``from_json`` matches JSON keys
case-sensitively, so every column and struct member is read by its raw CloudTrail key
(``userIdentity.sessionContext``) and SQL then reaches it by its Athena name, because DuckDB
resolves column and struct member names case-insensitively.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from siemgen.errors import ConversionError
from siemgen.fields import ATHENA_COLUMNS, FIELDS

ColumnPath = tuple[str, ...]
"""An Athena column and its struct members, lowercase: ``("useridentity", "arn")``."""

# Raw keys of the Athena members that siemgen.fields.FIELDS does not list, from the
# CloudTrail record contents reference.
_EXTRA_RAW_KEYS: dict[ColumnPath, str] = {
    ("addendum",): "addendum",
    ("addendum", "reason"): "reason",
    ("addendum", "updatedfields"): "updatedFields",
    ("addendum", "originalrequestid"): "originalRequestID",
    ("addendum", "originaleventid"): "originalEventID",
    ("edgedevicedetails",): "edgeDeviceDetails",
    ("useridentity", "sessioncontext", "webidfederationdata", "attributes"): "attributes",
}

# Columns every hunt reads: the ones printed for a hit and the ones checked for presence.
OUTPUT_PATHS: tuple[ColumnPath, ...] = (
    ("eventtime",),
    ("eventid",),
    ("eventsource",),
    ("eventname",),
    ("awsregion",),
    ("sourceipaddress",),
    ("errorcode",),
    ("recipientaccountid",),
    ("useridentity", "type"),
    ("useridentity", "arn"),
    ("useridentity", "principalid"),
    ("useridentity", "username"),
    ("useridentity", "invokedby"),
)

REQUIRED_PATHS: tuple[ColumnPath, ...] = (
    ("eventtime",),
    ("eventid",),
    ("eventsource",),
    ("eventname",),
)
"""Fields every CloudTrail record carries; a record without them is reported."""


@dataclass(frozen=True)
class Node:
    """One column or struct member: its raw JSON key and its type.

    A leaf has ``duckdb_type`` set. A struct has ``members`` keyed by Athena name. An
    array of structs (``resources``) has ``is_list`` set and its element's ``members``.
    """

    raw: str
    duckdb_type: str | None = None
    members: dict[str, Node] = field(default_factory=dict)
    is_list: bool = False

    def structure(self) -> object:
        """Return this node as a ``from_json`` structure: a type name, a mapping or a list."""
        if self.duckdb_type is not None:
            return self.duckdb_type
        inner = {member.raw: member.structure() for member in self.members.values()}
        return [inner] if self.is_list else inner


def _split_members(text: str) -> list[str]:
    """Split a Hive type list on the commas that are not inside ``<...>``."""
    parts: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _raw_keys() -> dict[ColumnPath, str]:
    keys = dict(_EXTRA_RAW_KEYS)
    for cloudtrail_field in FIELDS:
        if cloudtrail_field.athena is None:
            continue
        athena_parts = cloudtrail_field.athena.split(".")
        raw_parts = cloudtrail_field.raw.split(".")
        if len(athena_parts) != len(raw_parts):
            continue
        for end in range(1, len(athena_parts) + 1):
            keys.setdefault(tuple(athena_parts[:end]), raw_parts[end - 1])
    return keys


def _parse(hive_type: str, path: ColumnPath, raw_keys: dict[ColumnPath, str]) -> Node:
    text = hive_type.strip()
    upper = text.upper()
    raw = raw_keys.get(path)
    if raw is None:
        raise ValueError(f"no raw CloudTrail key is known for Athena column {'.'.join(path)!r}")
    if upper == "STRING":
        # A STRING column holding a JSON object reads as the object's JSON text.
        return Node(raw, duckdb_type="VARCHAR")
    if upper.startswith("MAP<"):
        return Node(raw, duckdb_type="MAP(VARCHAR, VARCHAR)")
    if upper.startswith("ARRAY<STRUCT<") and text.endswith(">>"):
        element = _parse(text[6:-1], path, raw_keys)
        return Node(raw, members=element.members, is_list=True)
    if upper.startswith("STRUCT<") and text.endswith(">"):
        members: dict[str, Node] = {}
        for member in _split_members(text[7:-1]):
            name, _, member_type = member.partition(":")
            name = name.strip().lower()
            members[name] = _parse(member_type, (*path, name), raw_keys)
        return Node(raw, members=members)
    raise ValueError(f"unsupported Athena type {hive_type!r} for column {'.'.join(path)!r}")


@functools.cache
def athena_schema() -> dict[str, Node]:
    """Return every Athena CloudTrail column as a tree of raw keys and DuckDB types.

    The tree is built once and shared, so callers must not change it.
    """
    raw_keys = _raw_keys()
    return {name: _parse(hive_type, (name,), raw_keys) for name, hive_type in ATHENA_COLUMNS}


def referenced_paths(duckdb_sql: str) -> set[ColumnPath]:
    """Return the column paths a DuckDB SQL condition reads, lowercase."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise ConversionError(f"the DuckDB condition does not parse: {error}") from error
    paths: set[ColumnPath] = set()
    for column in tree.find_all(exp.Column):
        parts = [part.name.lower() for part in column.parts]
        parent = column.parent
        while isinstance(parent, exp.Dot) and isinstance(parent.expression, exp.Identifier):
            parts.append(parent.expression.name.lower())
            parent = parent.parent
        paths.add(tuple(parts))
    return paths


@dataclass(frozen=True)
class Selection:
    """The subset of the Athena columns that one hunt reads, as a tree of nodes."""

    columns: dict[str, Node]

    def structure(self) -> dict[str, object]:
        """Return the ``from_json`` structure of one record with these columns."""
        return {node.raw: node.structure() for node in self.columns.values()}

    def key(self) -> str:
        """Return the structure as canonical JSON text, to compare selections."""
        return json.dumps(self.structure(), sort_keys=True, separators=(",", ":"))

    def covers(self, other: Selection) -> bool:
        """Tell whether every column and member of ``other`` is in this selection."""
        return _covers(self.columns, other.columns)

    def union(self, other: Selection) -> Selection:
        """Return the selection with the columns of both."""
        return Selection(_merge(self.columns, other.columns))


def _covers(have: dict[str, Node], need: dict[str, Node]) -> bool:
    for name, node in need.items():
        present = have.get(name)
        if present is None or present.raw != node.raw or present.is_list != node.is_list:
            return False
        if present.duckdb_type != node.duckdb_type:
            return False
        if not _covers(present.members, node.members):
            return False
    return True


def _merge(left: dict[str, Node], right: dict[str, Node]) -> dict[str, Node]:
    merged = dict(left)
    for name, node in right.items():
        if name in merged and node.duckdb_type is None:
            base = merged[name]
            merged[name] = Node(
                base.raw, members=_merge(base.members, node.members), is_list=base.is_list
            )
        else:
            merged.setdefault(name, node)
    return dict(sorted(merged.items()))


def _select(schema: dict[str, Node], path: ColumnPath) -> dict[str, Node] | None:
    """Return the one-branch tree for ``path``, or None when the column does not exist."""
    head, rest = path[0], path[1:]
    node = schema.get(head)
    if node is None:
        return None
    if not rest or node.duckdb_type is not None:
        # A whole struct, or a path that reaches below a STRING column: read the node whole.
        return {head: node}
    branch = _select(node.members, rest)
    if branch is None:
        # Not a member: a function applied to the struct, or a member the table lacks.
        return {head: node}
    return {head: Node(node.raw, members=branch, is_list=node.is_list)}


def select_columns(paths: Iterable[ColumnPath], schema: dict[str, Node] | None = None) -> Selection:
    """Build the selection that reads ``paths``, raising ConversionError for unknown columns."""
    tree = schema if schema is not None else athena_schema()
    columns: dict[str, Node] = {}
    for path in sorted(set(paths)):
        branch = _select(tree, path)
        if branch is None:
            raise ConversionError(
                f"the condition reads column {'.'.join(path)!r}, which the Athena CloudTrail "
                "table does not have",
                hint="name a field listed in siemgen.fields",
            )
        columns = _merge(columns, branch)
    return Selection(columns)


def _node_from_structure(raw: str, value: object) -> Node:
    if isinstance(value, str):
        return Node(raw, duckdb_type=value)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return Node(raw, members=_members_from_structure(value[0]), is_list=True)
    if isinstance(value, dict):
        return Node(raw, members=_members_from_structure(value))
    raise ValueError(f"invalid structure for {raw!r}: {value!r}")


def _members_from_structure(structure: dict[str, object]) -> dict[str, Node]:
    # Every Athena CloudTrail name is the raw CloudTrail key in lower case.
    members = {
        str(raw).lower(): _node_from_structure(str(raw), value) for raw, value in structure.items()
    }
    return dict(sorted(members.items()))


def selection_from_structure(structure: object) -> Selection:
    """Rebuild a selection from the structure that ``Selection.structure`` returned."""
    if not isinstance(structure, dict):
        raise ValueError(f"a record structure must be a JSON object, not {structure!r}")
    return Selection(_members_from_structure(structure))
