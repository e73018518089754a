"""Frame-rate independent exponential smoothing with attack and release (pure numpy).

alpha = 1 - exp(-dt / tau): after tau seconds a value has covered 63% of the way to its target
whatever the frame rate, so a time constant means the same at 30 and at 240 fps.

Attack and release: a value moving away from rest (0: a blendshape weight rising, a VAD axis
leaving neutral) follows the attack time constant; a value moving back toward rest follows the
release one. The direction is read per value and per frame from where the value is now, so a
VAD axis crossing neutral (valence from happy to sad) releases until it passes 0 and then
attacks: the face relaxes before the new expression builds. In blendshape space the brows and
eyes (``UPPER_FACE``) may have time constants of their own, apart from the rest of the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vadbridge.config import SmoothingSpace
from vadbridge.model.arkit import ARKIT_NAMES

# Below this distance a value snaps onto its target, so a held input converges exactly and the
# frame loop can skip inference for that avatar (float32 has ~1e-7 resolution near 1).
SNAP_DISTANCE = 1e-4

UPPER_FACE: np.ndarray = np.array([name.startswith(("brow", "eye")) for name in ARKIT_NAMES])
"""(52,) bool, read-only: the brow and eye shapes (the upper region); the rest (mouth, jaw,
cheeks, nose, tongue) is the lower region."""
UPPER_FACE.flags.writeable = False

VAD_AXES = 3


@dataclass(frozen=True, slots=True)
class AttackRelease:
    """Two time constants in seconds (0 = no smoothing in that direction)."""

    attack_s: float  # moving away from rest
    release_s: float  # moving back toward rest


@dataclass(frozen=True, slots=True)
class TimeConstants:
    """The animator's smoothing time constants.

    ``face`` applies in VAD space and, in blendshape space, to each region without its own
    pair: ``upper`` (brows and eyes) and ``lower`` (every other shape).
    """

    face: AttackRelease
    upper: AttackRelease | None = None
    lower: AttackRelease | None = None

    @classmethod
    def single(cls, tau_s: float) -> TimeConstants:
        """One time constant for attack and release everywhere (a config with only ``tau_ms``)."""
        return cls(AttackRelease(tau_s, tau_s))

    @property
    def single_s(self) -> float | None:
        """The one time constant when every pair is (tau, tau); None otherwise."""
        taus = {self.face.attack_s, self.face.release_s}
        for pair in (self.upper, self.lower):
            if pair is not None:
                taus |= {pair.attack_s, pair.release_s}
        return taus.pop() if len(taus) == 1 else None


@dataclass(frozen=True, slots=True)
class StepAlphas:
    """The fractions one step of ``dt`` covers: ``attack`` and ``release`` per column, (K,)
    float32; or, with one time constant, ``attack`` alone, one float for every value."""

    attack: np.ndarray | float
    release: np.ndarray | None = None


def smoothing_alpha(dt_s: float, tau_s: float) -> float:
    """The fraction of the remaining distance covered in ``dt_s``; 1.0 when smoothing is off."""
    if tau_s <= 0.0:
        return 1.0
    return 1.0 - math.exp(-max(dt_s, 0.0) / tau_s)


def column_time_constants(
    times: TimeConstants, space: SmoothingSpace
) -> tuple[np.ndarray, np.ndarray]:
    """(attack, release) time constants in seconds, one per smoothed column: the 3 VAD axes
    (the face pair) or the 52 blendshapes (each region's pair, the face pair where it has none)."""
    if space == "vad":
        return (np.full(VAD_AXES, times.face.attack_s), np.full(VAD_AXES, times.face.release_s))
    upper = times.upper or times.face
    lower = times.lower or times.face
    return (np.where(UPPER_FACE, upper.attack_s, lower.attack_s),
            np.where(UPPER_FACE, upper.release_s, lower.release_s))


def column_alphas(dt_s: float, tau_s: np.ndarray) -> np.ndarray:
    """``smoothing_alpha`` for each column's time constant, as float32 (the state's type).

    Runs when the frame period or the settings change, not every frame.
    """
    return np.array([smoothing_alpha(dt_s, float(tau)) for tau in tau_s], dtype=np.float32)


def step_alphas(dt_s: float, times: TimeConstants, space: SmoothingSpace) -> StepAlphas:
    """What ``smooth_toward`` needs for one step of ``dt_s`` in ``space`` (computed once per
    step length and settings, not per frame)."""
    single = times.single_s
    if single is not None:  # bit for bit the smoothing of a lone tau_ms
        return StepAlphas(smoothing_alpha(dt_s, single))
    attack_s, release_s = column_time_constants(times, space)
    return StepAlphas(column_alphas(dt_s, attack_s), column_alphas(dt_s, release_s))


class SmoothingBuffers:
    """Scratch arrays for ``smooth_toward`` over up to ``capacity`` rows of ``columns`` values,
    made once, so a frame's smoothing allocates no arrays."""

    def __init__(self, capacity: int, columns: int) -> None:
        self.delta = np.zeros((capacity, columns), dtype=np.float32)
        self.step = np.zeros((capacity, columns), dtype=np.float32)
        self.release_step = np.zeros((capacity, columns), dtype=np.float32)
        self.flags = np.zeros((capacity, columns), dtype=bool)
        self.rows = np.zeros(capacity, dtype=bool)


def smooth_toward(
    state: np.ndarray,
    target: np.ndarray,
    alphas: StepAlphas | float,
    changed: np.ndarray,
    buffers: SmoothingBuffers | None = None,
    arrived: np.ndarray | None = None,
) -> None:
    """Move ``state`` (N, K) toward ``target`` in place; ``changed`` (N,) gets the rows that moved.

    ``alphas`` is a ``StepAlphas`` or one alpha for every value. Rows already on their target
    are left bit-for-bit untouched, and a row within SNAP_DISTANCE of its target (on every
    axis) lands exactly on it. ``buffers`` (at least N rows of K columns) spares the scratch
    arrays; without it they are allocated. ``arrived`` (N,), when given, gets the rows on
    their target after the step (exactly equal): those already there and those that landed.
    """
    count, columns = state.shape
    work = buffers if buffers is not None else SmoothingBuffers(count, columns)
    if isinstance(alphas, StepAlphas):
        attack, release = alphas.attack, alphas.release
    else:
        attack, release = alphas, None
    delta = np.subtract(target, state, out=work.delta[:count])
    flags = np.not_equal(delta, 0.0, out=work.flags[:count])
    np.logical_or.reduce(flags, axis=1, out=changed)
    if not np.count_nonzero(changed):
        if arrived is not None:  # no difference on any axis: every row is on its target
            arrived[:] = True
        return
    step = work.step[:count]
    if release is None:
        np.multiply(delta, attack, out=step)
    else:
        # Attack where the value moves away from 0 (it is 0, or the move shares its sign). The
        # alpha is attack * mask + release * (not mask): exact (products by 0 and 1, sums with
        # 0), and ~4x faster than a masked copy at 52 columns.
        np.greater_equal(np.multiply(state, delta, out=step), 0.0, out=flags)
        np.multiply(flags, attack, out=step)
        release_alpha = np.multiply(np.logical_not(flags, out=flags), release,
                                    out=work.release_step[:count])
        step += release_alpha
        step *= delta
    state += step
    distance = np.abs(np.subtract(target, state, out=delta), out=delta)
    close = np.logical_and.reduce(np.less(distance, SNAP_DISTANCE, out=flags), axis=1,
                                  out=work.rows[:count] if arrived is None else arrived)
    # Rare (a glide's last frame): indexing beats a masked copy of every row.
    if np.count_nonzero(close):
        state[close] = target[close]
