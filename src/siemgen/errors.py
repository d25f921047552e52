"""Errors raised by siemgen, each carrying where it happened and what to do about it."""

from __future__ import annotations

from pathlib import Path


class SiemgenError(Exception):
    """Base of every error siemgen raises on purpose; the CLI prints it without a traceback."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        rule: str | None = None,
        target: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.rule = rule
        self.target = target
        self.field = field
        self.hint = hint

    def location(self) -> str:
        """Return ``file:line`` (or just the file) for messages, or an empty string."""
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def __str__(self) -> str:
        parts = []
        if self.location():
            parts.append(f"{self.location()}:")
        if self.target:
            parts.append(f"[{self.target}]")
        parts.append(self.message)
        text = " ".join(parts)
        if self.hint:
            text += f" ({self.hint})"
        return text


class RuleLoadError(SiemgenError):
    """A rule file could not be read or is not a valid Sigma rule."""


class ConversionError(SiemgenError):
    """A rule could not be converted for one target."""


class UnknownFieldError(ConversionError):
    """A rule names a field that the target's CloudTrail pipeline does not map."""


class UnsupportedFeatureError(ConversionError):
    """A rule uses a Sigma construct that the target cannot express."""


class ConfigError(SiemgenError):
    """Invalid command-line options or configuration file."""


class OutputError(SiemgenError):
    """Writing generated content failed or would touch a file siemgen did not write."""
