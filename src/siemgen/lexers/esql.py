"""Tokenize Elasticsearch ES|QL queries and find their string literals.

The rules follow the ES|QL ANTLR lexer (``EsqlBaseLexer.g4`` in the Elasticsearch source):
a string is either ``"..."``, where a backslash may only escape ``t``, ``n``, ``r``, ``"``
or ``\\`` and a raw carriage return or newline is invalid, or ``\"\"\"...\"\"\"``, which has
no escapes and cannot span lines either. A field name may be quoted with backticks, where
two backticks stand for one. ``//`` starts a line comment and ``/* */`` a block comment,
which may nest. In the source list of ``FROM``, index patterns such as
``logs-aws.cloudtrail-*`` are single words.
"""

from __future__ import annotations

from siemgen.lexers.tokens import LexError, Token, TokenKind

LANGUAGE = "ES|QL"

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}
_SINGLE = {
    "|": TokenKind.PIPE,
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    "[": TokenKind.LBRACKET,
    "]": TokenKind.RBRACKET,
    ",": TokenKind.COMMA,
}
_OPERATORS = ("==", "!=", "<=", ">=", "=~", "::", "<", ">", "=", "+", "-", "*", "/", "%", ":")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@.$?")
# Characters that end an unquoted index pattern in the source list of FROM.
_SOURCE_STOP = frozenset(' \t\r\n|,"`()[]/=')


def quote_string(value: str) -> str:
    """Write ``value`` as an ES|QL double-quoted string literal."""
    out = ['"']
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    """Split an ES|QL query into tokens, raising LexError where the ES|QL lexer would fail."""
    tokens: list[Token] = []
    index = 0
    length = len(text)
    # True while the tokens belong to the source list of a FROM command.
    in_from = False
    command_next = True
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
            continue
        start = index
        if text.startswith("//", index):
            end = text.find("\n", index)
            index = length if end < 0 else end
            tokens.append(
                Token(TokenKind.COMMENT, text[start:index], text[start + 2 : index], start, index)
            )
            continue
        if text.startswith("/*", index):
            index = _block_comment_end(text, index)
            tokens.append(
                Token(
                    TokenKind.COMMENT, text[start:index], text[start + 2 : index - 2], start, index
                )
            )
            continue
        if text.startswith('"""', index):
            end = text.find('"""', index + 3)
            newline = _first_line_break(text, index + 3, length if end < 0 else end)
            if end < 0 or newline >= 0:
                offset = newline if newline >= 0 else start
                raise LexError(
                    "unterminated triple-quoted string",
                    language=LANGUAGE,
                    query=text,
                    offset=offset,
                )
            # The lexer lets up to two quotes follow the closing triple quote as content.
            index = end + 3
            while index < length and index - end < 5 and text[index] == '"':
                index += 1
            body = text[start + 3 : index - 3]
            tokens.append(Token(TokenKind.STRING, text[start:index], body, start, index))
            command_next = False
            continue
        if char == '"':
            index, value = _read_string(text, index)
            tokens.append(Token(TokenKind.STRING, text[start:index], value, start, index))
            command_next = False
            continue
        if char == "`":
            index, value = _read_quoted_identifier(text, index)
            tokens.append(Token(TokenKind.IDENTIFIER, text[start:index], value, start, index))
            command_next = False
            continue
        if char in _SINGLE:
            index += 1
            kind = _SINGLE[char]
            tokens.append(Token(kind, char, char, start, index))
            if kind is TokenKind.PIPE:
                in_from = False
                command_next = True
            continue
        if in_from and char not in _SOURCE_STOP:
            while index < length and text[index] not in _SOURCE_STOP:
                index += 1
            word = text[start:index]
            tokens.append(Token(TokenKind.WORD, word, word, start, index))
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, index)), None)
        if operator is not None:
            index += len(operator)
            tokens.append(Token(TokenKind.OPERATOR, operator, operator, start, index))
            command_next = False
            continue
        if char not in _WORD_CHARS and not char.isalpha():
            raise LexError(
                f"unexpected character {char!r}", language=LANGUAGE, query=text, offset=start
            )
        while index < length and (text[index] in _WORD_CHARS or text[index].isalpha()):
            index += 1
        word = text[start:index]
        tokens.append(Token(TokenKind.WORD, word, word, start, index))
        if command_next:
            in_from = word.lower() == "from"
            command_next = False
    return tokens


def _first_line_break(text: str, start: int, end: int) -> int:
    for index in range(start, end):
        if text[index] in "\r\n":
            return index
    return -1


def _read_string(text: str, start: int) -> tuple[int, str]:
    """Read the double-quoted string at ``start`` and return the offset past it and its value."""
    out: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return index + 1, "".join(out)
        if char in "\r\n":
            raise LexError(
                "line break inside a string literal (write \\n or \\r)",
                language=LANGUAGE,
                query=text,
                offset=index,
            )
        if char == "\\":
            escaped = text[index + 1 : index + 2]
            if escaped not in _ESCAPES:
                raise LexError(
                    f"invalid escape sequence \\{escaped} in a string literal",
                    language=LANGUAGE,
                    query=text,
                    offset=index,
                )
            out.append(_ESCAPES[escaped])
            index += 2
            continue
        out.append(char)
        index += 1
    raise LexError("unterminated string literal", language=LANGUAGE, query=text, offset=start)


def _read_quoted_identifier(text: str, start: int) -> tuple[int, str]:
    out: list[str] = []
    index = start + 1
    while index < len(text):
        if text[index] == "`":
            if text.startswith("``", index):
                out.append("`")
                index += 2
                continue
            return index + 1, "".join(out)
        out.append(text[index])
        index += 1
    raise LexError("unterminated quoted identifier", language=LANGUAGE, query=text, offset=start)


def _block_comment_end(text: str, start: int) -> int:
    depth = 0
    index = start
    while index < len(text):
        if text.startswith("/*", index):
            depth += 1
            index += 2
        elif text.startswith("*/", index):
            depth -= 1
            index += 2
            if depth == 0:
                return index
        else:
            index += 1
    raise LexError("unterminated block comment", language=LANGUAGE, query=text, offset=start)
