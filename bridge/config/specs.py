"""The schema's vocabulary: value specs and the ``setting`` field helper.

A *spec* says what one key accepts. Scalar specs check an already-constructed YAML value and
raise ``Invalid(expected, got)``; the loader turns that into a ``ConfigError`` carrying the
file, key path and line. Node-level specs (``Section``, ``ListOf``, ``TypedList``,
``Optional``) are walked by the loader itself. Each spec's ``expected`` text serves both the
error message ("expected an integer 1..240, got 300") and the generated reference
(docs/configuration.md), so the two never disagree.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from vadbridge.config.errors import Invalid, describe, describe_kind

__all__ = [
    "MAX_NUMBER_MAGNITUDE",
    "AnySpec",
    "Bool",
    "Choice",
    "Context",
    "FilePath",
    "Int",
    "IpNetworkText",
    "ListOf",
    "NewFilePath",
    "Number",
    "NumberOrAuto",
    "OffOrAtLeast",
    "Optional",
    "Section",
    "Spec",
    "Text",
    "TypedList",
    "default_of",
    "doc_of",
    "setting",
    "spec_of",
]


@dataclass(frozen=True)
class Context:
    """What checks may consult: relative paths resolve against ``base_dir``; secrets come from
    ``environ`` (read once, at load); ``config_file`` is the file being loaded, if any (an
    output must not write over it)."""

    base_dir: Path
    environ: Mapping[str, str]
    config_file: Path | None = None


MAX_NUMBER_MAGNITUDE: Final = 1e15
"""No number in the config means anything beyond this (1e15 seconds is 30 million years); a
larger one, or a 400-digit integer, is refused before any arithmetic can overflow."""


class Spec:
    """What one scalar key accepts. ``check`` returns the (possibly converted) value.

    A ``secret`` spec's errors say what kind of value was found ("a number"), never the value.
    """

    expected: str = "a value"
    secret: bool = False

    def check(self, value: object, ctx: Context) -> object:
        raise NotImplementedError

    def show(self, value: object) -> str:
        """``value`` as an error's ``got`` part (only its kind for a secret)."""
        return describe_kind(value) if self.secret else describe(value)

    def invalid(self, value: object) -> Invalid:
        return Invalid(self.expected, self.show(value))


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
        if isinstance(value, float) and not math.isfinite(value):
            raise self.invalid(value)
        if abs(value) > MAX_NUMBER_MAGNITUDE:  # before float() of a huge int can overflow
            raise Invalid(self.expected, f"{describe(value)} (numbers here are at most "
                          f"{MAX_NUMBER_MAGNITUDE:g} in magnitude)")
        number = float(value)
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or (self.high is not None and number > self.high):
            raise self.invalid(value)
        return number


class OffOrAtLeast(Number):
    """0 (= off) or a number from ``minimum`` up: an interval too short to mean anything would
    only flood (e.g. 166k stats lines in 3 s)."""

    def __init__(self, minimum: float) -> None:
        super().__init__(0.0)
        self.minimum = minimum
        self.expected = f"0 (off) or a number >= {minimum:g}"

    def check(self, value: object, ctx: Context) -> object:
        number = super().check(value, ctx)
        assert isinstance(number, float)
        if 0.0 < number < self.minimum:
            raise self.invalid(value)
        return number


class NumberOrAuto(Number):
    """``auto`` (stored as the string) or a number in bounds."""

    def __init__(self, low: float, high: float, auto_means: str) -> None:
        super().__init__(low, high)
        self.expected = f"auto ({auto_means}) or {self.expected}"

    def check(self, value: object, ctx: Context) -> object:
        if value == "auto":
            return "auto"
        return super().check(value, ctx)


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

    def __init__(self, expected: str, rule: Callable[[str], bool], *,
                 secret: bool = False) -> None:
        self.expected = expected
        self.rule = rule
        self.secret = secret

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, str) or not self.rule(value):
            raise self.invalid(value)
        return value


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

    With ``default_word`` set, that word stands for the bundled file and is kept as is; so are
    the ``names`` of other bundled files.
    """

    def __init__(self, what: str, *, default_word: str | None = None,
                 suffixes: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> None:
        self.default_word = default_word
        self.names = names
        self.suffixes = suffixes
        kinds = f" ({' or '.join(suffixes)})" if suffixes else ""
        words = [f"'{word}'" for word in (default_word, *names) if word]
        alternative = f"{', '.join(words)} or " if words else ""
        self.expected = (f"{alternative}a path to an existing {what} file{kinds}, relative to "
                         "the config file's directory")

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise self.invalid(value)
        if value == self.default_word or value in self.names:
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


def default_of(cls: Any, name: str) -> Any:
    """The default of ``cls``'s key ``name``: what a cross-field check (``_finish``) assumes
    for a key the YAML leaves out."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default
