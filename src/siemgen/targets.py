"""The one table pairing each target with its backends, pipelines and output formats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# pySigma is imported when a backend is made, not when the CLI starts.
if TYPE_CHECKING:
    from sigma.conversion.base import Backend
    from sigma.processing.pipeline import ProcessingPipeline


@dataclass(frozen=True)
class TargetOptions:
    """User settings that change the generated queries."""

    splunk_index: str | None = None
    athena_table: str = "cloudtrail_logs"
    athena_lookback: str | None = None
    athena_profile: str = "cloudtrail"
    elastic_index: str = "logs-aws.cloudtrail-*"


@dataclass(frozen=True)
class OutputFormat:
    """One query file a target produces for each rule."""

    name: str
    title: str
    suffix: str
    language: str
    backend_format: str
    make_backend: Callable[[TargetOptions], Backend] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Target:
    """A SIEM or query engine that rules are built for."""

    name: str
    title: str
    formats: tuple[OutputFormat, ...]

    def format(self, name: str) -> OutputFormat:
        """Return the output format called ``name``."""
        for output_format in self.formats:
            if output_format.name == name:
                return output_format
        known = ", ".join(f.name for f in self.formats)
        raise KeyError(f"target {self.name!r} has no format {name!r}; known formats: {known}")


def _splunk(options: TargetOptions) -> Backend:
    from siemgen.backends.splunk import SplunkBackend
    from siemgen.pipelines.splunk import splunk_pipeline

    return SplunkBackend(splunk_pipeline(index=options.splunk_index))


def _elastic(backend_name: str) -> Callable[[TargetOptions], Backend]:
    def make(options: TargetOptions) -> Backend:
        from siemgen.backends import elastic
        from siemgen.pipelines.elastic import elastic_pipeline

        backend_class = getattr(elastic, backend_name)
        backend: Backend = backend_class(elastic_pipeline(index=options.elastic_index))
        return backend

    return make


def _athena(options: TargetOptions) -> Backend:
    from siemgen.backends.athena import AthenaBackend
    from siemgen.pipelines.athena import athena_pipeline

    pipeline: ProcessingPipeline = athena_pipeline(
        table=options.athena_table, profile=options.athena_profile
    )
    backend: Backend = AthenaBackend(processing_pipeline=pipeline, lookback=options.athena_lookback)
    return backend


def all_targets() -> tuple[Target, ...]:
    """Return every target in build order."""
    return (
        Target(
            name="splunk",
            title="Splunk",
            formats=(OutputFormat("spl", "Splunk SPL", ".spl", "spl", "default", _splunk),),
        ),
        Target(
            name="elastic",
            title="Elastic",
            formats=(
                OutputFormat(
                    "lucene",
                    "Elastic Lucene",
                    ".lucene",
                    "lucene",
                    "default",
                    _elastic("LuceneBackend"),
                ),
                OutputFormat(
                    "esql", "Elastic ES|QL", ".esql", "esql", "default", _elastic("ESQLBackend")
                ),
                OutputFormat(
                    "eql", "Elastic EQL", ".eql", "eql", "default", _elastic("EqlBackend")
                ),
            ),
        ),
        Target(
            name="athena",
            title="Amazon Athena",
            formats=(OutputFormat("sql", "Athena SQL", ".sql", "sql", "default", _athena),),
        ),
    )


def get_target(name: str) -> Target:
    """Return the target called ``name``, raising KeyError that lists the known targets."""
    for target in all_targets():
        if target.name == name:
            return target
    known = ", ".join(t.name for t in all_targets())
    raise KeyError(f"unknown target {name!r}; known targets: {known} (see `siemgen targets`)")
