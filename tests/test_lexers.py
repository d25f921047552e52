"""Tests for the SPL and ES|QL tokenizers."""

from __future__ import annotations

import pytest

from siemgen.lexers import LexError, Token, TokenKind, esql, skeleton, spl, string_values


def kinds(tokens: list[Token]) -> list[str]:
    return [token.kind.value for token in tokens]


def test_spl_strings_decoded() -> None:
    tokens = spl.tokenize(r'eventName="a\"b\\c" | regex x="\d+\*"')
    assert string_values(tokens) == ['a"b\\c', r"\d+\*"]


def test_spl_pipe_inside_string_is_literal() -> None:
    tokens = spl.tokenize('x="a | delete" | stats count')
    assert string_values(tokens) == ["a | delete"]
    assert [t.text for t in tokens if t.kind is TokenKind.PIPE] == ["|"]


def test_spl_token_kinds() -> None:
    tokens = spl.tokenize('index=main NOT (a IN ("x", "y")) [search b!=1] `m(1)` ```note```')
    assert kinds(tokens) == [
        "word", "operator", "word", "word", "lparen", "word", "word", "lparen", "string",
        "comma", "string", "rparen", "rparen", "lbracket", "word", "word", "operator", "word",
        "rbracket", "macro", "comment",
    ]  # fmt: skip
    assert tokens[-2].value == "m(1)"
    assert tokens[-1].value == "note"


def test_spl_newline_inside_string() -> None:
    tokens = spl.tokenize('a="x\ny"')
    assert string_values(tokens) == ["x\ny"]


def test_spl_escaped_word_characters() -> None:
    tokens = spl.tokenize(r"a=b\|c d")
    assert [t.text for t in tokens] == ["a", "=", r"b\|c", "d"]


@pytest.mark.parametrize("query", ['a="x', 'a="x\\"', "`macro", "```comment"])
def test_spl_unterminated_rejected(query: str) -> None:
    with pytest.raises(LexError):
        spl.tokenize(query)


@pytest.mark.parametrize("value", ["", "plain", 'q"uote', "back\\slash", "\\", '\\"', "a\nb"])
def test_spl_quote_round_trip(value: str) -> None:
    assert string_values(spl.tokenize("x=" + spl.quote_string(value))) == [value]


def test_esql_strings_decoded() -> None:
    tokens = esql.tokenize(r'from i | where a == "q\"\\\t\n\r" and b like """x"y\z"""')
    assert string_values(tokens) == ['q"\\\t\n\r', 'x"y\\z']


def test_esql_from_source_is_word() -> None:
    tokens = esql.tokenize("from logs-aws.cloudtrail-* metadata _id | where a-b > 1")
    words = [t.text for t in tokens if t.kind is TokenKind.WORD]
    assert words[:3] == ["from", "logs-aws.cloudtrail-*", "metadata"]
    assert [t.text for t in tokens if t.kind is TokenKind.OPERATOR] == ["-", ">"]


def test_esql_quoted_identifier() -> None:
    tokens = esql.tokenize("from i | where `a ``b`` c` == 1")
    identifiers = [t for t in tokens if t.kind is TokenKind.IDENTIFIER]
    assert [t.value for t in identifiers] == ["a `b` c"]


def test_esql_comments() -> None:
    tokens = esql.tokenize("from i // one\n| where /* two /* nested */ */ a == 1")
    comments = [t.value for t in tokens if t.kind is TokenKind.COMMENT]
    assert comments == [" one", " two /* nested */ "]


@pytest.mark.parametrize(
    "query",
    [
        'from i | where a == "x',
        'from i | where a == "x\ny"',
        'from i | where a == "\\q"',
        'from i | where a == """x\ny"""',
        "from i | where `a == 1",
        "from i /* open",
        "from i | where a == #",
    ],
)
def test_esql_invalid_rejected(query: str) -> None:
    with pytest.raises(LexError):
        esql.tokenize(query)


@pytest.mark.parametrize("value", ["", "plain", 'q"uote', "back\\slash", "a\nb\r\tc", "é€"])
def test_esql_quote_round_trip(value: str) -> None:
    assert string_values(esql.tokenize("row a = " + esql.quote_string(value))) == [value]


def test_skeleton_ignores_literal_content() -> None:
    left = skeleton(spl.tokenize('a="x | y" b="z"'))
    right = skeleton(spl.tokenize('a="other" b="\\""'))
    assert left == right
    assert left != skeleton(spl.tokenize('a="x" | y b="z"'))


def test_lex_error_names_offset() -> None:
    query = 'from i\n| where a == "open'
    with pytest.raises(LexError) as caught:
        esql.tokenize(query)
    assert caught.value.offset == query.index('"')
    assert caught.value.line == 2
    assert "unterminated string literal" in str(caught.value)
