"""Run every rule's test events through the generated queries on local engines.

Athena SQL runs on DuckDB over one CloudTrail table per run, EQL runs in Elastic's ``eql``
Python engine over the records as the Elastic AWS integration indexes them, and a rule's
CloudWatch metric filter pattern runs in ``siemgen.engines.cloudwatch``. Lucene, ES|QL and
SPL queries are parsed and their field names checked, because no local engine runs them.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from siemgen import fields
from siemgen.convert import Converter
from siemgen.engines import duckdb as duckdb_engine
from siemgen.engines import eql as eql_engine
from siemgen.engines import esql, lucene, spl
from siemgen.errors import ConfigError, SiemgenError
from siemgen.pipelines.elastic import elastic_fields
from siemgen.rules import TESTS_SUFFIX, Collection, RuleFile, find_rule_files, load_collection
from siemgen.ruletest.events import (
    TARGETS,
    TestFile,
    TestFileError,
    load_tests,
    rule_tests_path,
)
from siemgen.ruletest.report import (
    RECORDS,
    STRUCTURE,
    GroupResult,
    RecordResult,
    RuleResult,
    TargetResult,
    TestReport,
)
from siemgen.targets import TargetOptions

logger = logging.getLogger(__name__)

ATHENA = "athena"
ELASTIC = "elastic"
SPLUNK = "splunk"
CLOUDWATCH = "cloudwatch"
LUCENE = "elastic/lucene"
ESQL = "elastic/esql"
CLOUDWATCH_MODULE = "siemgen.engines.cloudwatch"

Record = Mapping[str, Any]


@dataclass
class _RuleRun:
    """One rule with its test file, while the run fills in its result."""

    rule: RuleFile
    result: RuleResult
    tests: TestFile | None = None

    def records(self) -> list[Record]:
        return self.tests.records() if self.tests else []

    def event_ids(self) -> set[str]:
        return {event.event_id for _, event in self.tests.events()} if self.tests else set()


def _selected_targets(targets: Iterable[str] | None) -> tuple[str, ...]:
    if targets is None:
        return TARGETS
    chosen = tuple(dict.fromkeys(targets))
    unknown = [name for name in chosen if name not in TARGETS]
    if unknown:
        raise ConfigError(
            f"unknown target {unknown[0]!r}; known targets: {', '.join(TARGETS)}",
            hint="cloudwatch tests the rule's CloudWatch metric filter pattern",
        )
    return chosen


def _test_options(options: TargetOptions) -> TargetOptions:
    """Return the options the tests convert with: no time window, the CloudTrail table layout."""
    if options.athena_profile != "cloudtrail":
        raise ConfigError(
            f"Athena profile {options.athena_profile!r} cannot be tested locally",
            hint="the DuckDB table has the CloudTrail layout; test with the 'cloudtrail' profile",
        )
    # A time window relative to now would make the result depend on when the test runs.
    return dataclasses.replace(options, athena_lookback=None)


def _filter_pattern(rule: RuleFile) -> str | None:
    cloudwatch = rule.custom("cloudwatch")
    if isinstance(cloudwatch, Mapping):
        pattern = cloudwatch.get("filter_pattern")
        if isinstance(pattern, str) and pattern.strip():
            return pattern
    return None


def _prepare(rule: RuleFile, record_targets: Sequence[str]) -> _RuleRun:
    """Read the rule's test file and apply the ``tests`` key and the minimum-tests gate."""
    run = _RuleRun(rule=rule, result=RuleResult(path=rule.path, title=rule.title, stem=rule.stem))
    setting = rule.custom("tests")
    if setting is not None:
        reason = setting.get("skip") if isinstance(setting, Mapping) else None
        if (
            not isinstance(setting, Mapping)
            or set(setting) != {"skip"}
            or not (isinstance(reason, str) and reason.strip())
        ):
            line = rule.line_of("tests")
            where = f"line {line}: " if line else ""
            run.result.problems.append(
                f"{where}'tests' must be a mapping with one key, skip: \"<reason>\", "
                f"not {setting!r}"
            )
        else:
            run.result.skip_reason = reason
    path = rule_tests_path(rule.path)
    if path.exists():
        run.result.tests_path = path
        try:
            run.tests = load_tests(path)
        except TestFileError as error:
            run.result.problems.extend(f"{path}: {problem}" for problem in error.problems)
    if run.result.skip_reason is None and not run.result.problems:
        run.result.problems.extend(_gate(run, path, record_targets))
    return run


def _gate(run: _RuleRun, path: Path, record_targets: Sequence[str]) -> list[str]:
    """Return problems when a target lacks a record that must match or one that must not."""
    if run.tests is None:
        return [
            f"no test file {path}: add records that must match and must not match, or set "
            'tests: {skip: "<reason>"} in the rule'
        ]
    problems = []
    for target in record_targets:
        if target == CLOUDWATCH and _filter_pattern(run.rule) is None:
            continue
        verdicts = [group.expects_match(target) for group, _ in run.tests.events()]
        matches, misses = verdicts.count(True), verdicts.count(False)
        if matches == 0 or misses == 0:
            problems.append(
                f"{target}: the test file needs at least one record that must match and one "
                f"that must not match ({matches} must match, {misses} must not)"
            )
    return problems


def _group_results(run: _RuleRun, target: str, matched: set[str]) -> list[GroupResult]:
    results = []
    assert run.tests is not None
    for group in run.tests.groups:
        expected = group.expects_match(target)
        records = [
            RecordResult(event.event_id, event.reason, expected, event.event_id in matched)
            for event in group.events
        ]
        results.append(GroupResult(name=group.name, reason=group.reason, records=records))
    return results


class _AthenaTables:
    """DuckDB tables that hold the run's records, each eventID once per table."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.batches: list[tuple[duckdb.DuckDBPyConnection, set[str]]] = []
        self.placement: dict[int, duckdb.DuckDBPyConnection] = {}
        self.failures: dict[int, str] = {}

    def _connection(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        duckdb_engine.create_cloudtrail_table(con, self.table)
        return con

    def load(self, runs: Sequence[_RuleRun]) -> None:
        """Place every rule's records in the first table that has none of its eventIDs."""
        pending: dict[int, list[_RuleRun]] = {}
        for run in runs:
            ids = run.event_ids()
            if not ids:
                continue
            index = next(
                (number for number, (_, used) in enumerate(self.batches) if not used & ids),
                None,
            )
            if index is None:
                self.batches.append((self._connection(), set()))
                index = len(self.batches) - 1
            self.batches[index][1].update(ids)
            pending.setdefault(index, []).append(run)
        for index, batch_runs in pending.items():
            con = self.batches[index][0]
            records = [record for run in batch_runs for record in run.records()]
            try:
                duckdb_engine.load_records(con, records, self.table)
            except duckdb.Error as error:
                logger.debug("loading %d records at once failed: %s", len(records), error)
                # Load each rule alone so the failure stays with the rule whose record broke it.
                for run in batch_runs:
                    self._load_alone(run)
                continue
            for run in batch_runs:
                self.placement[id(run)] = con

    def _load_alone(self, run: _RuleRun) -> None:
        con = self._connection()
        try:
            duckdb_engine.load_records(con, run.records(), self.table)
        except duckdb.Error as error:
            self.failures[id(run)] = f"DuckDB could not load the test records: {error}"
            return
        self.placement[id(run)] = con

    def matching(self, run: _RuleRun, sql: str) -> set[str]:
        """Return the eventIDs of the rule's own records that the SQL returns."""
        if id(run) in self.failures:
            raise _EngineFailure(self.failures[id(run)])
        con = self.placement[id(run)]
        try:
            found = duckdb_engine.matching_event_ids(con, sql, self.table)
        except duckdb.Error as error:
            raise _EngineFailure(f"DuckDB failed to run the Athena SQL: {error}") from error
        return found & run.event_ids()


class _EngineFailure(Exception):
    """An engine could not evaluate a query; the message goes into the target's problems."""


@dataclass
class _Context:
    """State shared by every rule's run: converter, options, selected targets and engines."""

    converter: Converter
    options: TargetOptions
    targets: tuple[str, ...]
    athena: _AthenaTables | None
    documents: dict[int, dict[str, Any]] = field(default_factory=dict)

    def document(self, record: Record) -> dict[str, Any]:
        key = id(record)
        if key not in self.documents:
            self.documents[key] = eql_engine.elastic_document(record)
        return self.documents[key]


def _timed(result: TargetResult, work: Callable[[], None]) -> TargetResult:
    started = time.perf_counter()
    try:
        work()
    except SiemgenError as error:
        result.problems.append(str(error))
    except _EngineFailure as error:
        result.problems.append(str(error))
    result.seconds = time.perf_counter() - started
    return result


def _record_target(
    run: _RuleRun,
    context: _Context,
    target: str,
    query_of: Callable[[TargetResult], str],
    matching: Callable[[str], set[str]],
) -> TargetResult:
    """Convert the rule, run the query on the rule's records and compare with the verdicts."""
    result = TargetResult(target=target, kind=RECORDS)

    def work() -> None:
        result.query = query_of(result)
        if run.tests is None or not run.records():
            result.skipped = "the rule has no test records"
            return
        matched = matching(result.query)
        result.groups = _group_results(run, target, matched)

    return _timed(result, work)


def _athena_target(run: _RuleRun, context: _Context) -> TargetResult:
    def matching(sql: str) -> set[str]:
        assert context.athena is not None
        return context.athena.matching(run, sql)

    return _record_target(
        run, context, ATHENA, lambda _: context.converter.convert(run.rule, ATHENA), matching
    )


def _elastic_target(run: _RuleRun, context: _Context) -> TargetResult:
    compiled: list[eql_engine.EqlQuery] = []

    def query_of(result: TargetResult) -> str:
        text = context.converter.convert(run.rule, ELASTIC, "eql")
        result.query = text
        compiled.append(eql_engine.compile_query(text))
        result.warnings.extend(compiled[0].notes)
        return text

    def matching(text: str) -> set[str]:
        records = run.records()
        positions = compiled[0].matching([context.document(record) for record in records])
        return {str(records[index]["eventID"]) for index in positions}

    return _record_target(run, context, ELASTIC, query_of, matching)


def _cloudwatch_target(run: _RuleRun, context: _Context, pattern: str) -> TargetResult:
    try:
        module = importlib.import_module(CLOUDWATCH_MODULE)
    except ImportError:
        # TODO: remove this branch once siemgen.engines.cloudwatch ships with siemgen.
        return TargetResult(
            target=CLOUDWATCH,
            kind=RECORDS,
            query=pattern,
            skipped=f"the filter-pattern evaluator {CLOUDWATCH_MODULE} is not installed",
        )
    evaluate: Callable[[str, Record], bool] = module.matches

    def matching(text: str) -> set[str]:
        return {str(record["eventID"]) for record in run.records() if evaluate(text, record)}

    return _record_target(run, context, CLOUDWATCH, lambda _: pattern, matching)


def _elastic_names() -> tuple[set[str], tuple[str, ...]]:
    prefixes = tuple(f"{column.elastic_flattened}." for column in fields.JsonColumn)
    return elastic_fields(), prefixes


def _splunk_names() -> tuple[set[str], tuple[str, ...]]:
    prefixes = tuple(f"{column.value}." for column in fields.JsonColumn)
    return {known.splunk for known in fields.FIELDS}, prefixes


def _structure_target(
    run: _RuleRun,
    context: _Context,
    target: str,
    convert: Callable[[], str],
    check: Callable[[str], tuple[list[str], list[str]]],
) -> TargetResult:
    result = TargetResult(target=target, kind=STRUCTURE)

    def work() -> None:
        result.query = convert()
        problems, warnings = check(result.query)
        result.problems.extend(problems)
        result.warnings.extend(warnings)

    return _timed(result, work)


def _check_lucene(query: str) -> tuple[list[str], list[str]]:
    allowed, prefixes = _elastic_names()
    return lucene.check(query, allowed, prefixes), lucene.warnings(query)


def _esql_checker(index: str) -> Callable[[str], tuple[list[str], list[str]]]:
    def check(query: str) -> tuple[list[str], list[str]]:
        allowed, prefixes = _elastic_names()
        problems = esql.check(query, allowed, prefixes, index=index)
        parsed = None if problems else esql.parse(query)
        flattened = [
            name for name in (parsed.fields if parsed else []) if name.startswith(prefixes)
        ]
        warnings = [
            f"{name}: ES|QL reads flattened sub-fields only on Elasticsearch versions with "
            "flattened support in ES|QL; older versions reject the query"
            for name in flattened
        ]
        return problems, warnings

    return check


def _check_spl(query: str) -> tuple[list[str], list[str]]:
    known, prefixes = _splunk_names()
    return spl.check(query, known, prefixes), []


def _run_rule(run: _RuleRun, context: _Context) -> None:
    """Fill in the result of every selected target for one rule."""
    targets = run.result.targets
    if ATHENA in context.targets:
        targets.append(_athena_target(run, context))
    if ELASTIC in context.targets:
        targets.append(_elastic_target(run, context))
        targets.append(
            _structure_target(
                run,
                context,
                LUCENE,
                lambda: context.converter.convert(run.rule, ELASTIC, "lucene"),
                _check_lucene,
            )
        )
        targets.append(
            _structure_target(
                run,
                context,
                ESQL,
                lambda: context.converter.convert(run.rule, ELASTIC, "esql"),
                _esql_checker(context.options.elastic_index),
            )
        )
    if SPLUNK in context.targets:
        targets.append(
            _structure_target(
                run,
                context,
                SPLUNK,
                lambda: context.converter.convert(run.rule, SPLUNK),
                _check_spl,
            )
        )
    pattern = _filter_pattern(run.rule)
    if CLOUDWATCH in context.targets and pattern is not None:
        targets.append(_cloudwatch_target(run, context, pattern))


def run_tests(
    collection: Collection,
    options: TargetOptions | None = None,
    targets: Iterable[str] | None = None,
) -> TestReport:
    """Run every rule's test events through its generated queries and collect the results.

    ``targets`` limits the run to some of ``athena``, ``elastic``, ``splunk`` and
    ``cloudwatch``. Raises ConfigError for an unknown target or options that cannot be tested.
    """
    selected = _selected_targets(targets)
    test_options = _test_options(options or TargetOptions())
    record_targets = [name for name in selected if name in (ATHENA, ELASTIC, CLOUDWATCH)]
    runs = [_prepare(rule, record_targets) for rule in collection.rules]
    athena = _AthenaTables(test_options.athena_table) if ATHENA in selected else None
    if athena is not None:
        athena.load([run for run in runs if run.tests is not None])
    context = _Context(Converter(test_options), test_options, selected, athena)
    for run in runs:
        _run_rule(run, context)
    return TestReport(rules=[run.result for run in runs], errors=list(collection.errors))


def orphan_test_files(paths: Iterable[Path]) -> list[TestFileError]:
    """Return an error for each test file under ``paths`` that has no rule file beside it."""
    rule_files = {path.resolve() for path in find_rule_files(paths)}
    expected = {rule_tests_path(path) for path in rule_files}
    orphans = []
    for path in paths:
        if not path.is_dir():
            continue
        for candidate in sorted(path.rglob(f"*{TESTS_SUFFIX}")):
            if candidate.resolve() not in expected:
                stem = candidate.name[: -len(TESTS_SUFFIX)]
                orphans.append(
                    TestFileError(
                        candidate,
                        [f"no rule file {stem}.yml beside it; rename it or remove it"],
                    )
                )
    return orphans


def run_paths(
    paths: Sequence[Path],
    options: TargetOptions | None = None,
    targets: Iterable[str] | None = None,
) -> TestReport:
    """Load the rules under ``paths``, test them, and report test files that have no rule."""
    collection = load_collection(paths)
    report = run_tests(collection, options, targets)
    report.errors.extend(orphan_test_files(paths))
    return report
