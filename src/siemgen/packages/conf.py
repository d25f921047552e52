"""Write Splunk .conf files: stanza names and setting values escaped for the .conf syntax.

A .conf file is line based. A line ``[name]`` starts a stanza, ``key = value`` sets a key,
``#`` starts a comment, and a line that ends with a backslash continues on the next line, with
the line break kept in the value. So a value from a rule must not carry a bare line break
(the next line would become a new key or stanza) and no line of it may end with a backslash
(it would swallow the next line). Splunk also strips the spaces around a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from siemgen.errors import SiemgenError
from siemgen.packages.common import CONTROL_CHARACTERS, one_line


class ConfValueError(SiemgenError):
    """A value cannot be written into a Splunk .conf file without changing its meaning."""


@dataclass
class Stanza:
    """One ``[name]`` section of a .conf file with its settings in output order."""

    name: str
    settings: list[tuple[str, str]] = field(default_factory=list)

    def set(self, key: str, value: str | int, *, multiline: bool = False) -> None:
        """Add ``key = value``, escaping the value for the .conf syntax."""
        self.settings.append((key, conf_value(str(value), key=key, multiline=multiline)))


def conf_value(value: str, *, key: str, multiline: bool = False) -> str:
    """Escape a setting value, turning line breaks into continuation lines when allowed.

    Raises ConfValueError for a value that has control characters, a line break where
    ``multiline`` is False, or a line that ends with a backslash.
    """
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    control = CONTROL_CHARACTERS.search(text)
    if control:
        raise ConfValueError(
            f"value of {key!r} contains the control character {control.group()!r}: {text!r}",
            hint="remove the character from the rule",
        )
    lines = text.split("\n")
    if len(lines) > 1 and not multiline:
        raise ConfValueError(
            f"value of {key!r} must be one line: {text!r}", hint="write it on one line"
        )
    for line in lines:
        if line.endswith("\\"):
            raise ConfValueError(
                f"a line of the value of {key!r} ends with a backslash, which a .conf file "
                f"reads as a line continuation: {line!r}",
                hint="end the line with another character, for example a space and a quote",
            )
    return "\\\n".join(lines)


def stanza_name(text: str) -> str:
    """Turn free text (a rule title) into a stanza name: one line, no brackets."""
    name = one_line(text).replace("[", "(").replace("]", ")")
    name = name.rstrip("\\").strip()
    if not name:
        raise ConfValueError(f"stanza name {text!r} is empty after escaping")
    return name
