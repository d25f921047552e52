"""Helpers shared by the build and check benchmarks: staging rules, timing, reporting."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from siemgen.errors import ConfigError, SiemgenError
from siemgen.rules import safe_stem

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "sigma"
# Community SigmaHQ CloudTrail rules. Without them the scripts run on the project rules alone.
CORPUS = REPO.parent / "shared" / "corpus" / "sigmahq-aws-cloudtrail"
DOC = REPO / "docs" / "benchmarks.md"
DOC_TITLE = "# Benchmarks"
# The console scripts of the virtualenv that runs the benchmark.
BIN = Path(sys.executable).parent
CORPUS_PREFIX = "sigmahq_"
NOISE = (
    "These machines are shared with other jobs, so single timings are noisy. The runs that "
    "are compared alternate within one session, and the ratio of their medians is the figure "
    "to compare."
)


@dataclass(frozen=True)
class StagedRules:
    """A temporary folder containing copies of the project rules and the community corpus."""

    folder: Path
    project: int
    corpus: int
    renamed: tuple[tuple[str, str], ...]

    @property
    def total(self) -> int:
        """Count the rule files in the folder."""
        return self.project + self.corpus


@dataclass(frozen=True)
class Run:
    """One timed process: wall time, CPU time and peak memory, and how it exited."""

    wall: float
    cpu: float
    max_rss_kib: int
    returncode: int
    log: Path


def rule_files(folder: Path) -> list[Path]:
    """List the ``.yml`` rule files under ``folder``, sorted, as sigma-cli finds them."""
    return sorted(path for path in folder.rglob("*.yml") if path.is_file())


def stage_rules(dest: Path, corpus: Path | None) -> StagedRules:
    """Copy ``sigma/`` and the corpus under ``dest``, renaming corpus files whose name collides.

    siemgen names output files after the rule file stem, so two rules with the same stem
    cannot build together. A colliding corpus file gets the ``sigmahq_`` prefix.
    """
    project_folder = dest / "project"
    shutil.copytree(RULES, project_folder)
    project_rules = rule_files(project_folder)
    used_stems = {safe_stem(path) for path in project_rules}

    renamed: list[tuple[str, str]] = []
    corpus_count = 0
    if corpus is not None:
        corpus_folder = dest / "corpus"
        corpus_folder.mkdir()
        for source in rule_files(corpus):
            name = source.name
            if safe_stem(source) in used_stems:
                name = CORPUS_PREFIX + source.name
                renamed.append((source.name, name))
            used_stems.add(safe_stem(Path(name)))
            shutil.copy2(source, corpus_folder / name)
            corpus_count += 1
    return StagedRules(dest, len(project_rules), corpus_count, tuple(renamed))


def corpus_folder(requested: Path | None, use_corpus: bool) -> Path | None:
    """Return the corpus folder to stage, or None when it is off or absent."""
    if not use_corpus:
        return None
    folder = requested or CORPUS
    if not folder.is_dir():
        if requested is not None:
            raise ConfigError(
                "corpus folder not found",
                path=requested,
                hint="pass a folder of Sigma rules to --corpus, or --no-corpus",
            )
        print(f"note: {folder} not found, so only the project rules run", file=sys.stderr)
        return None
    return folder


def executable(name: str) -> Path:
    """Return the path of a console script in the running virtualenv."""
    path = BIN / name
    if not path.exists():
        raise ConfigError(
            f"command {name!r} not found next to {sys.executable}",
            path=path,
            hint="run the benchmark with the project virtualenv: .venv/bin/python benchmarks/...",
        )
    return path


def isolated_environment(work: Path) -> dict[str, str]:
    """Snapshot siemgen's code under ``work`` and return the environment that runs it.

    The timed processes import ``src/`` and read ``templates/`` from a copy taken now, so
    edits to the working tree during the benchmark neither change the code under test nor
    invalidate the check cache, whose key includes siemgen's source files. Python writes and
    reads compiled modules in ``work/pycache`` (``PYTHONPYCACHEPREFIX``), so after the warm-up
    round every process imports compiled modules, as an installed package does, and no
    process writes ``__pycache__`` folders outside the temporary folder.
    """
    code = work / "code"
    # A kept --workdir contains the snapshot of an earlier run, so take a new one.
    if code.exists():
        shutil.rmtree(code)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", code / "src", ignore=skip)
    shutil.copytree(REPO / "templates", code / "templates", ignore=skip)

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    search_path = [str(code / "src"), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(search_path)
    return env


def run_timed(
    command: Sequence[str | Path],
    cwd: Path,
    log: Path,
    env: dict[str, str],
    timeout: float = 600.0,
) -> Run:
    """Run ``command`` once and measure its wall-clock time, CPU time and peak memory.

    The process writes stdout and stderr to ``log``. ``os.wait4`` reaps it, so CPU time
    (user plus system) and the maximum resident set size are this process's and its reaped
    children's.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        start = time.perf_counter()
        process = subprocess.Popen(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
    returncode = os.waitstatus_to_exitcode(status)
    process.returncode = returncode
    if returncode < 0:
        raise SiemgenError(
            f"command {shlex_join(command)!r} was killed by signal {-returncode} "
            f"(timeout {timeout:.0f} s)",
            path=log,
            hint="read the log, then rerun with fewer rules or a longer --timeout",
        )
    # ru_maxrss is in KiB on Linux. NOTE: it is never below this script's own peak RSS
    # (own_peak_rss_kib), because Linux records the spawning process's peak as the child's
    # when the child calls exec after vfork.
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, returncode, log)


def require_exit(run: Run, command: Sequence[str | Path], allowed: Sequence[int]) -> None:
    """Raise when a timed process exited with a status outside ``allowed``."""
    if run.returncode in allowed:
        return
    tail = "\n".join(log_tail(run.log, 15))
    raise SiemgenError(
        f"command {shlex_join(command)!r} exited with status {run.returncode}, so its "
        f"timing is not comparable; last lines of its output:\n{tail}",
        path=run.log,
        hint="fix the failure, then rerun the benchmark",
    )


def own_peak_rss_kib() -> int:
    """Return this script's own peak resident set size in KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def log_tail(log: Path, lines: int) -> list[str]:
    """Return the last ``lines`` non-empty lines of a process log."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()][-lines:]


def shlex_join(command: Sequence[str | Path]) -> str:
    """Quote a command line for display."""
    return shlex.join(str(part) for part in command)


def median(values: Sequence[float]) -> float:
    """Return the median of a non-empty sequence."""
    return float(statistics.median(values))


def display_command(argv: Sequence[str]) -> str:
    """Return the command line that ran this script, with the repository-relative script path."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_path = script.relative_to(REPO).as_posix()
    except ValueError:
        script_path = str(script)
    return shlex_join([".venv/bin/python", script_path, *argv])


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    """Describe the machine, software versions and date, one Markdown list item each."""
    versions = ", ".join(
        f"{name} {package_version(name)}"
        for name in ("siemgen", "pySigma", "sigma-cli", "pySigma-backend-splunk")
    )
    return [
        f"- Machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, {versions}",
        f"- Date: {dt.date.today().isoformat()}",
        f"- Load average (1, 5 and 15 minutes) when the measurements ended: {load_average()}",
        f"- {NOISE}",
    ]


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages, or ``unknown``."""
    try:
        averages = os.getloadavg()
    except OSError:
        return "unknown"
    return ", ".join(f"{value:.1f}" for value in averages)


def isolation_line() -> str:
    """Explain what code the timed processes run, one Markdown list item."""
    return (
        "- The timed processes run a copy of `src/` and `templates/` taken when the script "
        "starts, and cache compiled modules in a temporary `PYTHONPYCACHEPREFIX` folder that "
        "the warm-up round fills, so they import compiled bytecode as an installed package does."
    )


def rss_line() -> str:
    """Explain the peak RSS column, one Markdown list item."""
    return (
        "- Peak RSS is the maximum resident set size that `wait4` reports for the process. "
        "Linux counts the benchmark script's own peak "
        f"({mebibytes(own_peak_rss_kib())} MiB here) as a floor for it."
    )


def package_version(name: str) -> str:
    """Return an installed distribution's version, or ``absent``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Lay out a plain-text table with columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Lay out a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def update_section(doc: Path, heading: str, body: str) -> None:
    """Replace the ``## heading`` section of ``doc`` with ``body``, keeping every other section.

    A section runs from its heading line to the next ``## `` heading or the end of the file.
    A missing section is appended, and a missing file is created with a ``# Benchmarks`` title.
    """
    title = f"## {heading}"
    section = [title, "", *body.strip("\n").splitlines(), ""]
    lines = doc.read_text(encoding="utf-8").splitlines() if doc.exists() else [DOC_TITLE, ""]

    start = next((i for i, line in enumerate(lines) if line.rstrip() == title), None)
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines = [*lines, "", *section]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines = [*lines[:start], *section, *lines[end:]]

    while lines and not lines[-1].strip():
        lines.pop()
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines) + "\n", encoding="utf-8")


def seconds(value: float) -> str:
    """Format a duration in seconds for a table cell."""
    return f"{value:.2f}"


def mebibytes(kib: int) -> str:
    """Format a size in KiB as MiB for a table cell."""
    return f"{kib / 1024:.0f}"
