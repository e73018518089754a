"""Shared pieces of the input parsers (``parse_osc``, ``parse_mqtt``): no I/O, no clocks.

Numbers, intensities, clipping, avatar id checks and the cached emotion lookup. Every rejection
raises ``InputError(kind, reason)`` with a reason that names what was wrong; emotion names and
mixes are resolved by ``model.emotions`` (``emotion_to_vad``).
"""

from __future__ import annotations

import functools
import math
import re
from typing import NamedTuple

from vadbridge.config import AVATAR_ID_PATTERN, AVATAR_ID_RULE
from vadbridge.core.stats import show  # the one escape for input text in log lines
from vadbridge.core.types import InputError, VadSample
from vadbridge.model.emotions import emotion_to_vad, known_emotion_names

__all__ = [
    "AXES",
    "DEFAULT_AVATAR",
    "MAX_MIX_CHARS",
    "MAX_MIX_LABELS",
    "Parsed",
    "Vad",
    "check_avatar",
    "check_known",
    "check_mix_size",
    "clipped_sample",
    "emotion_error",
    "emotion_sample",
    "parse_intensity",
    "parse_number",
    "show",
]

DEFAULT_AVATAR = "default"

Vad = tuple[float | None, float | None, float | None]


class Parsed(NamedTuple):
    sample: VadSample
    clipped: bool  # some axis was outside [-1, 1] and was clipped


AXES = ("valence", "arousal", "dominance")

# A classifier emits one entry per label (GoEmotions has 28); more is not a classifier output.
# The same cap holds for text mixes (``joy+joy+...``), whose terms each cost a lookup.
MAX_MIX_LABELS = 64
# Far past any real name or mix: 64 terms of the longest name (15 characters) with a weight
# are under 2,000 characters. Checked before anything else looks at the text.
MAX_MIX_CHARS = 4096


def parse_number(value: object, what: str, type_kind: str) -> float:
    """``value`` as a float; ints are accepted, bools are not (they are ints in Python).

    Non-finite floats are rejected; an int too large for a float (JSON allows any) becomes
    +-inf, which a VAD axis clips to +-1 and the intensity and score checks reject, naming the
    int as sent.
    """
    kind = type(value)
    if kind is float:
        number: float = value  # type: ignore[assignment]
        if not math.isfinite(number):
            raise InputError("nonfinite", f"{what} is {number!r}")
        return number
    if kind is int:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    raise InputError(
        type_kind, f"{what} must be a number, got {type(value).__name__} {show(value)}"
    )


def parse_intensity(value: object, what: str, type_kind: str) -> float:
    """An emotion intensity in [0, 1]; checked here so the reason shows the value as sent."""
    intensity = parse_number(value, what, type_kind)
    if not 0.0 <= intensity <= 1.0:
        raise InputError("emotion.invalid", f"{what} must be in [0, 1], got {show(value)}")
    return intensity


def clip_axes(values: Vad) -> tuple[Vad, bool]:
    clipped = False
    out: list[float | None] = []
    for value in values:
        if value is not None:
            if value > 1.0:
                value, clipped = 1.0, True
            elif value < -1.0:
                value, clipped = -1.0, True
        out.append(value)
    return (out[0], out[1], out[2]), clipped


def clipped_sample(avatar: str, values: Vad) -> Parsed:
    vad, clipped = clip_axes(values)
    return Parsed(VadSample(avatar, vad), clipped)


def check_avatar(avatar: str, kind: str) -> str:
    if AVATAR_ID_PATTERN.fullmatch(avatar) is None:
        raise InputError(kind, f"invalid avatar id {show(avatar)}: expected {AVATAR_ID_RULE}")
    return avatar


# model.emotions answers an unknown name with a fuzzy "closest names" search that costs up to
# ~1 ms for a long name; screening names here keeps a flood of bad names cheap. Same
# normalisation as model.emotions (case, surrounding space, runs of space/_/- alike); the tests
# check that every known name still passes.
_NAME_SEPARATORS = re.compile(r"[\s_\-]+")
_KNOWN_NAMES = frozenset(known_emotion_names())


def check_known(name: str) -> None:
    key = _NAME_SEPARATORS.sub("_", name.strip().lower()).strip("_")
    if key and key not in _KNOWN_NAMES:  # empty names: model.emotions explains those
        raise InputError(
            "emotion.unknown",
            f"unknown emotion {show(name.strip())} "
            "(`vadbridge infer --list-emotions` lists the known names)",
        )


# Emotion lookups repeat (a UI sends the same few names): cache results and failures, bounded.
@functools.lru_cache(maxsize=512)
def _emotion(spec: str, intensity: float) -> tuple[float, float, float] | InputError:
    try:
        for part in spec.split("+"):
            check_known(part.partition(":")[0])
        vad = emotion_to_vad(spec, intensity)
    except InputError as error:
        return error.with_traceback(None)  # cached: keep no frames alive
    except ValueError as error:
        return emotion_error(error)
    return (float(vad[0]), float(vad[1]), float(vad[2]))


def emotion_error(error: ValueError) -> InputError:
    reason = str(error)
    # model.emotions words every unknown-name error this way (its _row_of).
    kind = "emotion.unknown" if reason.startswith("unknown emotion") else "emotion.invalid"
    return InputError(kind, reason)


# Longer specs (far past any real name or mix) are looked up uncached, so a flood of distinct
# huge names cannot fill the cache with megabytes of keys.
_MAX_CACHED_SPEC_CHARS = 256


def check_mix_size(spec: str) -> None:
    """Reject an emotion name or text mix too long or of too many terms, before any per-term
    work: the length is known at once and ``str.count`` scans in C, so a 64 KB ``joy+joy+...``
    costs microseconds, not the milliseconds of splitting and looking up every term. The
    reason gives the counts, never the text."""
    if len(spec) > MAX_MIX_CHARS:
        raise InputError(
            "emotion.invalid",
            f"emotion name or mix of {len(spec)} characters; at most {MAX_MIX_CHARS} accepted",
        )
    terms = spec.count("+") + 1
    if terms > MAX_MIX_LABELS:
        raise InputError(
            "emotion.invalid", f"emotion mix of {terms} terms; at most {MAX_MIX_LABELS} accepted"
        )


def emotion_sample(avatar: str, spec: str, intensity: float) -> Parsed:
    check_mix_size(spec)
    if len(spec) > _MAX_CACHED_SPEC_CHARS:
        result = _emotion.__wrapped__(spec, intensity)
    else:
        result = _emotion(spec, intensity)
    if isinstance(result, InputError):
        raise InputError(result.kind, result.reason)  # a fresh exception: no shared traceback
    return clipped_sample(avatar, result)
