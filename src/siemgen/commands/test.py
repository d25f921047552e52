"""The `siemgen test` command: run each rule's test events through its generated queries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from siemgen.errors import ConfigError, SiemgenError

if TYPE_CHECKING:
    from siemgen.ruletest import TestReport

FORMATS = ("text", "json")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def test_command(
    rules: Annotated[
        list[Path] | None,
        typer.Argument(help="Rule files or folders (searched recursively). Default: sigma/."),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help="Test only this target: athena, elastic, splunk or cloudwatch; repeat for "
            "several. Default: all (see `siemgen targets`).",
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="What to print on stdout: text (one line per rule and the counts) or json "
            "(the full report).",
        ),
    ] = "text",
    junit: Annotated[
        Path | None,
        typer.Option(help="Also write the report as JUnit XML to this file, for CI."),
    ] = None,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the report as JSON to this file."),
    ] = None,
    splunk_index: Annotated[
        str | None,
        typer.Option(help="Splunk index the searches name (adds index=NAME)."),
    ] = None,
    athena_table: Annotated[
        str,
        typer.Option(help="Athena table the SQL reads; the local DuckDB table gets this name."),
    ] = "cloudtrail_logs",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug output.")] = False,
) -> None:
    """Run every rule's test events through its Athena, Elastic and CloudWatch queries.

    Athena SQL runs on DuckDB, Elastic EQL in Elastic's eql engine and the CloudWatch filter
    pattern in siemgen's evaluator; Lucene, ES|QL and SPL queries are parsed and their fields
    checked. Exit status: 0 when every rule passed, 1 when a test failed or a rule or test
    file is invalid, 2 on a usage error.
    """
    from siemgen.cli import err, setup_logging

    setup_logging(verbose)
    rule_paths = rules or [Path("sigma")]
    try:
        _check_reports(rule_paths, junit, json_file)
        report = _run(rule_paths, target, output_format, splunk_index, athena_table)
    except ConfigError as error:
        if verbose:
            raise
        err(f"error: {error}")
        raise typer.Exit(EXIT_USAGE) from error
    _write_reports(report, output_format, junit, json_file)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def _run(
    paths: list[Path],
    targets: list[str] | None,
    output_format: str,
    splunk_index: str | None,
    athena_table: str,
) -> TestReport:
    from siemgen.ruletest import run_paths
    from siemgen.targets import TargetOptions

    if output_format not in FORMATS:
        raise ConfigError(f"unknown format {output_format!r}; choose one of {', '.join(FORMATS)}")
    for path in paths:
        if not path.exists():
            raise ConfigError(
                "rule path not found", path=path, hint="pass a rule file or a folder of rules"
            )
    options = TargetOptions(splunk_index=splunk_index, athena_table=athena_table)
    return run_paths(paths, options, targets)


def _check_reports(rule_paths: list[Path], junit: Path | None, json_file: Path | None) -> None:
    """Raise ConfigError unless the report files are distinct and none is a rule input."""
    from siemgen.output import check_report_path, reject_input
    from siemgen.rules import RULE_INPUT_SUFFIXES, rule_inputs

    reports = {"--junit": junit, "--json": json_file}
    for option, path in reports.items():
        if path is None:
            continue
        if path == Path("-"):
            raise ConfigError(f"{option} needs a file path; the text report goes to stdout")
        check_report_path(path, option)
        inputs = rule_inputs(rule_paths)
        reject_input(path, option, inputs, RULE_INPUT_SUFFIXES, "rule and test files")
    if junit is not None and json_file is not None and junit.resolve() == json_file.resolve():
        raise ConfigError(
            "--junit and --json name the same file", path=junit, hint="give each its own file"
        )


def _write_reports(
    report: TestReport, output_format: str, junit: Path | None, json_file: Path | None
) -> None:
    from siemgen.cli import echo, err
    from siemgen.output import write_report
    from siemgen.ruletest import summary_lines, to_json
    from siemgen.ruletest.junit import to_junit

    try:
        if junit is not None:
            write_report(junit, to_junit(report), "--junit")
        if json_file is not None:
            write_report(json_file, to_json(report).encode("utf-8"), "--json")
    except (SiemgenError, OSError) as error:
        err(f"error: {error}")
        raise typer.Exit(EXIT_USAGE) from error
    lines = summary_lines(report)
    if output_format == "json":
        typer.echo(to_json(report), nl=False)
        err(lines[-1])
        return
    for line in lines:
        echo(line)
