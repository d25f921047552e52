"""Tokenize Splunk SPL (search, where, regex and other commands) and find its string literals.

Splunk's search language has one kind of string literal: text in double quotes, where a
backslash escapes a double quote (``\\"``) or another backslash (``\\\\``). Any other
backslash inside the quotes is kept with the character after it, because the command that
reads the string (``search`` wildcards, ``regex`` patterns) gives it its own meaning. A raw
newline inside the quotes is part of the string. Outside quotes, ``|`` starts a new command,
``[`` and ``]`` enclose a subsearch, backticks enclose a macro call and triple backticks a
comment. A backslash outside quotes escapes the next character of a word.
"""

from __future__ import annotations

from siemgen.lexers.tokens import LexError, Token, TokenKind

LANGUAGE = "SPL"

_SINGLE = {
    "|": TokenKind.PIPE,
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    "[": TokenKind.LBRACKET,
    "]": TokenKind.RBRACKET,
    ",": TokenKind.COMMA,
}
_OPERATORS = ("!=", "<=", ">=", "==", "=", "<", ">")
_WORD_STOP = frozenset(' \t\r\n\f\v"|()[],=<>`')


def decode_string(body: str) -> str:
    """Decode the text between the quotes of an SPL string literal."""
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body) and body[index + 1] in '"\\':
            out.append(body[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def quote_string(value: str) -> str:
    """Write ``value`` as an SPL string literal that ``decode_string`` reads back unchanged."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tokenize(text: str) -> list[Token]:
    """Split an SPL query into tokens, raising LexError on an unterminated quote or macro."""
    tokens: list[Token] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
            continue
        start = index
        if text.startswith("```", index):
            end = text.find("```", index + 3)
            if end < 0:
                raise LexError("unterminated comment", language=LANGUAGE, query=text, offset=start)
            index = end + 3
            tokens.append(
                Token(TokenKind.COMMENT, text[start:index], text[start + 3 : end], start, index)
            )
            continue
        if char == "`":
            end = text.find("`", index + 1)
            if end < 0:
                raise LexError(
                    "unterminated macro call", language=LANGUAGE, query=text, offset=start
                )
            index = end + 1
            tokens.append(
                Token(TokenKind.MACRO, text[start:index], text[start + 1 : end], start, index)
            )
            continue
        if char == '"':
            index = _string_end(text, index)
            body = text[start + 1 : index - 1]
            tokens.append(
                Token(TokenKind.STRING, text[start:index], decode_string(body), start, index)
            )
            continue
        if char in _SINGLE:
            index += 1
            tokens.append(Token(_SINGLE[char], char, char, start, index))
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, index)), None)
        if operator is not None:
            index += len(operator)
            tokens.append(Token(TokenKind.OPERATOR, operator, operator, start, index))
            continue
        index = _word_end(text, index)
        word = text[start:index]
        tokens.append(Token(TokenKind.WORD, word, word, start, index))
    return tokens


def _string_end(text: str, start: int) -> int:
    """Return the offset just past the closing quote of the string opening at ``start``."""
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            index += 2
            continue
        if char == '"':
            return index + 1
        index += 1
    raise LexError("unterminated string literal", language=LANGUAGE, query=text, offset=start)


def _word_end(text: str, start: int) -> int:
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            index += 2
            continue
        if char in _WORD_STOP or (char == "!" and text.startswith("!=", index)):
            break
        index += 1
    return index
