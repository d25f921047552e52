"""Benchmark one `siemgen build` process against sigma-cli run once per target and format.

Both sides convert the same copy of the rules: the project rules in ``sigma/`` plus the
community SigmaHQ CloudTrail corpus. siemgen writes the query files of every target, the pages
and the deployable artifacts in one process. sigma-cli runs five processes: ``splunk``,
``lucene``, ``esql`` and ``eql`` with ``--without-pipeline``, because siemgen's Splunk and
Elastic pipelines are Python objects that sigma-cli cannot load, and ``athena`` with siemgen's
``athena-cloudtrail`` plugin pipeline. Each sigma-cli process writes one file per rule with
``--output-dir``. Measured rounds alternate the two sides (siemgen, sigma-cli, siemgen, ...),
and every process is timed by wall clock from start to exit.

    .venv/bin/python benchmarks/build.py --runs 7 --write-doc
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _common as common

from siemgen.errors import ConfigError, SiemgenError

GOAL = 3.0
# sigma-cli runs: label, target and pipeline arguments, output file suffix.
SIGMA_CLI_RUNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("splunk", ("-t", "splunk", "--without-pipeline"), ".spl"),
    ("lucene", ("-t", "lucene", "--without-pipeline"), ".lucene"),
    ("esql", ("-t", "esql", "--without-pipeline"), ".esql"),
    ("eql", ("-t", "eql", "--without-pipeline"), ".eql"),
    ("athena", ("-t", "athena", "-p", "athena-cloudtrail"), ".sql"),
)
HEADERS = ("process", "median s", "min s", "max s", "median CPU s", "peak RSS MiB", "files")


@dataclass
class Measurements:
    """The timed runs of both sides, one entry per measured round."""

    siemgen: list[common.Run] = field(default_factory=list)
    siemgen_files: int = 0
    sigma_cli: dict[str, list[common.Run]] = field(default_factory=dict)
    sigma_cli_files: dict[str, int] = field(default_factory=dict)

    def sigma_cli_totals(self) -> list[float]:
        """Return the summed wall time of the sigma-cli processes of each round."""
        rounds = zip(*self.sigma_cli.values(), strict=True)
        return [sum(run.wall for run in runs) for runs in rounds]

    def sigma_cli_cpu_totals(self) -> list[float]:
        """Return the summed CPU time of the sigma-cli processes of each round."""
        rounds = zip(*self.sigma_cli.values(), strict=True)
        return [sum(run.cpu for run in runs) for runs in rounds]

    def ratio(self) -> float:
        """Return the median sigma-cli wall-time total divided by the median siemgen build."""
        siemgen = common.median([run.wall for run in self.siemgen])
        return common.median(self.sigma_cli_totals()) / siemgen

    def cpu_ratio(self) -> float:
        """Return the median sigma-cli CPU-time total divided by siemgen's median CPU time."""
        siemgen = common.median([run.cpu for run in self.siemgen])
        return common.median(self.sigma_cli_cpu_totals()) / siemgen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="Measured rounds (default 7).")
    parser.add_argument(
        "--warmup", type=int, default=1, help="Untimed rounds before measuring (default 1)."
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help=f"Folder of extra Sigma rules (default {common.CORPUS} when it exists).",
    )
    parser.add_argument(
        "--no-corpus", action="store_true", help="Build the project rules in sigma/ only."
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="Seconds before a process is killed."
    )
    parser.add_argument(
        "--write-doc", action="store_true", help="Update the build section of the doc page."
    )
    parser.add_argument(
        "--doc", type=Path, default=common.DOC, help="Doc page that --write-doc updates."
    )

    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    return args


def count_files(folder: Path) -> int:
    """Count the files under ``folder``."""
    return sum(1 for path in folder.rglob("*") if path.is_file())


def run_siemgen(
    rules: Path, work: Path, env: dict[str, str], timeout: float
) -> tuple[common.Run, int]:
    """Build every rule into a fresh output folder and count the files written."""
    out = work / "siemgen-out"
    shutil.rmtree(out, ignore_errors=True)
    command: list[str | Path] = [
        common.executable("siemgen"),
        "build",
        "--rules",
        rules,
        "--out",
        out,
    ]
    run = common.run_timed(command, work, work / "logs" / "siemgen-build.log", env, timeout)
    common.require_exit(run, command, allowed=(0,))
    return run, count_files(out)


def run_sigma_cli(
    label: str,
    arguments: Sequence[str],
    suffix: str,
    rules: Path,
    work: Path,
    env: dict[str, str],
    timeout: float,
) -> tuple[common.Run, int]:
    """Convert every rule for one target with sigma-cli, one output file per rule."""
    out = work / "sigma-cli-out" / label
    shutil.rmtree(out, ignore_errors=True)
    command: list[str | Path] = [
        common.executable("sigma"),
        "convert",
        *arguments,
        "--output-dir",
        out,
        "--output-filename-template",
        "{stem}" + suffix,
        rules,
    ]
    run = common.run_timed(
        command,
        work,
        work / "logs" / f"sigma-cli-{label}.log",
        env,
        timeout,
    )
    common.require_exit(run, command, allowed=(0,))
    return run, count_files(out)


def measure(
    staged: common.StagedRules, work: Path, env: dict[str, str], args: argparse.Namespace
) -> Measurements:
    """Run the warm-up rounds, then the measured rounds, alternating the two sides."""
    results = Measurements(sigma_cli={label: [] for label, _, _ in SIGMA_CLI_RUNS})
    total_rounds = args.warmup + args.runs
    for index in range(total_rounds):
        measured = index >= args.warmup
        run, files = run_siemgen(staged.folder, work, env, args.timeout)
        if measured:
            results.siemgen.append(run)
            results.siemgen_files = files
        for label, arguments, suffix in SIGMA_CLI_RUNS:
            run, files = run_sigma_cli(
                label, arguments, suffix, staged.folder, work, env, args.timeout
            )
            if measured:
                results.sigma_cli[label].append(run)
                results.sigma_cli_files[label] = files
        kind = "measured" if measured else "warm-up"
        print(f"round {index + 1}/{total_rounds} ({kind}) done", file=sys.stderr)
    return results


def table_rows(results: Measurements) -> list[list[str]]:
    """Summarize each process, then the sigma-cli total, as table cells."""

    def row(name: str, runs: Sequence[common.Run], files: int) -> list[str]:
        walls = [run.wall for run in runs]
        return [
            name,
            common.seconds(common.median(walls)),
            common.seconds(min(walls)),
            common.seconds(max(walls)),
            common.seconds(common.median([run.cpu for run in runs])),
            common.mebibytes(max(run.max_rss_kib for run in runs)),
            str(files),
        ]

    rows = [row("siemgen build (1 process)", results.siemgen, results.siemgen_files)]
    for label, _, _ in SIGMA_CLI_RUNS:
        rows.append(
            row(f"sigma-cli {label}", results.sigma_cli[label], results.sigma_cli_files[label])
        )

    totals = results.sigma_cli_totals()
    cpu_totals = results.sigma_cli_cpu_totals()
    rounds = list(zip(*results.sigma_cli.values(), strict=True))
    rows.append(
        [
            f"sigma-cli total ({len(SIGMA_CLI_RUNS)} processes)",
            common.seconds(common.median(totals)),
            common.seconds(min(totals)),
            common.seconds(max(totals)),
            common.seconds(common.median(cpu_totals)),
            common.mebibytes(max(run.max_rss_kib for runs in rounds for run in runs)),
            str(sum(results.sigma_cli_files.values())),
        ]
    )
    return rows


def verdict(results: Measurements) -> str:
    """State the ratio of medians and whether it meets the goal."""
    ratio = results.ratio()
    met = "met" if ratio >= GOAL else "not met"
    return (
        f"siemgen build is {ratio:.2f} times as fast as the sigma-cli runs together by median "
        f"wall time, so the goal of at least {GOAL:g} is {met}. "
        f"By median CPU time the ratio is {results.cpu_ratio():.2f}"
    )


def doc_section(
    staged: common.StagedRules, results: Measurements, args: argparse.Namespace, argv: list[str]
) -> str:
    """Write the Markdown body of the build section."""
    rules = f"{staged.total} rules ({staged.project} project rules from `sigma/`"
    rules += f" and {staged.corpus} SigmaHQ CloudTrail rules)" if staged.corpus else ")"
    renamed = ", ".join(f"`{old}` as `{new}`" for old, new in staged.renamed)
    siemgen_walls = ", ".join(common.seconds(run.wall) for run in results.siemgen)
    sigma_walls = ", ".join(common.seconds(value) for value in results.sigma_cli_totals())
    lines = [
        f"One `siemgen build` process, writing every target's query files, the pages and the "
        f"deployable artifacts, against sigma-cli run once per target and format, on {rules}.",
        "",
        f"- Command: `{common.display_command(argv)}`",
        *common.machine_lines(),
        f"- Rounds: {args.warmup} untimed warm-up, then {args.runs} measured, alternating "
        "siemgen and the sigma-cli runs. Each process is timed by wall clock from start to exit.",
        common.isolation_line(),
        common.rss_line(),
        "",
        common.markdown_table(HEADERS, table_rows(results)),
        "",
        f"**{verdict(results)}.**",
        "",
        f"Per-round wall times in seconds: siemgen {siemgen_walls}. sigma-cli totals "
        f"{sigma_walls}.",
        "",
        "How the two sides differ:",
        "",
        "- sigma-cli converts `splunk`, `lucene`, `esql` and `eql` with `--without-pipeline`, "
        "because siemgen's Splunk and Elastic pipelines are Python objects that sigma-cli cannot "
        "load. Those runs skip the field mapping and log source conditions that siemgen applies.",
        "- sigma-cli converts `athena` with `-p athena-cloudtrail`, the pipeline siemgen installs "
        "as a pySigma plugin.",
        "- Each sigma-cli run writes one file per rule (`--output-dir`). siemgen also writes "
        "pages, an index and the Splunk app, Kibana rule and CloudFormation artifacts.",
        "- The files column counts the files each side wrote in its last round.",
    ]
    if renamed:
        lines.append(
            f"- The corpus copy renames {renamed}, because siemgen names output files "
            "after the rule file stem."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print its table and optionally update the doc page.

    Exit status: 0 after measuring, 1 when a timed process failed, 2 on a usage error.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    try:
        corpus = common.corpus_folder(args.corpus, not args.no_corpus)
        with tempfile.TemporaryDirectory(prefix="siemgen-bench-build-") as tmp:
            work = Path(tmp)
            staged = common.stage_rules(work / "rules", corpus)
            env = common.isolated_environment(work)
            print(
                f"building {staged.total} rules ({staged.project} project, "
                f"{staged.corpus} corpus): {args.warmup} warm-up and {args.runs} measured rounds",
                file=sys.stderr,
            )
            results = measure(staged, work, env, args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SiemgenError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    print(common.format_table(HEADERS, table_rows(results)))
    print(verdict(results))
    if args.write_doc:
        common.update_section(args.doc, "build", doc_section(staged, results, args, arguments))
        print(f"updated the build section of {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
