"""One frame of face animation for every avatar: smooth, infer (only what moved), symmetrise.

Two smoothing spaces (config ``smoothing.space``):
- ``vad``: the VAD state glides toward the target and the model runs on the state, so the face
  passes through the intermediate emotions (happy -> sad crosses neutral-ish faces).
- ``blendshapes``: the model runs once on each new target and the 52 weights glide linearly.
Either way the model runs only for avatars whose input to it changed this frame.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

from bridge.avatars import AvatarTable
from bridge.smoothing import smooth_toward, smoothing_alpha
from model.arkit import symmetrize_inplace

SmoothingSpace = Literal["vad", "blendshapes"]


class Engine(Protocol):
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
        self.space = space
        self.symmetry = symmetry
        self._changed = np.zeros(table.capacity, dtype=bool)
        self.inferred_rows = 0  # how many avatar-rows went through the model (for stats)
        # Rows whose output weights may have changed in the last step (the frame loop can skip
        # re-sending converged faces); a view, valid until the next step.
        self.changed: np.ndarray = self._changed[:0]

    def _infer(self, vad: np.ndarray) -> np.ndarray:
        weights = self.engine.forward(vad)
        if self.symmetry:
            symmetrize_inplace(weights)
        return weights

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
                table.weights[rows] = self._infer(table.state_vad[rows])
                self.inferred_rows += rows.size
        else:
            rows = np.flatnonzero(dirty)
            if rows.size:
                table.target_weights[rows] = self._infer(table.target_vad[rows])
                self.inferred_rows += rows.size
            smooth_toward(table.weights[:count], table.target_weights[:count], alpha, changed)
        dirty[:] = False
