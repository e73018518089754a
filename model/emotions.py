"""Emotion words -> VAD (valence, arousal, dominance), each in [-1, 1].

The table holds three kinds of names (sources: docs/references.md, "Model card" and
"Emotion VAD tables"; the full table with citations is docs/emotions.md):

- the model card's 8 basic emotions with exactly its values ("Model card");
- emotion words with published PAD ratings ("Emotion VAD tables"): Russell & Mehrabian 1977
  ("RM77 #n" = term n of the paper) and Gebhard 2005, ALMA ("ALMA05");
- aliases (inflections, everyday words, classifier labels) that resolve to one of the above.
  Aliases are *our* mapping, not published values.

The NRC VAD lexicon is deliberately absent: its licence forbids redistribution.

Neutral is the origin, so ``intensity`` is a linear blend from neutral: ``intensity * vad``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALIASES",
    "BASIC_EMOTIONS",
    "EMOTIONS",
    "Emotion",
    "UnknownEmotionError",
    "emotion_to_vad",
    "known_emotion_names",
    "mix_to_vad",
]

VAD = tuple[float, float, float]


class Emotion(NamedTuple):
    """A published table entry: its VAD and where the numbers come from."""

    vad: VAD
    source: str


class UnknownEmotionError(ValueError):
    """A name that is neither an entry nor an alias; ``close_matches`` are the nearest names."""

    def __init__(self, name: str, close_matches: list[str]) -> None:
        hint = "no close match"
        if close_matches:
            hint = f"closest known names: {', '.join(close_matches)}"
        super().__init__(
            f"unknown emotion {name!r} "
            f"({hint}; `vadbridge infer --list-emotions` lists the known names)"
        )
        self.name = name
        self.close_matches = close_matches


_CARD = "model card"
_ALMA = "ALMA05"  # Gebhard 2005, "ALMA - A Layered Model of Affect", AAMAS (its OCC -> PAD table)
_ALMA_EXTRA = "ALMA05 (via reproduction)"

# Canonical names are lower snake_case; lookups normalise input the same way (_normalise).
_TABLE: dict[str, Emotion] = {
    # The model card's basics (docs/references.md, "Model card"): the project's contract, kept
    # exact. They win over RM77/ALMA values for the same word (happy, angry, sad, fearful,
    # surprised, anger, fear, disgust -- see ALIASES and docs/emotions.md).
    "neutral": Emotion((0.0, 0.0, 0.0), _CARD),
    "happiness": Emotion((0.8, 0.6, 0.5), _CARD),
    "surprise": Emotion((0.3, 0.9, 0.2), _CARD),
    "sadness": Emotion((-0.8, -0.4, -0.3), _CARD),
    "anger": Emotion((-0.7, 0.8, 0.7), _CARD),
    "disgust": Emotion((-0.6, 0.3, 0.4), _CARD),
    "fear": Emotion((-0.7, 0.8, -0.3), _CARD),
    "contempt": Emotion((-0.4, 0.3, 0.8), _CARD),
    # Russell & Mehrabian 1977 (docs/references.md, "Emotion VAD tables").
    "interested": Emotion((0.64, 0.51, 0.17), "RM77 #8"),
    "arrogant": Emotion((0.00, 0.34, 0.48), "RM77 #9"),
    "hopeful": Emotion((0.51, 0.23, 0.14), "RM77 #18"),
    "carefree": Emotion((0.78, 0.25, 0.41), "RM77 #33"),
    "thankful": Emotion((0.61, 0.10, -0.13), "RM77 #44"),
    "in_love": Emotion((0.82, 0.65, -0.05), "RM77 #49"),
    "untroubled": Emotion((0.79, -0.01, 0.33), "RM77 #60"),
    "humiliated": Emotion((-0.63, 0.43, -0.38), "RM77 #99"),
    "shamed": Emotion((-0.57, 0.01, -0.34), "RM77 #108"),
    "displeased": Emotion((-0.55, 0.16, -0.05), "RM77 #109"),
    "shy": Emotion((-0.15, 0.06, -0.34), "RM77 #117"),
    "regretful": Emotion((-0.52, 0.02, -0.21), "RM77 #123"),
    "discouraged": Emotion((-0.61, -0.15, -0.29), "RM77 #150"),
    # Widely reproduced values attributed to RM77 without a term number (same section).
    "joy": Emotion((0.76, 0.48, 0.35), "RM77 (reproduced)"),
    "boredom": Emotion((-0.65, -0.62, -0.33), "RM77 (reproduced)"),
    # Russell 1980, "A circumplex model of affect": the angle on the valence-arousal circle; the
    # radius 0.8 and D = 0 are ours (the circumplex has no dominance axis).
    "sleepiness": Emotion((0.0, -0.8, 0.0), "R80 (270 deg)"),
    "relaxation": Emotion((0.57, -0.57, 0.0), "R80 (315 deg)"),
    # Gebhard 2005, ALMA (docs/references.md, "Emotion VAD tables").
    "admiration": Emotion((0.5, 0.3, -0.2), _ALMA),
    "disappointment": Emotion((-0.3, 0.1, -0.4), _ALMA),
    "distress": Emotion((-0.4, -0.2, -0.5), _ALMA),
    "fears_confirmed": Emotion((-0.5, -0.3, -0.7), _ALMA),
    "gloating": Emotion((0.3, -0.3, -0.1), _ALMA),
    "gratification": Emotion((0.6, 0.5, 0.4), _ALMA),
    "gratitude": Emotion((0.4, 0.2, -0.3), _ALMA),
    "happy_for": Emotion((0.4, 0.2, 0.2), _ALMA),
    "hate": Emotion((-0.6, 0.6, 0.3), _ALMA),
    "hope": Emotion((0.2, 0.2, -0.1), _ALMA),
    "pride": Emotion((0.4, 0.3, 0.3), _ALMA),
    "relief": Emotion((0.2, -0.3, 0.4), _ALMA),
    "satisfaction": Emotion((0.3, -0.2, 0.4), _ALMA),
    "shame": Emotion((-0.3, 0.1, -0.6), _ALMA),
    # ALMA05 rows not checked against the paper; these four agree with the reproduction
    # of the table in cartisan/jason (src/main/java/jason/asSemantics/Emotion.java).
    "pity": Emotion((-0.4, -0.2, -0.5), _ALMA_EXTRA),
    "remorse": Emotion((-0.3, 0.1, -0.6), _ALMA_EXTRA),
    "reproach": Emotion((-0.3, -0.1, 0.4), _ALMA_EXTRA),
    "resentment": Emotion((-0.2, -0.3, -0.2), _ALMA_EXTRA),
}

# Our mapping, not published values: alias -> canonical name. The rationale per group is in
# docs/emotions.md ("Aliases"); keep the two in step (a test checks the doc lists every alias).
_ALIASES: dict[str, str] = {
    # Words for the card's basics. RM77 also rates happy/angry/sad/fearful/surprised and ALMA05
    # rates anger/fear; the card's values win so that every route to a basic gives the card's VAD.
    "happy": "happiness",
    "excited": "happiness",
    "excitement": "happiness",
    "amused": "happiness",
    "amusement": "happiness",
    "angry": "anger",
    "mad": "anger",
    "furious": "anger",
    "rage": "anger",
    "sad": "sadness",
    "unhappy": "sadness",
    "sorrow": "sadness",
    "grief": "sadness",
    "scared": "fear",
    "afraid": "fear",
    "fearful": "fear",
    "anxious": "fear",
    "nervous": "fear",
    "nervousness": "fear",
    "surprised": "surprise",
    "shocked": "surprise",
    "astonished": "surprise",
    "realization": "surprise",
    "disgusted": "disgust",
    "contemptuous": "contempt",
    # Inflections and near-synonyms of published entries.
    "joyful": "joy",
    "bored": "boredom",
    "sleepy": "sleepiness",
    "tired": "sleepiness",
    "drowsy": "sleepiness",
    "relaxed": "relaxation",
    "love": "in_love",
    "proud": "pride",
    "grateful": "gratitude",
    "relieved": "relief",
    "satisfied": "satisfaction",
    "content": "satisfaction",
    "contentment": "satisfaction",
    "ashamed": "shamed",
    "disappointed": "disappointment",
    "guilty": "remorse",
    "guilt": "remorse",
    "sympathy": "pity",
    "jealous": "resentment",
    "envious": "resentment",
    "hopeless": "discouraged",
    "curious": "interested",
    "curiosity": "interested",
    "optimistic": "hopeful",
    "optimism": "hopeful",
    # States with no published entry here, mapped to the entry nearest in meaning and VAD.
    "calm": "relaxation",
    "desire": "interested",
    "annoyed": "displeased",
    "annoyance": "displeased",
    "frustrated": "displeased",
    "frustration": "displeased",
    "approval": "admiration",
    "disapproval": "reproach",
    "caring": "happy_for",
    "confused": "shy",
    "confusion": "shy",
    "embarrassed": "humiliated",
    "embarrassment": "humiliated",
    # Sentiment-classifier polarity labels: the entries closest to pure valence.
    "positive": "untroubled",
    "negative": "displeased",
}

_SEPARATORS = re.compile(r"[\s_\-]+")


def _normalise(name: str) -> str:
    return _SEPARATORS.sub("_", name.strip().lower()).strip("_")


def _check_tables() -> None:
    # A name that is not in normalised form could never be looked up; fail at import instead.
    for name, entry in _TABLE.items():
        if name != _normalise(name) or not all(-1.0 <= x <= 1.0 for x in entry.vad):
            raise RuntimeError(f"bad emotion table entry {name!r}: {entry}")
    for alias, target in _ALIASES.items():
        if alias != _normalise(alias) or alias in _TABLE or target not in _TABLE:
            raise RuntimeError(f"bad emotion alias {alias!r} -> {target!r}")


_check_tables()

EMOTIONS: Mapping[str, Emotion] = MappingProxyType(_TABLE)
ALIASES: Mapping[str, str] = MappingProxyType(_ALIASES)
BASIC_EMOTIONS: Mapping[str, VAD] = MappingProxyType(
    {name: entry.vad for name, entry in _TABLE.items() if entry.source == _CARD}
)

# Precomputed once: every accepted key -> row of _VAD_ROWS (float64 so the weighted mean is
# exact enough that a single basic emotion rounds to exactly the card's float32 values).
_ROW: dict[str, int] = {name: i for i, name in enumerate(_TABLE)}
_ROW.update({alias: _ROW[target] for alias, target in _ALIASES.items()})
_VAD_ROWS: npt.NDArray[np.float64] = np.array([e.vad for e in _TABLE.values()], dtype=np.float64)
_VAD_ROWS.setflags(write=False)
_KNOWN_NAMES: tuple[str, ...] = tuple(sorted(_ROW))


def known_emotion_names() -> list[str]:
    """Every accepted name: canonical names and aliases, sorted."""
    return list(_KNOWN_NAMES)


def _row_of(name: str) -> int:
    row = _ROW.get(name)  # fast path: already canonical, the common case for bridge traffic
    if row is not None:
        return row
    key = _normalise(name)
    if not key:
        raise ValueError("empty emotion name")
    row = _ROW.get(key)
    if row is None:
        close = difflib.get_close_matches(key, _KNOWN_NAMES, n=5, cutoff=0.6)
        raise UnknownEmotionError(name.strip(), close)
    return row


def _check_weight(weight: float, label: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float | np.floating | np.integer):
        raise ValueError(f"weight of {label!r} must be a number, got {weight!r}")
    value = float(weight)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"weight of {label!r} must be finite and >= 0, got {weight!r}")
    return value


def _weighted_mean(rows: list[int], weights: list[float], what: str) -> npt.NDArray[np.float64]:
    total = sum(weights)
    if not total > 0.0:
        raise ValueError(f"weights of {what} sum to {total}; need a positive sum")
    if not math.isfinite(total):
        raise ValueError(f"weights of {what} are too large to sum (overflow)")
    if len(rows) == 1:
        single: npt.NDArray[np.float64] = _VAD_ROWS[rows[0]]
        return single
    w = np.asarray(weights, dtype=np.float64) / total
    result: npt.NDArray[np.float64] = w @ _VAD_ROWS[rows]
    return result


def _parse_mix(spec: str) -> tuple[list[int], list[float]]:
    rows: list[int] = []
    weights: list[float] = []
    for part in spec.split("+"):
        name, colon, weight_text = part.partition(":")
        if not name.strip():
            raise ValueError(f"missing emotion name in {spec.strip()!r} (part {part.strip()!r})")
        if colon:
            if not weight_text.strip():
                raise ValueError(f"missing weight after ':' in {part.strip()!r}")
            if ":" in weight_text:
                raise ValueError(f"more than one ':' in {part.strip()!r}; expected NAME:WEIGHT")
            try:
                weight = float(weight_text)
            except ValueError:
                raise ValueError(
                    f"weight of {name.strip()!r} is not a number: {weight_text.strip()!r}"
                ) from None
            weights.append(_check_weight(weight, name.strip()))
        else:
            weights.append(1.0)
        rows.append(_row_of(name))
    return rows, weights


def emotion_to_vad(name: str, intensity: float = 1.0) -> npt.NDArray[np.float32]:
    """VAD (3,) float32 for an emotion name or mix, scaled by ``intensity``.

    ``name`` is one known name (case-insensitive; surrounding whitespace ignored; ``_``, ``-``
    and spaces alike) or a mix: ``happiness+surprise`` (equal weights) or
    ``happiness:0.7+surprise:0.3`` (weights normalised to sum 1; a part without ``:w`` weighs 1).
    The mix is the weighted mean of the entries' VAD.

    Neutral is the origin, so ``intensity`` in [0, 1] blends linearly from neutral:
    the result is ``intensity * vad`` (0 -> neutral, 1 -> the full entry).

    Every bad input raises ``ValueError`` (so a caller at the edge catches one type): an unknown
    name (the message lists the closest known names), an empty name or a name that is not a
    ``str``, malformed, negative or non-finite weights, a zero weight sum, or an intensity that
    is not a finite number in [0, 1].
    """
    if not isinstance(name, str):
        raise ValueError(f"emotion name must be a str, got {type(name).__name__}: {name!r}")
    intensity_value = _check_intensity(intensity)
    if not name.strip():
        raise ValueError("empty emotion name")
    rows, weights = _parse_mix(name)
    vad = _weighted_mean(rows, weights, repr(name.strip()))
    return (intensity_value * vad).astype(np.float32)


def _check_intensity(intensity: float) -> float:
    if isinstance(intensity, bool) or not isinstance(
        intensity, int | float | np.floating | np.integer
    ):
        raise ValueError(f"intensity must be a number in [0, 1], got {intensity!r}")
    value = float(intensity)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"intensity must be finite and in [0, 1], got {intensity!r}")
    return value


def mix_to_vad(weights: Mapping[str, float]) -> npt.NDArray[np.float32]:
    """Weighted mean VAD (3,) float32 of ``{name: weight}``, weights normalised to sum 1.

    Meant for classifier output such as ``[{"label": "joy", "score": 0.91}, ...]`` turned into
    ``{"joy": 0.91, ...}``. Keys are single names (no ``+``/``:`` syntax), resolved like
    ``emotion_to_vad``. Raises ``ValueError`` for an empty mapping, an unknown name, a weight
    that is not a finite number >= 0, or a zero sum.
    """
    if not weights:
        raise ValueError("empty emotion mix: need at least one {name: weight}")
    rows: list[int] = []
    values: list[float] = []
    for label, weight in weights.items():
        if not isinstance(label, str):
            raise ValueError(f"emotion name must be a str, got {type(label).__name__}: {label!r}")
        values.append(_check_weight(weight, label))
        rows.append(_row_of(label))
    return _weighted_mean(rows, values, "the mix").astype(np.float32)
