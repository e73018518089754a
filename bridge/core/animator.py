"""One frame of face animation for every avatar: smooth, infer (only what moved), symmetrise.

Two smoothing spaces (config ``smoothing.space``):
- ``vad``: the VAD state glides toward the target and the model runs on the state, so the face
  passes through the intermediate emotions (happy -> sad crosses neutral-ish faces).
- ``blendshapes``: the model runs once on each new target and the 52 weights glide linearly.
Either way ``table.state_vad`` is the smoothed VAD the face shows (outputs such as the VRM
presets read it), and the model runs only for avatars whose input to it changed this frame.
When every avatar changed (the steady state with live inputs) the model reads and writes the
table's rows in place: no gather, no scatter, and no new output array if the engine has
``forward_into`` (``NumpyMLP``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from vadbridge.config import SmoothingSpace
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.smoothing import smooth_toward, smoothing_alpha
from vadbridge.model.arkit import symmetrize_inplace


class Engine(Protocol):
    """``NumpyMLP``, ``LutEngine``; ``forward_into(vad, out)`` is used when the engine has it."""

    def forward(self, vad: np.ndarray) -> np.ndarray: ...


class Animator:
    def __init__(
        self,
        table: AvatarTable,
        engine: Engine,
        *,
        tau_s: float,
        space: SmoothingSpace = "vad",
        symmetry: bool = True,
    ) -> None:
        self.table = table
        self.engine = engine
        self.tau_s = tau_s
        self.space: SmoothingSpace = space
        self.symmetry = symmetry
        self._forward_into: Callable[[np.ndarray, np.ndarray], object] | None = getattr(
            engine, "forward_into", None
        )
        self._changed = np.zeros(table.capacity, dtype=bool)
        self._vad_moved = np.zeros(table.capacity, dtype=bool)
        self.inferred_rows = 0  # how many avatar-rows went through the model (for stats)
        # Rows whose output weights may have changed in the last step (the frame loop can skip
        # re-sending converged faces); a view, valid until the next step.
        self.changed: np.ndarray = self._changed[:0]

    def _infer_rows(self, vad: np.ndarray, out: np.ndarray, rows: np.ndarray, count: int) -> None:
        """Write the model's (symmetrised) weights for ``vad[rows]`` into ``out[rows]``."""
        if rows.size == count:  # rows is a subset of range(count): every row, so use slices
            weights = out[:count]
            if self._forward_into is not None:
                self._forward_into(vad[:count], weights)
            else:
                weights[:] = self.engine.forward(vad[:count])
            if self.symmetry:
                symmetrize_inplace(weights)
        else:
            weights = self.engine.forward(vad[rows])
            if self.symmetry:
                symmetrize_inplace(weights)
            out[rows] = weights
        self.inferred_rows += rows.size

    def step(self, dt_s: float) -> None:
        """Advance every avatar by ``dt_s`` seconds; results land in ``table.weights``."""
        table = self.table
        count = len(table)
        self.changed = self._changed[:count]
        if count == 0:
            return
        alpha = smoothing_alpha(dt_s, self.tau_s)
        changed = self._changed[:count]
        dirty = table.target_dirty[:count]
        if self.space == "vad":
            smooth_toward(table.state_vad[:count], table.target_vad[:count], alpha, changed)
            changed |= dirty
            rows = np.flatnonzero(changed)
            if rows.size:
                self._infer_rows(table.state_vad, table.weights, rows, count)
        else:
            rows = np.flatnonzero(dirty)
            if rows.size:
                self._infer_rows(table.target_vad, table.target_weights, rows, count)
            smooth_toward(table.weights[:count], table.target_weights[:count], alpha, changed)
            # The VAD glides too (no inference): it is what the face shows, for the outputs.
            vad_moved = self._vad_moved[:count]
            smooth_toward(table.state_vad[:count], table.target_vad[:count], alpha, vad_moved)
            changed |= vad_moved
        dirty[:] = False

    def set_space(self, space: SmoothingSpace) -> None:
        """Switch the smoothing space of a running face, keeping its smoothed VAD.

        The smoothed VAD exists in both spaces, so it goes on from where it is: to ``vad``, the
        model runs on the smoothed VAD (a face caught mid-glide in blendshape space may step
        once to the model's face for that VAD, which is not the linear blend); to
        ``blendshapes``, the model runs on the targets and the current weights glide to them.
        """
        if space == self.space:
            return
        self.table.target_dirty[: len(self.table)] = True
        self.space = space
