"""Parse the ``from ... | where ...`` ES|QL queries that siemgen generates and check their fields.

The grammar covered is the part of ES|QL that pySigma's ES|QL backend writes: one ``FROM``
command with index patterns and an optional ``METADATA`` list, then one ``WHERE`` command
whose condition combines comparisons, ``IN``, ``LIKE``, ``RLIKE``, ``IS [NOT] NULL`` and
function calls with ``AND``, ``OR``, ``NOT`` and parentheses. Tokens come from
``siemgen.lexers.esql``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from siemgen.errors import SiemgenError
from siemgen.lexers import esql as lexer
from siemgen.lexers.tokens import LexError, Token, TokenKind

_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "=~"})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_LITERAL_WORDS = frozenset({"true", "false", "null"})
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@]*")


class EsqlQueryError(SiemgenError):
    """An ES|QL query does not have the ``from ... | where ...`` shape or does not parse."""


@dataclass
class EsqlQuery:
    """The parts of a parsed ES|QL query that the checks read."""

    sources: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)


class _Parser:
    """Recursive-descent parser of a WHERE condition over a token list."""

    def __init__(self, tokens: list[Token], query: EsqlQuery) -> None:
        self.tokens = tokens
        self.position = 0
        self.query = query

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def at(self, kind: TokenKind) -> bool:
        token = self.peek()
        return token is not None and token.kind is kind

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind is TokenKind.WORD and token.text.lower() in words

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise EsqlQueryError("the WHERE condition ends too early")
        self.position += 1
        return token

    def expect(self, kind: TokenKind, description: str) -> Token:
        token = self.take()
        if token.kind is not kind:
            raise EsqlQueryError(
                f"expected {description} at offset {token.start}, found {token.text!r}"
            )
        return token

    def condition(self) -> None:
        self.conjunction()
        while self.keyword("or"):
            self.take()
            self.conjunction()

    def conjunction(self) -> None:
        self.negation()
        while self.keyword("and"):
            self.take()
            self.negation()

    def negation(self) -> None:
        if self.keyword("not"):
            self.take()
            self.negation()
            return
        self.predicate()

    def predicate(self) -> None:
        self.operand()
        token = self.peek()
        if token is None:
            return
        if token.kind is TokenKind.OPERATOR and token.text in _COMPARISONS:
            self.take()
            self.operand()
            return
        if self.keyword("is"):
            self.take()
            if self.keyword("not"):
                self.take()
            if not self.keyword("null"):
                raise EsqlQueryError(f"expected NULL after IS at offset {token.start}")
            self.take()
            return
        negated = self.keyword("not")
        if negated:
            self.take()
        if self.keyword("in"):
            self.take()
            self.expect(TokenKind.LPAREN, "( after IN")
            self.operand()
            while self.at(TokenKind.COMMA):
                self.take()
                self.operand()
            self.expect(TokenKind.RPAREN, ") closing the IN list")
        elif self.keyword("like", "rlike"):
            self.take()
            if self.at(TokenKind.LPAREN):
                self.take()
                self.expect(TokenKind.STRING, "a pattern string")
                while self.at(TokenKind.COMMA):
                    self.take()
                    self.expect(TokenKind.STRING, "a pattern string")
                self.expect(TokenKind.RPAREN, ") closing the pattern list")
            else:
                self.expect(TokenKind.STRING, "a pattern string after LIKE or RLIKE")
        elif negated:
            raise EsqlQueryError(f"expected IN, LIKE or RLIKE after NOT at offset {token.start}")

    def operand(self) -> None:
        self.primary()
        while (token := self.peek()) is not None and (
            token.kind is TokenKind.OPERATOR and token.text in _ARITHMETIC
        ):
            self.take()
            self.primary()

    def primary(self) -> None:
        token = self.take()
        if token.kind is TokenKind.LPAREN:
            self.condition()
            self.expect(TokenKind.RPAREN, "a closing )")
            return
        if token.kind is TokenKind.STRING:
            return
        if token.kind is TokenKind.OPERATOR and token.text == "-":
            self.primary()
            return
        if token.kind is TokenKind.IDENTIFIER:
            self.record_field(token.value)
            return
        if token.kind is not TokenKind.WORD:
            raise EsqlQueryError(f"unexpected {token.text!r} at offset {token.start}")
        word = token.text
        if word.lower() in _LITERAL_WORDS or _NUMBER.fullmatch(word):
            return
        following = self.peek()
        if following is not None and following.kind is TokenKind.LPAREN:
            self.call(word)
            return
        if not _IDENTIFIER.fullmatch(word):
            raise EsqlQueryError(f"{word!r} at offset {token.start} is not a field name")
        self.record_field(word)

    def call(self, name: str) -> None:
        if name.lower() not in self.query.functions:
            self.query.functions.append(name.lower())
        self.expect(TokenKind.LPAREN, "( after a function name")
        if self.at(TokenKind.RPAREN):
            self.take()
            return
        self.condition()
        while self.at(TokenKind.COMMA):
            self.take()
            self.condition()
        self.expect(TokenKind.RPAREN, ") closing the function call")

    def record_field(self, name: str) -> None:
        if name not in self.query.fields:
            self.query.fields.append(name)


def _split_commands(tokens: list[Token]) -> list[list[Token]]:
    commands: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind is TokenKind.PIPE:
            commands.append([])
        elif token.kind is not TokenKind.COMMENT:
            commands[-1].append(token)
    return commands


def _parse_from(tokens: list[Token], query: EsqlQuery) -> None:
    if not tokens or tokens[0].kind is not TokenKind.WORD or tokens[0].text.lower() != "from":
        raise EsqlQueryError("the query must start with a FROM command")
    target = query.sources
    expect_name = True
    for token in tokens[1:]:
        if token.kind is TokenKind.WORD and token.text.lower() == "metadata" and not expect_name:
            target = query.metadata
            expect_name = True
        elif token.kind is TokenKind.COMMA and not expect_name:
            expect_name = True
        elif token.kind in (TokenKind.WORD, TokenKind.IDENTIFIER, TokenKind.STRING) and expect_name:
            target.append(token.value)
            expect_name = False
        else:
            raise EsqlQueryError(f"unexpected {token.text!r} at offset {token.start} in FROM")
    if not query.sources or expect_name:
        raise EsqlQueryError("the FROM command names no index pattern, or ends with a comma")


def parse(text: str) -> EsqlQuery:
    """Parse a ``from ... | where ...`` query, raising EsqlQueryError on any other shape."""
    try:
        tokens = lexer.tokenize(text)
    except LexError as error:
        raise EsqlQueryError(error.message) from error
    commands = _split_commands(tokens)
    query = EsqlQuery()
    _parse_from(commands[0], query)
    if len(commands) != 2:
        raise EsqlQueryError(
            f"the query has {len(commands)} commands; expected FROM followed by one WHERE"
        )
    where = commands[1]
    if not where or where[0].kind is not TokenKind.WORD or where[0].text.lower() != "where":
        found = where[0].text if where else "nothing"
        raise EsqlQueryError(f"expected a WHERE command after FROM, found {found!r}")
    parser = _Parser(where[1:], query)
    parser.condition()
    leftover = parser.peek()
    if leftover is not None:
        raise EsqlQueryError(f"unexpected {leftover.text!r} at offset {leftover.start}")
    return query


def check(
    text: str,
    allowed: Collection[str],
    allowed_prefixes: tuple[str, ...],
    index: str | None = None,
) -> list[str]:
    """Return the problems of an ES|QL query: its shape, its index pattern and unknown fields."""
    try:
        query = parse(text)
    except EsqlQueryError as error:
        return [f"ES|QL query does not parse: {error.message}"]
    problems = []
    if index is not None and query.sources != [index]:
        problems.append(f"the query reads {', '.join(query.sources)!r}, expected {index!r}")
    problems.extend(
        f"field {name!r} is not a field of the Elastic CloudTrail data stream"
        for name in query.fields
        if name not in allowed and not name.startswith(allowed_prefixes)
    )
    return problems
