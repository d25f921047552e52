"""Tokenizers for the query languages that have no parser in Python: Splunk SPL and ES|QL.

``siemgen.lexers.spl.tokenize(text)`` and ``siemgen.lexers.esql.tokenize(text)`` return
typed tokens, where each string literal carries its decoded value, so tests and the rule-test
runner can recover the literal a query compares against.
"""

from siemgen.lexers.tokens import LexError, Token, TokenKind, skeleton, string_values

__all__ = ["LexError", "Token", "TokenKind", "skeleton", "string_values"]
