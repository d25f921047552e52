"""The `siemgen hunt` command: run the rules over CloudTrail log files on disk."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from siemgen.errors import ConfigError, SiemgenError

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# The progress bar appears only once a scan has run this long, so quick hunts print none.
PROGRESS_DELAY_SECONDS = 1.0


class ProgressBar:
    """A progress bar on stderr, in bytes of log files scanned, shown once a scan is slow."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.started = time.monotonic()
        self.bar: Any = None

    def start(self, total_bytes: int) -> None:
        """Set the number of bytes the scan will read."""
        self.total = total_bytes
        self.started = time.monotonic()

    def advance(self, scanned_bytes: int) -> None:
        """Count bytes just scanned, opening the bar once the scan has taken a while."""
        self.done += scanned_bytes
        if self.bar is None and time.monotonic() - self.started >= PROGRESS_DELAY_SECONDS:
            self.bar = typer.progressbar(
                length=max(self.total, 1), label="Scanning", file=sys.stderr
            )
            self.bar.__enter__()
            self.bar.update(self.done)
        elif self.bar is not None:
            self.bar.update(scanned_bytes)

    def finish(self) -> None:
        """Close the bar if it was shown."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def hunt_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            # An unreadable log path is skipped with a warning by the hunt, not refused here.
            readable=False,
            help="CloudTrail log files (.json.gz, .json, .jsonl, .jsonl.gz, .ndjson, .ndjson.gz) "
            "or folders of them, searched recursively; AWSLogs/ folders as a trail writes them "
            "to S3 work.",
            show_default=False,
        ),
    ],
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules", "-r", help="Rule file or folder; repeat for several. Default: sigma/."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only records with eventTime at or after this ISO 8601 date or date-time "
            "(UTC unless it has an offset), e.g. 2024-03-01 or 2024-03-01T12:00:00Z.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Only records with eventTime at or before this ISO 8601 date or date-time; "
            "a date alone includes that whole day.",
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Output format: table, jsonl (one compact JSON object per rule and record), "
            "csv, or json (one document with the counts and skipped files). Default: the "
            "format an --output file's suffix names (.csv, .json, .jsonl, .ndjson), else table "
            "on a terminal and jsonl otherwise.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the results to this file instead of stdout (- for stdout).",
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Folder for Parquet copies of the records read, reused while a log file's "
            "path, size and modification time stay the same, and for the converted rules. "
            "siemgen trusts what it finds there: keep it where only you can write.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug output and show tracebacks.")
    ] = False,
) -> None:
    """Run the rules over CloudTrail log files and print the records they match.

    Warnings and a per-rule summary go to stderr. Exit status: 0 when every file was read
    and every rule ran (with or without matches), 1 when a file, folder or rule was
    skipped (each is printed as one warning line), 2 on a usage error.
    """
    from siemgen.cli import err, setup_logging

    setup_logging(verbose)
    if output == Path("-"):
        output = None
    try:
        code = _run(paths, rules, since, until, output_format, output, cache)
    except ConfigError as error:
        if verbose:
            raise
        err(f"error: {error}")
        raise typer.Exit(EXIT_USAGE) from error
    except KeyboardInterrupt as error:
        err("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from error
    except SiemgenError as error:
        if verbose:
            raise
        err(f"error: {error}")
        raise typer.Exit(EXIT_INCOMPLETE) from error
    raise typer.Exit(code)


def _run(
    paths: list[Path],
    rules: list[Path] | None,
    since: str | None,
    until: str | None,
    output_format: str | None,
    output: Path | None,
    cache: Path | None,
) -> int:
    import duckdb

    from siemgen.cli import err
    from siemgen.hunt import Hunt, TimeRange, check_paths, load_rules, parse_time
    from siemgen.hunt.output import check_format, default_format, render_results, summary_lines
    from siemgen.output import check_report_path, write_report

    time_range = TimeRange(
        since=parse_time(since) if since is not None else None,
        until=parse_time(until, end_of_day=True) if until is not None else None,
    )
    if time_range.since and time_range.until and time_range.since > time_range.until:
        raise ConfigError(
            f"--since {since!r} is later than --until {until!r}",
            hint="give a start before the end",
        )
    if output_format is None:
        name = None if output is None else output.name
        output_format = default_format(name, sys.stdout.isatty())
    check_format(output_format)
    if output is not None:
        check_report_path(output, "--output")

    rule_paths = rules or [Path("sigma")]
    check_paths(paths, rule_paths, output, cache)
    rule_set = load_rules(rule_paths, cache)
    for error in rule_set.errors:
        err(f"warning: rule skipped: {error}")
    for line in rule_set.shared_id_warnings():
        err(f"warning: {line}")
    if not rule_set.detections and not rule_set.errors:
        raise SiemgenError(
            "none of the rules is for AWS CloudTrail (logsource product: aws, service: cloudtrail)",
            hint="pass CloudTrail rules with --rules",
        )
    if not rule_set.detections:
        raise SiemgenError("no rule can run in a hunt", hint="fix the rule errors listed above")

    progress = ProgressBar() if sys.stderr.isatty() else None
    runner = Hunt(rule_set.detections, time_range, cache, progress)
    try:
        result = runner.run(paths, output)
    except duckdb.InterruptException as error:
        raise KeyboardInterrupt from error
    except RuntimeError as error:
        # DuckDB reports Ctrl-C during a fetch as a RuntimeError, not as InterruptException.
        if "interrupted" not in str(error).lower():
            raise
        raise KeyboardInterrupt from error
    except duckdb.Error as error:
        # Unreadable log files are skipped one by one, so an error that gets here most likely
        # comes from the rules' SQL, which the cached detections.json supplies with --cache.
        hint = "delete the --cache folder and hunt again" if cache else "report the rule"
        raise SiemgenError(f"DuckDB failed: {' '.join(str(error).split())}", hint=hint) from error
    finally:
        if progress is not None:
            progress.finish()

    for skipped in result.skipped:
        err(f"warning: {skipped.path}: skipped: {skipped.reason}")
    for warning in result.warnings:
        err(f"warning: {warning}")

    data = render_results(result, rule_set, output_format)
    if output is None:
        _write_stdout(data)
    else:
        write_report(output, data, "--output")
    for line in summary_lines(result, rule_set):
        err(line)
    incomplete = result.skipped or result.files_read_in_part or rule_set.errors
    return EXIT_INCOMPLETE if incomplete else EXIT_OK


def _write_stdout(data: bytes) -> None:
    """Write the results to stdout, stopping quietly when the reader closes the pipe."""
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # The reader (``| head``) has gone; point stdout at /dev/null so that Python's final
        # flush does not fail again, as the Python signal documentation advises.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
