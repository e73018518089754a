"""The config schema's vocabulary: the error type, value specs and the ``setting`` field helper.

A *spec* says what one key accepts. Scalar specs check an already-constructed YAML value and
raise ``Invalid(expected, got)``; the loader (``bridge.config``) turns that into a
``ConfigError`` carrying the file, key path and line. Node-level specs (``Section``, ``ListOf``,
``TypedList``, ``Optional``) are walked by the loader itself. Each spec's ``expected`` text
serves both the error message ("expected an integer 1..240, got 300") and the generated
reference (docs/configuration.md), so the two never disagree.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


@dataclass(frozen=True)
class Context:
    """What checks may consult: relative paths resolve against ``base_dir``; secrets come from
    ``environ`` (read once, at load)."""

    base_dir: Path
    environ: Mapping[str, str]


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


class Spec:
    """What one scalar key accepts. ``check`` returns the (possibly converted) value."""

    expected: str = "a value"

    def check(self, value: object, ctx: Context) -> object:
        raise NotImplementedError

    def invalid(self, value: object) -> Invalid:
        return Invalid(self.expected, describe(value))


class Int(Spec):
    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.expected = f"an integer {low}..{high}"

    def check(self, value: object, ctx: Context) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.invalid(value)
        if not self.low <= value <= self.high:
            raise self.invalid(value)
        return value


class Number(Spec):
    """A finite real number (ints accepted, stored as float) with optional bounds."""

    def __init__(self, low: float, high: float | None = None, *, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        self.expected = f"a number {bound}" if high is None else f"a number {low:g}..{high:g}"

    def check(self, value: object, ctx: Context) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.invalid(value)
        number = float(value)
        if not math.isfinite(number):
            raise self.invalid(value)
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or (self.high is not None and number > self.high):
            raise self.invalid(value)
        return number


class Bool(Spec):
    expected = "true or false"

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, bool):
            raise self.invalid(value)
        return value


class Choice(Spec):
    def __init__(self, *options: str | int, notes: Mapping[str | int, str] | None = None) -> None:
        self.options = options
        shown = [f"{o} ({notes[o]})" if notes and o in notes else str(o) for o in options]
        self.expected = "one of " + ", ".join(shown)

    def check(self, value: object, ctx: Context) -> object:
        # bool == int in Python; `true` must not pass for an option 1.
        if isinstance(value, bool) or value not in self.options:
            raise self.invalid(value)
        return value


class Text(Spec):
    """A string accepted by ``rule`` (which returns True when the string is valid)."""

    def __init__(self, expected: str, rule: Callable[[str], bool]) -> None:
        self.expected = expected
        self.rule = rule

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, str) or not self.rule(value):
            raise self.invalid(value)
        return value


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``k`` of ``n`` (1-based): this instance owns the avatar ids whose stable hash falls
    in its bucket. The hash is CRC-32 of the UTF-8 id, the same on every machine and Python
    version (unlike ``hash()``), so instances started with 1/n … n/n partition the ids exactly."""

    k: int
    n: int

    def owns(self, avatar_id: str) -> bool:
        return zlib.crc32(avatar_id.encode("utf-8")) % self.n == self.k - 1

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


class ShardText(Spec):
    """``"k/n"`` → ``Shard(k, n)`` with 1 <= k <= n."""

    expected = "a shard 'k/n' with 1 <= k <= n (e.g. '2/4')"
    _PATTERN = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")

    def check(self, value: object, ctx: Context) -> object:
        match = self._PATTERN.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise self.invalid(value)
        k, n = int(match.group(1)), int(match.group(2))
        if not 1 <= k <= n:
            raise self.invalid(value)
        return Shard(k, n)


class IpNetworkText(Spec):
    expected = "an IP address or CIDR network (e.g. 192.168.1.20 or 10.0.0.0/8; no host names)"

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, str):
            raise self.invalid(value)
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise self.invalid(value) from None
        return value


class FilePath(Spec):
    """A path to an existing file, relative to the config file's directory; stored resolved.

    With ``default_word`` set, that word stands for the bundled file and is kept as is.
    """

    def __init__(self, what: str, *, default_word: str | None = None,
                 suffixes: tuple[str, ...] = ()) -> None:
        self.default_word = default_word
        self.suffixes = suffixes
        kinds = f" ({' or '.join(suffixes)})" if suffixes else ""
        alternative = f"'{default_word}' or " if default_word else ""
        self.expected = (f"{alternative}a path to an existing {what} file{kinds}, relative to "
                         "the config file's directory")

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise self.invalid(value)
        if value == self.default_word:
            return value
        resolved = (ctx.base_dir / Path(value).expanduser()).resolve()
        try:
            exists = resolved.is_file()
        except OSError:  # e.g. a name too long for the file system
            exists = False
        if not exists:
            raise Invalid(self.expected, f"{describe(str(resolved), 1000)} (no such file)")
        if self.suffixes and resolved.suffix.lower() not in self.suffixes:
            raise Invalid(self.expected, describe(str(resolved), 1000))
        return str(resolved)


class NewFilePath(Spec):
    """A file to write (e.g. a recording), relative to the config file's directory; its directory
    must exist. Stored resolved."""

    def __init__(self, what: str) -> None:
        self.expected = (f"a path for the {what} file, relative to the config file's directory, "
                         "in an existing directory")

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise self.invalid(value)
        resolved = (ctx.base_dir / Path(value).expanduser()).resolve()
        try:
            usable = resolved.parent.is_dir() and not resolved.is_dir()
        except OSError:
            usable = False
        if not usable:
            raise Invalid(self.expected, describe(str(resolved), 1000))
        return str(resolved)


@dataclass(frozen=True)
class Optional:
    """``null`` allowed (stored as None)."""

    inner: Spec | Section

    @property
    def expected(self) -> str:
        return f"{self.inner.expected} or null"


@dataclass(frozen=True)
class Section:
    """A nested mapping read into the dataclass ``cls``; ``null`` or absent = all defaults."""

    cls: type[Any]

    @property
    def expected(self) -> str:
        return "a mapping"


@dataclass(frozen=True)
class ListOf:
    """A list of scalars (``null`` = empty), stored as a tuple; ``unique`` forbids repeats."""

    item: Spec
    unique: bool = False

    @property
    def expected(self) -> str:
        return f"a list, each {self.item.expected}"


@dataclass(frozen=True)
class TypedList:
    """A list of mappings, each picking its dataclass from ``registry`` by its ``type`` key."""

    registry: Mapping[str, type[Any]]

    @property
    def expected(self) -> str:
        return "a list of mappings, each with a type key (" + ", ".join(self.registry) + ")"


AnySpec = Spec | Optional | Section | ListOf | TypedList


def setting(default: Any, spec: AnySpec, doc: str, *, repr: bool = True) -> Any:
    """A dataclass field whose metadata carries its spec and its documentation line.

    Mutable-looking defaults (tuples are fine) and section defaults use ``default_factory``.
    """
    metadata = {"spec": spec, "doc": doc}
    if callable(default):  # a section class or a factory
        return field(default_factory=default, metadata=metadata, repr=repr)
    return field(default=default, metadata=metadata, repr=repr)


def spec_of(f: dataclasses.Field[Any]) -> AnySpec:
    spec: AnySpec = f.metadata["spec"]
    return spec


def doc_of(f: dataclasses.Field[Any]) -> str:
    doc: str = f.metadata["doc"]
    return doc
