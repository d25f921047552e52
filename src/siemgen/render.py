"""Jinja environment that renders query files and Markdown pages from templates/."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

from siemgen.locations import DEFAULT_TEMPLATES

_URL = re.compile(r"https?://[^\s<>\"'`\\\x00-\x1f\x7f]+")
_SHORTCODE_OPEN = re.compile(r"\{\{([<%])")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|#!~])")


def yaml_string(value: object) -> str:
    """Quote a value as a YAML double-quoted scalar; JSON string syntax is valid YAML."""
    return json.dumps(str(value), ensure_ascii=False)


def markdown_text(value: object) -> str:
    """Escape text so Markdown and HTML show it literally, on one line."""
    text = " ".join(str(value).split())
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    # A backslash does not stop an HTML parser, so the two HTML characters become entities.
    escaped = escaped.replace("\\&", "&amp;").replace("\\<", "&lt;").replace("\\>", "&gt;")
    # Hugo, which sites built from pages like these use, expands {{< >}} and {{% %}}
    # shortcodes; an entity for the second brace shows the same text without starting one.
    return escaped.replace("{{", "{&#123;")


def code_span(value: object) -> str:
    """Wrap text in an inline code span with more backticks than the text contains."""
    text = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(value: object, language: str = "") -> str:
    """Put text in a fenced code block whose fence is longer than any backtick run inside."""
    # Hugo expands shortcodes inside code blocks too, and entities show as typed there, so a
    # zero-width space splits the opening braces of {{< and {{% (a visible change of nothing).
    text = _SHORTCODE_OPEN.sub("{\u200b{\\1", str(value).rstrip("\n"))
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def is_safe_url(value: object) -> bool:
    """Tell whether a value is a plain http(s) URL that can go in a Markdown link as it is."""
    return bool(_URL.fullmatch(str(value)))


class LinkNumbers:
    """Number reference-style links in the order a template first uses them."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def items(self) -> list[tuple[int, str]]:
        """Return (number, url) pairs in numbering order."""
        return [(number, url) for number, url in enumerate(self.urls, start=1)]


def environment(templates: Path | None = None) -> jinja2.Environment:
    """Create the Jinja environment; rule text is passed as data and never parsed as a template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates or DEFAULT_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yaml_string"] = yaml_string
    env.filters["md"] = markdown_text
    env.filters["code"] = code_span
    env.filters["fenced"] = fenced
    env.tests["safe_url"] = is_safe_url
    return env


def render(env: jinja2.Environment, template: str, **context: Any) -> str:
    """Render one template and normalise the result to end with exactly one newline."""
    links = LinkNumbers()
    text = env.get_template(template).render(ref=links, links=links, **context)
    return text.rstrip("\n") + "\n"


def load_template_data(env: jinja2.Environment, name: str) -> Any:
    """Load a YAML data file that sits beside the templates (for example logsources.yml)."""
    loader = env.loader
    assert isinstance(loader, jinja2.FileSystemLoader)
    return _read_yaml(Path(loader.searchpath[0]) / name)


@functools.lru_cache(maxsize=32)
def _read_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
