"""Test rules with the CloudTrail records stored beside them, on local query engines.

``run_tests(collection, options)`` returns a ``TestReport``; ``summary_lines``, ``to_json``
and ``write_junit`` turn the report into the human summary, JSON and JUnit XML.
"""

from siemgen.ruletest.events import (
    TestEvent,
    TestFile,
    TestFileError,
    TestGroup,
    load_tests,
    parse_tests,
    rule_tests_path,
)
from siemgen.ruletest.junit import to_junit, write_junit
from siemgen.ruletest.report import (
    GroupResult,
    RecordResult,
    RuleResult,
    TargetResult,
    TestReport,
    summary_lines,
    to_json,
)
from siemgen.ruletest.runner import orphan_test_files, run_paths, run_tests

__all__ = [
    "GroupResult",
    "RecordResult",
    "RuleResult",
    "TargetResult",
    "TestEvent",
    "TestFile",
    "TestFileError",
    "TestGroup",
    "TestReport",
    "load_tests",
    "orphan_test_files",
    "parse_tests",
    "run_paths",
    "run_tests",
    "summary_lines",
    "rule_tests_path",
    "to_json",
    "to_junit",
    "write_junit",
]
