"""Template filters: escaping for YAML front matter, Markdown text and code blocks."""

from __future__ import annotations

import yaml

from siemgen.render import LinkNumbers, code_span, fenced, is_safe_url, markdown_text, yaml_string


def test_yaml_string_round_trips_hostile_text() -> None:
    value = 'a: "b"\n- c # d\x00'
    assert yaml.safe_load(f"key: {yaml_string(value)}") == {"key": value}


def test_markdown_text_escapes_html_and_markup() -> None:
    assert markdown_text("<script>*x*</script> & [y](z)") == (
        "&lt;script&gt;\\*x\\*&lt;/script&gt; &amp; \\[y\\](z)"
    )


def test_markdown_text_keeps_template_syntax_literal() -> None:
    assert markdown_text("{{ 7*7 }}") == "{&#123; 7\\*7 }}"


def test_fenced_outgrows_backtick_runs() -> None:
    block = fenced("a ```` b", "sql")
    assert block.startswith("`````sql\n")
    assert block.endswith("\n`````")


def test_code_span_outgrows_backticks() -> None:
    assert code_span("a`b") == "``a`b``"


def test_safe_url_rejects_markup() -> None:
    assert is_safe_url("https://docs.aws.amazon.com/IAM/latest/APIReference/API_X.html")
    assert not is_safe_url("https://x/<script>")
    assert not is_safe_url("javascript:alert(1)")
    assert not is_safe_url("https://x y")


def test_link_numbers_follow_first_use() -> None:
    links = LinkNumbers()
    assert links("https://b") == 1
    assert links("https://a") == 2
    assert links("https://b") == 1
    assert links.items() == [(1, "https://b"), (2, "https://a")]


def test_hugo_shortcodes_cannot_start() -> None:
    assert "{{" not in markdown_text("{{% readfile x %}} {{< y >}}")
    block = fenced("{{% readfile x %}} {{< y >}} {{ plain }}", "yaml")
    assert "{{%" not in block
    assert "{{<" not in block
    assert "{{ plain }}" in block
    assert block.replace("\u200b", "") == fenced("{{ plain }}", "yaml").replace(
        "{{ plain }}", "{{% readfile x %}} {{< y >}} {{ plain }}"
    )
