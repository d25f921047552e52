"""Check the structure of generated Splunk SPL searches without a Splunk server.

The checks cover what a search needs to run on CloudTrail data from the Splunk Add-on for
AWS. Quotes, parentheses and brackets must balance, and the first command must contain the
``sourcetype="aws:cloudtrail"`` clause. Boolean operators must be upper case, because Splunk
reads a lower-case ``and`` as a search term. Every field must be one the add-on extracts or
one an earlier ``rex`` or ``eval`` command created. Tokens come from ``siemgen.lexers.spl``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from siemgen.lexers import spl as lexer
from siemgen.lexers.tokens import LexError, Token, TokenKind

SOURCETYPE = "aws:cloudtrail"
# Fields every Splunk event has, besides the ones extracted from the CloudTrail JSON.
DEFAULT_FIELDS = frozenset({"sourcetype", "index", "source", "host", "_raw", "_time"})
_SEARCH_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_BOOLEAN_WORDS = frozenset({"AND", "OR", "NOT"})
_EXPRESSION_WORDS = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "TRUE", "FALSE", "NULL"})
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_SEARCH_COMMANDS = frozenset({"search"})
_EXPRESSION_COMMANDS = frozenset({"where"})


@dataclass
class SplSearch:
    """The fields a search reads and the problems found in it."""

    fields: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _commands(tokens: list[Token]) -> list[list[Token]]:
    commands: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind is TokenKind.LBRACKET:
            depth += 1
        elif token.kind is TokenKind.RBRACKET:
            depth -= 1
        if token.kind is TokenKind.PIPE and depth == 0:
            commands.append([])
        elif token.kind is not TokenKind.COMMENT:
            commands[-1].append(token)
    return commands


def _balance(tokens: list[Token]) -> list[str]:
    """Return problems with parentheses and brackets, which the tokens keep outside quotes."""
    stack: list[Token] = []
    problems = []
    pairs = {TokenKind.RPAREN: TokenKind.LPAREN, TokenKind.RBRACKET: TokenKind.LBRACKET}
    for token in tokens:
        if token.kind in (TokenKind.LPAREN, TokenKind.LBRACKET):
            stack.append(token)
        elif token.kind in pairs:
            if not stack or stack[-1].kind is not pairs[token.kind]:
                problems.append(f"unmatched {token.text!r} at offset {token.start}")
                continue
            stack.pop()
    problems.extend(f"unclosed {token.text!r} at offset {token.start}" for token in stack)
    return problems


class _Checker:
    def __init__(self, known: Collection[str], prefixes: tuple[str, ...]) -> None:
        self.known = set(known) | DEFAULT_FIELDS
        self.prefixes = prefixes
        self.result = SplSearch()

    def use(self, name: str, token: Token) -> None:
        if name not in self.result.fields:
            self.result.fields.append(name)
        if name not in self.known and not name.startswith(self.prefixes):
            self.result.problems.append(
                f"field {name!r} at offset {token.start} is not a CloudTrail field of the "
                "Splunk Add-on for AWS"
            )

    def search_terms(self, tokens: list[Token]) -> None:
        """Check ``field=value`` terms, ``field IN (...)`` and the boolean operators."""
        for index, token in enumerate(tokens):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if token.kind not in (TokenKind.WORD, TokenKind.STRING):
                continue
            if following is not None and following.kind is TokenKind.OPERATOR:
                if following.text in _SEARCH_OPERATORS:
                    self.use(token.value, token)
                continue
            if (
                following is not None
                and following.kind is TokenKind.WORD
                and following.text == "IN"
            ):
                self.use(token.value, token)
                continue
            lowercase_operator = (
                token.kind is TokenKind.WORD
                and token.text.upper() in _BOOLEAN_WORDS
                and token.text not in _BOOLEAN_WORDS
            )
            if lowercase_operator:
                self.result.problems.append(
                    f"{token.text!r} at offset {token.start} is a search term, not an "
                    f"operator; Splunk reads only {token.text.upper()!r} as the operator"
                )

    def expression(self, tokens: list[Token]) -> None:
        """Check the field names of an ``eval`` or ``where`` expression."""
        for index, token in enumerate(tokens):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if token.kind is not TokenKind.WORD:
                continue
            if following is not None and following.kind is TokenKind.LPAREN:
                continue
            if token.text.upper() in _EXPRESSION_WORDS or _NUMBER.fullmatch(token.text):
                continue
            self.use(token.text.strip("'"), token)

    def command(self, tokens: list[Token]) -> None:
        name = tokens[0].text.lower()
        rest = tokens[1:]
        if name in _SEARCH_COMMANDS:
            self.search_terms(rest)
        elif name in _EXPRESSION_COMMANDS:
            self.expression(rest)
        elif name == "eval":
            self.eval(rest)
        elif name == "rex":
            self.rex(rest)
        elif name == "regex":
            self.search_terms(rest)
        else:
            self.result.problems.append(
                f"command {tokens[0].text!r} at offset {tokens[0].start} is not one siemgen "
                "generates (search, where, eval, rex, regex)"
            )

    def eval(self, tokens: list[Token]) -> None:
        if len(tokens) < 3 or tokens[1].text != "=":
            self.result.problems.append("eval must assign a field: eval NAME=EXPRESSION")
            return
        self.known.add(tokens[0].text)
        self.expression(tokens[2:])

    def rex(self, tokens: list[Token]) -> None:
        pattern = next((token for token in tokens if token.kind is TokenKind.STRING), None)
        if pattern is None:
            self.result.problems.append("rex has no regular expression in quotes")
            return
        for index, token in enumerate(tokens[:-2]):
            if token.text == "field" and tokens[index + 1].text == "=":
                self.use(tokens[index + 2].value, tokens[index + 2])
        self.known.update(_NAMED_GROUP.findall(pattern.value))


def has_source_clause(first_command: list[Token], sourcetype: str = SOURCETYPE) -> bool:
    """Return whether a search's first command selects ``sourcetype=<sourcetype>``."""
    for index in range(len(first_command) - 2):
        name, operator, value = first_command[index : index + 3]
        if (
            name.kind is TokenKind.WORD
            and name.text == "sourcetype"
            and operator.text == "="
            and value.kind in (TokenKind.STRING, TokenKind.WORD)
            and value.value == sourcetype
        ):
            return True
    return False


def inspect(
    query: str, known: Collection[str], prefixes: tuple[str, ...], sourcetype: str = SOURCETYPE
) -> SplSearch:
    """Tokenize and check one search, collecting the fields it reads and every problem."""
    try:
        tokens = lexer.tokenize(query)
    except LexError as error:
        return SplSearch(problems=[error.message])
    checker = _Checker(known, prefixes)
    checker.result.problems.extend(_balance(tokens))
    commands = _commands(tokens)
    if not commands[0]:
        checker.result.problems.append("the search is empty before the first |")
        return checker.result
    if not has_source_clause(commands[0], sourcetype):
        checker.result.problems.append(
            f'the first command does not select sourcetype="{sourcetype}"'
        )
    checker.search_terms(commands[0])
    for command in commands[1:]:
        if not command:
            checker.result.problems.append("empty command between two |")
            continue
        checker.command(command)
    return checker.result


def check(
    query: str, known: Collection[str], prefixes: tuple[str, ...], sourcetype: str = SOURCETYPE
) -> list[str]:
    """Return the structural problems of one search; an empty list means it passed."""
    return inspect(query, known, prefixes, sourcetype).problems
