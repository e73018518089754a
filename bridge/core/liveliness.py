"""Idle liveliness: procedural blinks and a slow breathing layer on top of the model's face.

A face driven only by VAD freezes whenever the emotion holds still; real faces blink and breathe.
``Liveliness.apply`` adds both to a batch of output frames in place. It is pure (time comes in as
an argument, randomness from a seeded generator) and runs after the model, before symmetry
(issue 7, item 7); the daemon copies the animator's weights into an output buffer first, so the
model's own output is never touched.

Blinks. Each avatar blinks at random intervals drawn uniformly from ``blink_interval_s``; its
first blink is at a random offset in ``[0, max]`` after it appears, so a crowd never blinks in
unison. The lid curve (issue 7's figures): a fast close (80 ms, smoothstep), a brief hold at fully
closed (40 ms) and a slower open (180 ms, smoothstep), 300 ms in all. eyeBlinkLeft and
eyeBlinkRight get the same value (``w + (1 - w) * closure``, so a blink always closes the lids
fully whatever the model's own blink weight), and eyeWide is scaled by ``1 - closure`` so a raised
upper lid cannot hold the eye open. A blink that falls due while the eyes are wide (eyeWide >
``WIDE_EYES_THRESHOLD``: surprise, fear — EMFACS AU 5 "upper lid raiser" is part of both,
docs/references.md, "EMFACS prototypes") waits until they relax; a blink in progress always
completes.

Breathing. A raised-cosine wave per avatar at 0.2-0.3 Hz (a calm breathing rate) lowers the jaw
slightly with the lips kept together (jawOpen and mouthClose, each <= 0.02), and a slower one at
0.07-0.12 Hz lifts the inner brows by <= 0.015. Only centre shapes move, so the layer is
symmetric by construction. Every value is clipped to [0, 1].
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from vadbridge.config import LivelinessConfig
from vadbridge.model.arkit import ARKIT_INDEX

__all__ = [
    "BLINK_CLOSE_S",
    "BLINK_DURATION_S",
    "BLINK_HOLD_S",
    "BLINK_OPEN_S",
    "WIDE_EYES_THRESHOLD",
    "Liveliness",
    "blink_curve",
]

BLINK_CLOSE_S: Final = 0.08
BLINK_HOLD_S: Final = 0.04
BLINK_OPEN_S: Final = 0.18
BLINK_DURATION_S: Final = BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S
WIDE_EYES_THRESHOLD: Final = 0.3

BREATH_HZ: Final = (0.2, 0.3)
BREATH_JAW_AMPLITUDE: Final = 0.02
BROW_HZ: Final = (0.07, 0.12)
BROW_AMPLITUDE: Final = 0.015

_BLINK = np.array([ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]], dtype=np.intp)
_WIDE = np.array([ARKIT_INDEX["eyeWideLeft"], ARKIT_INDEX["eyeWideRight"]], dtype=np.intp)
_JAW_OPEN: Final = ARKIT_INDEX["jawOpen"]
_MOUTH_CLOSE: Final = ARKIT_INDEX["mouthClose"]
_BROW_INNER_UP: Final = ARKIT_INDEX["browInnerUp"]
_NEVER_S: Final = -1e9  # "last blink started" for a row that has not blinked yet


def blink_curve(elapsed_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Lid closure in [0, 1] ``elapsed_s`` seconds after a blink started (0 outside the blink)."""
    elapsed = np.asarray(elapsed_s, dtype=np.float64)
    out, scratch, spare = (np.empty(elapsed.shape, dtype=np.float64) for _ in range(3))
    _blink_curve_into(elapsed, out, scratch, spare)
    return out


def _blink_curve_into(elapsed: np.ndarray, out: np.ndarray, scratch: np.ndarray,
                      spare: np.ndarray) -> None:
    """``out`` <- closing ramp x (1 - opening ramp); ``scratch`` (which may be ``elapsed``:
    it is read first) and ``spare`` are work buffers."""
    np.multiply(elapsed, 1.0 / BLINK_CLOSE_S, out=out)
    _smoothstep(out, spare)
    np.subtract(elapsed, BLINK_CLOSE_S + BLINK_HOLD_S, out=scratch)
    scratch *= 1.0 / BLINK_OPEN_S
    _smoothstep(scratch, spare)
    np.subtract(1.0, scratch, out=scratch)
    out *= scratch


def _smoothstep(x: np.ndarray, spare: np.ndarray) -> None:
    """In place: clip to [0, 1], then x^2 (3 - 2x) (zero slope at both ends, no overshoot)."""
    np.clip(x, 0.0, 1.0, out=x)
    np.multiply(x, -2.0, out=spare)
    spare += 3.0
    x *= x
    x *= spare


class Liveliness:
    """Blinks and breathing for up to ``n_avatars`` rows (the avatar table's capacity).

    ``seed`` (default: ``config.seed``; both None = fresh OS entropy) makes the blink timing and
    the per-avatar breathing rates and phases reproducible for a given sequence of ``time_s``.
    """

    def __init__(self, config: LivelinessConfig, n_avatars: int, seed: int | None = None) -> None:
        if n_avatars < 1:
            raise ValueError(f"n_avatars must be >= 1, got {n_avatars}")
        low, high = config.blink_interval_s
        if not 0 < low <= high:
            raise ValueError(f"blink_interval_s must be [min, max] with 0 < min <= max, "
                             f"got {config.blink_interval_s}")
        self.config = config
        self.capacity = n_avatars
        self.interval_s = (float(low), float(high))
        self._rng = np.random.default_rng(config.seed if seed is None else seed)
        rng = self._rng
        self._breath_rad_s = 2 * math.pi * rng.uniform(*BREATH_HZ, n_avatars)
        self._breath_phase = rng.uniform(0.0, 2 * math.pi, n_avatars)
        self._brow_rad_s = 2 * math.pi * rng.uniform(*BROW_HZ, n_avatars)
        self._brow_phase = rng.uniform(0.0, 2 * math.pi, n_avatars)
        self._next_blink_s = np.zeros(n_avatars, dtype=np.float64)
        self._blink_start_s = np.full(n_avatars, _NEVER_S, dtype=np.float64)
        self._known = 0  # rows [0, _known) have a blink schedule
        self._latest_start_s = _NEVER_S  # no lid moves after this + BLINK_DURATION_S
        self._f64 = np.empty((3, n_avatars), dtype=np.float64)
        self._f32 = np.empty(n_avatars, dtype=np.float32)
        self._due = np.empty(n_avatars, dtype=bool)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def apply(self, weights_out: np.ndarray, time_s: float) -> None:
        """Add blinks and breathing to ``weights_out`` (N, 52) float32 in place at ``time_s``."""
        if weights_out.ndim != 2 or weights_out.shape[1] != len(ARKIT_INDEX):
            raise ValueError(f"expected weights of shape (N, 52), got {weights_out.shape}")
        count = weights_out.shape[0]
        if count > self.capacity:
            raise ValueError(f"{count} avatars, but Liveliness was made for {self.capacity}")
        if count > self._known:
            self._schedule_first_blinks(count, time_s)
        if self.config.blink:
            self._blink(weights_out, time_s)
        if self.config.breathing:
            self._breathe(weights_out, time_s)

    def _schedule_first_blinks(self, count: int, time_s: float) -> None:
        new = slice(self._known, count)
        self._next_blink_s[new] = time_s + self._rng.uniform(0.0, self.interval_s[1],
                                                            count - self._known)
        self._known = count

    def _blink(self, weights: np.ndarray, time_s: float) -> None:
        count = weights.shape[0]
        start = self._blink_start_s[:count]
        next_blink = self._next_blink_s[:count]
        due = np.less_equal(next_blink, time_s, out=self._due[:count])
        if due.any():
            wide = np.maximum(weights[:, _WIDE[0]], weights[:, _WIDE[1]], out=self._f32[:count])
            due &= wide <= WIDE_EYES_THRESHOLD
            rows = np.flatnonzero(due)
            if rows.size:
                start[rows] = time_s
                self._latest_start_s = time_s
                next_blink[rows] = time_s + BLINK_DURATION_S + self._rng.uniform(
                    *self.interval_s, rows.size)
        if time_s - self._latest_start_s >= BLINK_DURATION_S:
            return  # nobody is mid-blink: most frames, for a few avatars
        closure, elapsed, spare = self._f64[0, :count], self._f64[1, :count], self._f64[2, :count]
        np.subtract(time_s, start, out=elapsed)
        _blink_curve_into(elapsed, closure, elapsed, spare)
        term = self._f32[:count]
        for index in _BLINK:
            # w + (1 - w) * closure: the lids close fully at the blink's peak whatever w is.
            column = weights[:, index]
            np.subtract(1.0, column, out=term)
            term *= closure
            column += term
        np.subtract(1.0, closure, out=term)
        for index in _WIDE:
            weights[:, index] *= term

    def _breathe(self, weights: np.ndarray, time_s: float) -> None:
        count = weights.shape[0]
        wave = self._f64[0, :count]
        _raised_cosine(self._breath_rad_s[:count], self._breath_phase[:count], time_s, wave)
        wave *= BREATH_JAW_AMPLITUDE
        for index in (_JAW_OPEN, _MOUTH_CLOSE):
            column = weights[:, index]
            column += wave
            np.minimum(column, 1.0, out=column)
        _raised_cosine(self._brow_rad_s[:count], self._brow_phase[:count], time_s, wave)
        wave *= BROW_AMPLITUDE
        column = weights[:, _BROW_INNER_UP]
        column += wave
        np.minimum(column, 1.0, out=column)


def _raised_cosine(rad_s: np.ndarray, phase: np.ndarray, time_s: float, out: np.ndarray) -> None:
    """out <- (1 - cos(rad_s * t + phase)) / 2, in [0, 1], starting from 0 at phase 0."""
    np.multiply(rad_s, time_s, out=out)
    out += phase
    np.cos(out, out=out)
    np.subtract(1.0, out, out=out)
    out *= 0.5
