"""Frame-rate independent exponential smoothing over batches of avatars (pure numpy).

alpha = 1 - exp(-dt / tau): after tau seconds the state has covered 63% of the way to its
target whatever the frame rate, so ``tau_ms`` means the same at 30 and at 240 fps.
"""

from __future__ import annotations

import math

import numpy as np

# Below this distance a value snaps onto its target, so a held input converges exactly and the
# frame loop can skip inference for that avatar (float32 has ~1e-7 resolution near 1).
SNAP_DISTANCE = 1e-4


def smoothing_alpha(dt_s: float, tau_s: float) -> float:
    """The fraction of the remaining distance covered in ``dt_s``; 1.0 when smoothing is off."""
    if tau_s <= 0.0:
        return 1.0
    return 1.0 - math.exp(-max(dt_s, 0.0) / tau_s)


def smooth_toward(
    state: np.ndarray, target: np.ndarray, alpha: float, changed: np.ndarray
) -> None:
    """Move ``state`` (N, K) toward ``target`` in place; ``changed`` (N,) gets the rows that moved.

    Rows already on their target are left bit-for-bit untouched, and a row within
    SNAP_DISTANCE of its target (on every axis) lands exactly on it.
    """
    delta = target - state
    np.any(delta != 0.0, axis=1, out=changed)
    if not changed.any():
        return
    state += alpha * delta
    close = np.all(np.abs(target - state) < SNAP_DISTANCE, axis=1)
    state[close] = target[close]
