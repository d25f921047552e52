"""Translate Sigma regular expressions into Lucene RegExp, the regex syntax of Elasticsearch.

Sigma regular expressions use Python's ``re`` syntax (pySigma compiles them with it) and
match anywhere in the value, as ``re.search`` does. Lucene ``/regex/``, ES|QL ``RLIKE`` and
EQL ``regex`` all run Lucene's ``RegExp``, which must match the whole value and has no anchors,
inline flags, lookaround, backreferences or word boundaries, and reads ``\\n`` as the letter
``n``. ``translate`` rewrites a Sigma regular expression into a Lucene one that matches the
same values, or raises UnsupportedFeatureError naming the construct Lucene cannot express.

Sources: Lucene's ``RegExp`` grammar (``org.apache.lucene.util.automaton.RegExp``, Lucene 9:
``\\d`` is ``[0-9]``, ``\\w`` is ``[a-zA-Z_0-9]``, ``\\s`` is ``[ \\t\\n\\r]``, reserved
characters need a backslash inside character classes too) and the Python ``re`` documentation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sigma.types import SigmaRegularExpressionFlag

from siemgen.errors import UnsupportedFeatureError

# Every character Lucene's RegExp reserves with all optional operators on, as Elasticsearch
# enables them ("Regular expression syntax" in the Elasticsearch reference).
LUCENE_REGEX_RESERVED = frozenset('.?+*|{}[]()"\\#@&<>~')
# Lucene reads ``^`` and ``$`` as plain characters, but a backslash before them (harmless in
# Lucene) shows a reader that the translation keeps them as characters, not anchors.
_LITERAL_ESCAPED = LUCENE_REGEX_RESERVED | frozenset("^$")
# Inside a character class ``-`` marks a range and a leading ``^`` negates, besides the above.
_CLASS_RESERVED = LUCENE_REGEX_RESERVED | frozenset("-^")
_SHORTHANDS = frozenset("dDsSwW")
# The ranges of Lucene's shorthand classes, for writing them inside a character class.
_SHORTHAND_RANGES: dict[str, tuple[tuple[str, str], ...]] = {
    "d": (("0", "9"),),
    "w": (("a", "z"), ("A", "Z"), ("0", "9"), ("_", "_")),
    "s": ((" ", " "), ("\t", "\t"), ("\n", "\n"), ("\r", "\r")),
}
_CONTROL_ESCAPES = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_HEX_ESCAPE_LENGTHS = {"x": 2, "u": 4, "U": 8}
_OCTAL = frozenset("01234567")
_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")
# Python accepts global flag groups only at the start of a pattern.
_GLOBAL_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")
_FLAG_LETTERS = {
    "i": SigmaRegularExpressionFlag.IGNORECASE,
    "m": SigmaRegularExpressionFlag.MULTILINE,
    "s": SigmaRegularExpressionFlag.DOTALL,
}
# ``a`` (ASCII classes) and ``u`` (Unicode classes) change only what ``\\w``, ``\\d`` and
# ``\\s`` match, and Lucene's classes are ASCII.
_HARMLESS_FLAG_LETTERS = frozenset("au")
_ANY_TEXT = ".*"


@dataclass(frozen=True)
class LuceneRegex:
    """A regular expression translated to Lucene RegExp syntax."""

    pattern: str
    ignore_case: bool
    """True when the expression requests case-insensitive matching and ``pattern`` leaves it
    to the query operator, such as EQL's ``regex~``. False when ``pattern`` folds case itself."""


@dataclass(frozen=True)
class _Literal:
    char: str


@dataclass(frozen=True)
class _Operator:
    text: str


@dataclass(frozen=True)
class _Shorthand:
    letter: str


@dataclass(frozen=True)
class _CharClass:
    negated: bool
    ranges: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Anchor:
    start: bool
    text: str


_Token = _Literal | _Operator | _Shorthand | _CharClass | _Anchor


@dataclass(frozen=True)
class _Context:
    """The expression being translated, for error messages."""

    regex: str
    language: str
    field: str | None

    def fail(self, construct: str, hint: str) -> UnsupportedFeatureError:
        where = f" on field {self.field!r}" if self.field else ""
        return UnsupportedFeatureError(
            f"regular expression {self.regex!r}{where} uses {construct}, which "
            f"{self.language} regular expressions cannot express",
            field=self.field,
            hint=hint,
        )


class _Scanner:
    """Split a Python regular expression that ``re`` accepts into tokens."""

    def __init__(self, context: _Context, start: int) -> None:
        self.regex = context.regex
        self.position = start
        self.fail = context.fail

    def peek(self, offset: int = 0) -> str:
        index = self.position + offset
        return self.regex[index] if index < len(self.regex) else ""

    def tokens(self) -> list[_Token]:
        found: list[_Token] = []
        while self.position < len(self.regex):
            token = self.token()
            if token is not None:
                found.append(token)
        return found

    def token(self) -> _Token | None:
        char = self.peek()
        self.position += 1
        if char == "\\":
            return self.escape()
        if char == "[":
            return self.char_class()
        if char == "(":
            return self.group()
        if char in "*+?":
            return self.quantified(char)
        if char == "{":
            return self.brace()
        if char in ".|)":
            return _Operator(char)
        if char in "^$":
            return _Anchor(start=char == "^", text=char)
        return _Literal(char)

    def quantified(self, text: str) -> _Operator:
        # A lazy quantifier matches the same values as the greedy one, so its ``?`` is dropped:
        # Lucene would read ``a+?`` as ``(a+)?``.
        if self.peek() == "?":
            self.position += 1
        elif self.peek() == "+":
            raise self.fail(
                f"the possessive quantifier {text + '+'!r}",
                "write the quantifier without the trailing +",
            )
        return _Operator(text)

    def brace(self) -> _Token:
        match = _QUANTIFIER.match(self.regex, self.position - 1)
        if match is None or match.group(0) == "{}":
            # Python reads a brace that does not start a quantifier as a literal.
            return _Literal("{")
        self.position = match.end()
        low, comma, high = match.groups()
        low = low or "0"
        text = "{" + low + (comma + high) + "}"
        return self.quantified(text)

    def group(self) -> _Token | None:
        if self.peek() != "?":
            return _Operator("(")
        following = self.regex[self.position + 1 : self.position + 3]
        if following.startswith(":"):
            self.position += 2
            return _Operator("(")
        if following == "P<":
            self.position = self.regex.index(">", self.position) + 1
            return _Operator("(")
        if following.startswith("#"):
            self.position = self.regex.index(")", self.position) + 1
            return None
        if following.startswith(("=", "!")):
            raise self.fail("a lookahead group", "match the following text in another condition")
        if following in ("<=", "<!"):
            raise self.fail("a lookbehind group", "match the preceding text in another condition")
        if following == "P=":
            raise self.fail("a backreference", "write the repeated text out")
        if following.startswith("("):
            raise self.fail("a conditional group", "split the rule into two selections")
        if following.startswith(">"):
            raise self.fail("an atomic group", "write the group without ?>")
        raise self.fail(
            "an inline flag group",
            "remove it and use Sigma's re|i, re|m or re|s modifiers for the whole expression",
        )

    def escape(self) -> _Token:
        char = self.peek()
        self.position += 1
        if char in _SHORTHANDS:
            return _Shorthand(char)
        if char == "A":
            return _Anchor(start=True, text="\\A")
        if char == "Z":
            return _Anchor(start=False, text="\\Z")
        if char in "bB":
            raise self.fail(
                f"the word boundary \\{char}", "match the surrounding characters explicitly"
            )
        if char in "123456789" and not self.octal_follows(char):
            raise self.fail(f"the backreference \\{char}", "write the repeated text out")
        return _Literal(self.escaped_char(char))

    def octal_follows(self, first: str) -> bool:
        return first in _OCTAL and self.peek() in _OCTAL and self.peek(1) in _OCTAL

    def escaped_char(self, char: str) -> str:
        """Return the character an escape stands for; ``char`` follows the backslash."""
        if char in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[char]
        if char in _HEX_ESCAPE_LENGTHS:
            length = _HEX_ESCAPE_LENGTHS[char]
            digits = self.regex[self.position : self.position + length]
            self.position += length
            return chr(int(digits, 16))
        if char == "N":
            end = self.regex.index("}", self.position)
            name = self.regex[self.position + 1 : end]
            self.position = end + 1
            return unicodedata.lookup(name)
        if char in _OCTAL:
            digits = char
            while len(digits) < 3 and self.peek() in _OCTAL:
                digits += self.peek()
                self.position += 1
            return chr(int(digits, 8))
        return char

    def char_class(self) -> _CharClass:
        negated = self.peek() == "^"
        if negated:
            self.position += 1
        ranges: list[tuple[str, str]] = []
        first = True
        while first or self.peek() != "]":
            first = False
            low = self.class_item(ranges)
            if low is None:
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.position += 1
                high = self.class_item(ranges)
                if high is None:
                    raise self.fail("a range that ends in a class escape", "list the characters")
                ranges.append((low, high))
            else:
                ranges.append((low, low))
        self.position += 1
        return _CharClass(negated, tuple(ranges))

    def class_item(self, ranges: list[tuple[str, str]]) -> str | None:
        """Read one class member: return its character, or None after adding a shorthand."""
        char = self.peek()
        self.position += 1
        if char == "[" and self.peek() in (":", "=", "."):
            # PCRE and RE2 read [:alpha:] inside a class as a POSIX class. Read as plain
            # characters, it would be a class of [ : a l p h that ends at the first ].
            raise self.fail("a POSIX class such as [:alpha:]", "list the characters instead")
        if char != "\\":
            return char
        escaped = self.peek()
        self.position += 1
        if escaped in _SHORTHAND_RANGES:
            ranges.extend(_SHORTHAND_RANGES[escaped])
            return None
        if escaped in _SHORTHANDS:
            raise self.fail(
                f"the negated class \\{escaped} inside a character class",
                "list the allowed characters instead",
            )
        if escaped == "b":
            return "\b"
        return self.escaped_char(escaped)


def _split_flags(
    context: _Context, flags: Collection[SigmaRegularExpressionFlag]
) -> tuple[set[SigmaRegularExpressionFlag], int]:
    """Merge the global flag groups at the start of the expression into ``flags``."""
    merged = set(flags)
    position = 0
    while match := _GLOBAL_FLAGS.match(context.regex, position):
        for letter in match.group(1):
            if letter in _FLAG_LETTERS:
                merged.add(_FLAG_LETTERS[letter])
            elif letter not in _HARMLESS_FLAG_LETTERS:
                raise context.fail(
                    f"the inline flag {letter!r}",
                    "remove the flag group; Sigma's re modifier accepts the i, m and s flags",
                )
        position = match.end()
    return merged, position


def _alternatives(tokens: list[_Token]) -> list[list[_Token]]:
    """Split the tokens at each ``|`` outside parentheses."""
    parts: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        if token == _Operator("("):
            depth += 1
        elif token == _Operator(")"):
            depth -= 1
        elif token == _Operator("|") and depth == 0:
            parts.append([])
            continue
        parts[-1].append(token)
    return parts


class _Writer:
    """Write tokens as Lucene RegExp text."""

    def __init__(self, context: _Context, fold_case: bool, also_escape: str) -> None:
        self.context = context
        self.fold_case = fold_case
        self.also_escape = frozenset(also_escape)

    def write(self, tokens: Iterable[_Token]) -> str:
        return "".join(self.token(token) for token in tokens)

    def token(self, token: _Token) -> str:
        if isinstance(token, _Literal):
            return self.literal(token.char)
        if isinstance(token, _Operator):
            return token.text
        if isinstance(token, _Shorthand):
            return "\\" + token.letter
        if isinstance(token, _CharClass):
            return self.char_class(token)
        raise self.context.fail(
            f"the anchor {token.text!r} inside a group or between other parts",
            "Elasticsearch patterns always match the whole value, so ^ and $ can only be "
            "translated at the start and end of the pattern or of a top-level alternative",
        )

    def escape(self, char: str, reserved: frozenset[str]) -> str:
        return "\\" + char if char in reserved or char in self.also_escape else char

    def literal(self, char: str) -> str:
        variants = _case_variants(char) if self.fold_case else []
        if variants:
            return self.char_class(_CharClass(False, tuple((c, c) for c in [char, *variants])))
        return self.escape(char, _LITERAL_ESCAPED)

    def char_class(self, token: _CharClass) -> str:
        ranges = list(token.ranges)
        if self.fold_case:
            ranges = self.folded(ranges)
        parts = []
        for low, high in dict.fromkeys(ranges):
            text = self.escape(low, _CLASS_RESERVED)
            if high != low:
                text += "-" + self.escape(high, _CLASS_RESERVED)
            parts.append(text)
        return "[" + ("^" if token.negated else "") + "".join(parts) + "]"

    def folded(self, ranges: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Add the other case of every letter in ``ranges``."""
        result = list(ranges)
        for low, high in ranges:
            if low == high:
                result.extend((variant, variant) for variant in _case_variants(low))
                continue
            if ord(high) > 0x7F:
                raise self.context.fail(
                    f"the range {low}-{high} beyond ASCII with case-insensitive matching",
                    "list the letters of the range in both cases",
                )
            for first, last, shift in (("a", "z", -32), ("A", "Z", 32)):
                start, end = max(low, first), min(high, last)
                if start <= end:
                    result.append((chr(ord(start) + shift), chr(ord(end) + shift)))
        return result


def _case_variants(char: str) -> list[str]:
    """Return the other single-character cases of ``char``."""
    variants = []
    for variant in (char.lower(), char.upper(), char.swapcase()):
        if len(variant) == 1 and variant != char and variant not in variants:
            variants.append(variant)
    return variants


def _starts_with_any_text(tokens: list[_Token]) -> bool:
    return tokens[:2] == [_Operator("."), _Operator("*")]


def _ends_with_any_text(tokens: list[_Token]) -> bool:
    return len(tokens) >= 2 and tokens[-2:] == [_Operator("."), _Operator("*")]


def translate(
    regex: str,
    flags: Collection[SigmaRegularExpressionFlag] = (),
    *,
    language: str,
    fold_case: bool,
    also_escape: str = "",
    field: str | None = None,
) -> LuceneRegex:
    """Translate a Sigma regular expression into Lucene RegExp that matches the same values.

    Each top-level alternative matches anywhere in the value, so it gets ``.*`` before and
    after it, except after a leading ``^`` (or ``\\A``) and before a trailing ``$`` (or
    ``\\Z``), which are dropped. Anchors anywhere else, and ``^``/``$`` under the ``m`` flag,
    raise UnsupportedFeatureError. A leading ``(?i)`` counts as the ``i`` flag. With
    ``fold_case`` the ``i`` flag is written into the pattern (``a`` becomes ``[aA]``), for
    languages without a case-insensitive regex operator; otherwise ``ignore_case`` reports it.
    ``also_escape`` lists characters the surrounding syntax needs escaped, such as ``/``.

    NOTE: Lucene's ``.`` also matches a line break, which Python's matches only with the
    ``s`` flag. Lucene's ``\\w``, ``\\d`` and ``\\s`` are ASCII classes, and Python's are
    Unicode ones. Values with line breaks or non-ASCII text can therefore match differently.
    """
    context = _Context(regex, language, field)
    merged, start = _split_flags(context, flags)
    tokens = _Scanner(context, start).tokens()
    multiline = SigmaRegularExpressionFlag.MULTILINE in merged
    ignore_case = SigmaRegularExpressionFlag.IGNORECASE in merged
    writer = _Writer(context, fold_case and ignore_case, also_escape)
    written = []
    for part in _alternatives(tokens):
        anchored_start = bool(part) and isinstance(part[0], _Anchor) and part[0].start
        if anchored_start:
            _check_multiline(context, part.pop(0), multiline)
        anchored_end = bool(part) and isinstance(part[-1], _Anchor) and not part[-1].start
        if anchored_end:
            _check_multiline(context, part.pop(), multiline)
        body = writer.write(part)
        if not anchored_start and not _starts_with_any_text(part):
            body = _ANY_TEXT + body
        if not anchored_end and not _ends_with_any_text(part) and body != _ANY_TEXT:
            body += _ANY_TEXT
        # Lucene reads ``()`` as the empty string, and an empty alternative is invalid.
        written.append(body or "()")
    return LuceneRegex("|".join(written), ignore_case and not writer.fold_case)


def _check_multiline(context: _Context, anchor: _Token, multiline: bool) -> None:
    if multiline and isinstance(anchor, _Anchor) and anchor.text in "^$":
        raise context.fail(
            f"the anchor {anchor.text!r} with the m modifier, where it matches at line breaks",
            "remove the m modifier, or the anchor",
        )


def has_anchor(regex: str) -> bool:
    """Tell whether a Python regular expression contains an anchor: ``^ $ \\A \\Z \\z \\G``.

    Escaped characters and the insides of character classes are skipped, so ``\\$`` and
    ``[^a]`` do not count.
    """
    index = 0
    in_class = False
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            if not in_class and regex[index + 1 : index + 2] in ("A", "Z", "z", "G"):
                return True
            index += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            # A ``^`` right after ``[`` negates, and a ``]`` right after ``[`` or ``[^`` is literal.
            index += 1
            if regex[index : index + 1] == "^":
                index += 1
            if regex[index : index + 1] == "]":
                index += 1
            continue
        elif char in "^$":
            return True
        index += 1
    return False
