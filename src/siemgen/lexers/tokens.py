"""Token types shared by the SPL and ES|QL tokenizers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from siemgen.errors import SiemgenError


class TokenKind(StrEnum):
    """The kind of a token. Whitespace is skipped and never becomes a token."""

    STRING = "string"
    IDENTIFIER = "identifier"
    WORD = "word"
    OPERATOR = "operator"
    PIPE = "pipe"
    LPAREN = "lparen"
    RPAREN = "rparen"
    LBRACKET = "lbracket"
    RBRACKET = "rbracket"
    COMMA = "comma"
    MACRO = "macro"
    COMMENT = "comment"


@dataclass(frozen=True)
class Token:
    """One token: its kind, its source text, its decoded value and its offsets in the query.

    ``value`` is the decoded content for a string literal, a quoted identifier, a macro and a
    comment (without the quotes or markers), and equals ``text`` for every other kind.
    """

    kind: TokenKind
    text: str
    value: str
    start: int
    end: int


class LexError(SiemgenError, ValueError):
    """A query is not valid in its language at the token level."""

    def __init__(self, message: str, *, language: str, query: str, offset: int) -> None:
        line = query.count("\n", 0, offset) + 1
        super().__init__(
            f"{language} query is invalid at offset {offset} (line {line}): {message}",
            line=line,
        )
        self.language = language
        self.query = query
        self.offset = offset


def string_values(tokens: Iterable[Token]) -> list[str]:
    """Return the decoded value of every string literal, in query order."""
    return [token.value for token in tokens if token.kind is TokenKind.STRING]


def skeleton(tokens: Iterable[Token], placeholder: str = "<string>") -> list[tuple[str, str]]:
    """Return (kind, text) of every token, with each string literal's text replaced.

    Two queries that differ only inside their string literals have equal skeletons.
    """
    result = []
    for token in tokens:
        text = placeholder if token.kind is TokenKind.STRING else token.text
        result.append((token.kind.value, text))
    return result
