"""Hunt: run Sigma rules over CloudTrail log files on disk with DuckDB, in one scan.

``hunt()`` loads the rules, finds the log files and returns the matching records. ``Hunt``
runs already converted detections, for callers that convert once and scan many times.
"""

from __future__ import annotations

from siemgen.hunt.detections import Detection, compile_rule, compile_rules
from siemgen.hunt.logs import LogFile, Skipped, TimeRange, find_log_files, parse_time
from siemgen.hunt.results import FileScan, Hit
from siemgen.hunt.run import (
    Hunt,
    HuntResult,
    Progress,
    RuleSet,
    check_paths,
    hunt,
    load_rules,
)

__all__ = [
    "Detection",
    "FileScan",
    "Hit",
    "Hunt",
    "HuntResult",
    "LogFile",
    "Progress",
    "RuleSet",
    "Skipped",
    "TimeRange",
    "check_paths",
    "compile_rule",
    "compile_rules",
    "find_log_files",
    "hunt",
    "load_rules",
    "parse_time",
]
