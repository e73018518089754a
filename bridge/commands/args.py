"""Command-line argument helpers shared by the ``vadbridge`` subcommands.

Every subcommand answers a bad argument with exit status 2 and one line on stderr
(docs/DESIGN.md, "Packages", ``bridge/commands/``): argparse ``type=`` functions here raise
``argparse.ArgumentTypeError``, checks made after parsing raise ``UsageError``, and ``fail``
prints ``vadbridge <command>: error: <reason>``. A message that points somewhere points at what
an installed user has: a command (``vadbridge infer --list-emotions``), not a repository file.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from vadbridge.model.emotions import UnknownEmotionError, emotion_to_vad
from vadbridge.model.optional import installed

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "LIST_EMOTIONS",
    "LIST_SHAPES",
    "NEEDS_TORCH",
    "UsageError",
    "check_finite",
    "check_range",
    "emotion_vad",
    "fail",
    "host_port",
    "integer",
    "number_in",
    "positive_float",
    "torch_installed",
]

EXIT_USAGE: Final = 2
EXIT_FAILURE: Final = 1
NEEDS_TORCH: Final = (
    "needs torch: pip install 'vadbridge[train]' (CPU build: pip install torch==2.13.0 first)"
)
# Where an error sends a user for the vocabulary (``vadbridge infer`` prints both lists).
LIST_EMOTIONS: Final = "vadbridge infer --list-emotions"
LIST_SHAPES: Final = "vadbridge infer --list-shapes"


def torch_installed() -> bool:
    """Whether ``import torch`` can work, found without importing it (that takes seconds)."""
    return installed("torch")


class UsageError(ValueError):
    """A bad argument found after parsing: exit 2 with this one-line reason."""


def fail(command: str, error: BaseException | str, code: int = EXIT_USAGE) -> int:
    """Print ``vadbridge <command>: error: <error on one line>`` to stderr; return ``code``."""
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"vadbridge {command}: error: {message}", file=sys.stderr)
    return code


def emotion_vad(spec: str, intensity: float = 1.0) -> npt.NDArray[np.float32]:
    """``emotion_to_vad`` for a command-line value; bad input raises ``UsageError``.

    An unknown name's message keeps the closest names and points at ``LIST_EMOTIONS`` for the
    rest (the model's own message names a repository document an installed user lacks).
    """
    try:
        return emotion_to_vad(spec, intensity)
    except UnknownEmotionError as error:
        close = error.close_matches
        hint = f"closest known names: {', '.join(close)}" if close else "no close match"
        raise UsageError(
            f"unknown emotion {error.name!r} ({hint}; `{LIST_EMOTIONS}` lists them all)"
        ) from None
    except ValueError as error:
        raise UsageError(str(error)) from None


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) as an argparse ``type``.

    The rules are ``vadbridge.config.parse_host_port``'s (those of ``vadbridge run``'s flags);
    argparse names the flag itself, so the reason here is only what was expected.
    """
    # Imported here: the model's and training's subcommands use this module too, and need
    # no YAML config machinery.
    from vadbridge.config import ConfigError, parse_host_port

    try:
        return parse_host_port(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(f"expected {error.expected}, got {error.got}") from None


def positive_float(text: str) -> float:
    """A finite number > 0, as an argparse ``type``."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``low..high`` (no upper bound if ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text!r}")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {text!r}")
        return value

    return parse


def number_in(low: float, high: float, subject: str) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in [low, high]; ``subject`` starts the error."""

    def parse(text: str) -> float:
        value = _number(text)
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"{subject} must be in [{low:g}, {high:g}], got {text!r}"
            )
        return value

    return parse


def check_range(flag: str, value: float, low: float, high: float) -> None:
    """Raise ``UsageError`` unless ``value`` (of ``flag``) is finite and in [low, high]."""
    if not (math.isfinite(value) and low <= value <= high):
        raise UsageError(f"{flag} must be in [{low:g}, {high:g}], got {value}")


def check_finite(flag: str, values: Sequence[float]) -> None:
    """Raise ``UsageError`` unless every value of ``flag`` is a finite number."""
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{flag} values must be finite numbers, got {list(values)}")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
