"""What a bad config value becomes: ``Invalid`` inside the schema, ``ConfigError`` outside it.

A spec or a cross-field check raises ``Invalid(expected, got)``; the loader (and the
command-line overrides) add the file, key path and line and raise ``ConfigError``, the one
exception callers see (docs/DESIGN.md, "Packages").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ConfigError", "Invalid", "describe", "describe_kind", "lone_surrogate_at"]


class ConfigError(Exception):
    """A wrong config value; ``str()`` is one line: ``file:line: key.path: expected X, got Y``.

    ``line`` is 1-based (None when there is no source line, e.g. a command-line flag);
    ``key_path`` looks like ``outputs[1].port`` (empty for errors about the file as a whole).
    """

    def __init__(self, file: str, key_path: str, line: int | None, expected: str, got: str) -> None:
        self.file = file
        self.key_path = key_path
        self.line = line
        self.expected = expected
        self.got = got
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} expected {self.expected}, got {self.got}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.key_path, self.line, self.expected, self.got))


class Invalid(Exception):
    """Raised by a spec or a cross-field check; the loader adds file, key path and line.

    ``at`` locates the offending value relative to the mapping being checked, e.g.
    ``("password_env",)`` or ``("inputs", 1, "port")``; empty = the value itself.
    """

    def __init__(self, expected: str, got: str, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got
        self.at = at


_MAX_SHOWN_CHARS = 60


def describe(value: object, limit: int = _MAX_SHOWN_CHARS) -> str:
    """The ``got`` part of an error: short, one line, YAML-flavoured."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 128:  # str() of a huge int is slow or refused (int_max_str_digits)
            return f"an integer of {value.bit_length()} bits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= limit else value[:limit] + "…"
        return repr(shown)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a value of type {type(value).__name__}"


def describe_kind(value: object) -> str:
    """The ``got`` part for a secret: what kind of value it is, never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a value of type {type(value).__name__}"


def lone_surrogate_at(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (YAML's ``"\\ud800"`` escapes make
    them), which no UTF-8 encoder accepts; None when ``text`` encodes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None
