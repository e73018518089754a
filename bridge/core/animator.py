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

Skipped inference (VAD space): a row that glides without new input is re-inferred only once
its smoothed VAD is more than ``SKIP_EPSILON`` (on some axis) from the VAD its weights came
from, or when it lands on its target, so a converged face is always the model's face for its
VAD. Between, the face lags the model by at most L * SKIP_EPSILON per weight, L the network's
Lipschitz constant (max-norm in, max-norm out); docs/performance.md, "Skipped inference", has
the measurement. Rows with new input (``target_dirty``) are always inferred.

Lookahead (VAD space, tables of at most ``LOOKAHEAD_MAX_ROWS`` avatars): a step that runs the
model also smooths the next ``LOOKAHEAD_FRAMES`` frames ahead (the same arithmetic on a copy of
the state, toward the same targets) and infers them in the same forward call; the following
steps take those states and faces instead of smoothing and inferring, until a target changes,
the step length or the time constants do, or the frames run out. The faces are the ones the
frame-by-frame path makes (the same smoothing; the model's batch of 4 rows may round apart from
a batch of 1 at float32's last bits). For one avatar the model's cost is per call, not per row
(a cold call on 1 or 4 rows costs the same: docs/performance.md, "One avatar"), so with inputs
at 30 Hz every other frame runs no model at all; a crowd infers every moving row every frame,
where skipping is what saves.

All of a step's arrays are made once (the first step, or when the batch grows): a step
allocates no array data with an engine that has ``forward_into``, apart from the index of the
moving rows when only some of them move. It calls ufuncs and array methods directly
(``np.logical_and.reduce``, ``a.take``, ``np.count_nonzero``): numpy's Python-level wrappers
(``np.all(axis=)``, ``np.take``, ``np.clip``) cost 2-4 µs a call, most of a one-avatar step.

Smoothing has an attack and a release time constant (``smoothing.TimeConstants``; in blendshape
space per region). Their per-column alphas depend only on the step and the settings, so they
are computed once per step length (normally the frame period) and reused every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from vadbridge.config import SmoothingSpace
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.smoothing import (
    VAD_AXES,
    SmoothingBuffers,
    StepAlphas,
    TimeConstants,
    smooth_toward,
    step_alphas,
)
from vadbridge.model.arkit import (
    LEFT_INDICES,
    NUM_BLENDSHAPES,
    RIGHT_INDICES,
    symmetrize_inplace,
)

# Step lengths whose alphas are kept: the frame period, and the longer steps after skipped
# frames; more than this many means the caller's steps vary (a test), so the cache restarts.
_MAX_CACHED_STEPS = 8

# The largest change of smoothed VAD (any axis) that keeps a row's weights without inference.
# Measured (benchmarks/engines.py, lipschitz; a sampled estimate, not a proof): the bundled
# models change a weight by at most ~12 (v1) and ~6 (v2) times the VAD change, so the face lags
# the model by ~12 * 2.5e-4 = 0.003 at most, under one step of an 8-bit weight (1/255 =
# 0.0039). 0 turns skipping off.
SKIP_EPSILON = 2.5e-4

# Lookahead (module docstring): frames predicted per model call, and the largest table using it.
LOOKAHEAD_FRAMES = 3
LOOKAHEAD_MAX_ROWS = 4
_LOOKAHEAD_BATCH = (LOOKAHEAD_FRAMES + 1) * LOOKAHEAD_MAX_ROWS


class Engine(Protocol):
    """``NumpyMLP``, ``LutEngine``, ``OnnxRuntimeEngine``; ``forward_into(vad, out)`` is used
    when the engine has it."""

    def forward(self, vad: np.ndarray) -> np.ndarray: ...


def _time_constants(tau_s: float | TimeConstants) -> TimeConstants:
    return tau_s if isinstance(tau_s, TimeConstants) else TimeConstants.single(tau_s)


class Animator:
    def __init__(
        self,
        table: AvatarTable,
        engine: Engine,
        *,
        tau_s: float | TimeConstants,
        space: SmoothingSpace = "vad",
        symmetry: bool = True,
        skip_epsilon: float = SKIP_EPSILON,
        lookahead_frames: int = LOOKAHEAD_FRAMES,
    ) -> None:
        """``tau_s``: one time constant for attack and release everywhere, or ``TimeConstants``;
        ``skip_epsilon`` and ``lookahead_frames`` (at most ``LOOKAHEAD_FRAMES``; 0 = off): see
        the module docstring (0 infers every row that moved)."""
        if not 0 <= lookahead_frames <= LOOKAHEAD_FRAMES:
            raise ValueError(f"lookahead_frames must be 0..{LOOKAHEAD_FRAMES}")
        self.lookahead_frames = lookahead_frames
        self.table = table
        self.engine = engine
        self._times = _time_constants(tau_s)
        self._alphas: dict[float, tuple[StepAlphas, StepAlphas]] = {}
        self.space: SmoothingSpace = space
        self.symmetry = symmetry
        self._forward_into: Callable[[np.ndarray, np.ndarray], object] | None = getattr(
            engine, "forward_into", None
        )
        self._changed = np.zeros(table.capacity, dtype=bool)
        self._vad_moved = np.zeros(table.capacity, dtype=bool)
        self._vad_buffers = SmoothingBuffers(table.capacity, VAD_AXES)
        self.skip_epsilon = skip_epsilon
        capacity = table.capacity
        # The VAD each row's weights were last inferred from, and the skip test's scratch.
        self._inferred_vad = np.zeros((capacity, VAD_AXES), dtype=np.float32)
        self._vad_gap = np.zeros((capacity, VAD_AXES), dtype=np.float32)
        self._max_gap = np.zeros(capacity, dtype=np.float32)
        self._infer = np.zeros(capacity, dtype=bool)
        self._arrived = np.zeros(capacity, dtype=bool)  # rows on their target after smoothing
        # Gather/scatter buffers for a subset of rows, and symmetry's pair halves.
        self._rows_vad = np.zeros((capacity, VAD_AXES), dtype=np.float32)
        self._rows_weights = np.zeros((capacity, NUM_BLENDSHAPES), dtype=np.float32)
        pairs = max(capacity, _LOOKAHEAD_BATCH)
        self._left = np.zeros((pairs, LEFT_INDICES.size), dtype=np.float32)
        self._right = np.zeros((pairs, RIGHT_INDICES.size), dtype=np.float32)
        # Lookahead: this frame's and the predicted frames' rows, frame after frame, for one
        # forward call; each predicted frame's changed rows; what the predictions assumed.
        self._ahead_vad = np.zeros((_LOOKAHEAD_BATCH, VAD_AXES), dtype=np.float32)
        self._ahead_weights = np.zeros((_LOOKAHEAD_BATCH, NUM_BLENDSHAPES), dtype=np.float32)
        self._ahead_changed = np.zeros((LOOKAHEAD_FRAMES, LOOKAHEAD_MAX_ROWS), dtype=bool)
        self._ahead_state = np.zeros((LOOKAHEAD_MAX_ROWS, VAD_AXES), dtype=np.float32)
        self._ahead_frames = 0  # predicted frames not used yet
        self._ahead_used = 0  # predicted frames used so far
        self._ahead_key: tuple[int, float, StepAlphas | None] = (0, 0.0, None)
        # Made on the first blendshape-space step: 52 columns of scratch cost ~0.7 KB an avatar.
        self._weight_buffers: SmoothingBuffers | None = None
        self.inferred_rows = 0  # how many avatar-rows went through the model (for stats)
        # The row count at which the last step changed nothing (-1: it changed something): the
        # next step with no new target has nothing to do (a crowd at rest costs one check).
        self._settled_count = -1
        # Rows whose output weights may have changed in the last step (the frame loop can skip
        # re-sending converged faces); a view, valid until the next step.
        self.changed: np.ndarray = self._changed[:0]

    @property
    def at_rest(self) -> bool:
        """Every face on its target and no new target: a step would change nothing."""
        count = len(self.table)
        return self._settled_count == count and not np.count_nonzero(
            self.table.target_dirty[:count])

    @property
    def tau_s(self) -> float | TimeConstants:
        """The smoothing time constants: one number when attack and release are equal
        everywhere, else the ``TimeConstants``. Setting takes effect from the next step."""
        single = self._times.single_s
        return self._times if single is None else single

    @tau_s.setter
    def tau_s(self, value: float | TimeConstants) -> None:
        times = _time_constants(value)
        if times != self._times:
            self._times = times
            self._alphas.clear()

    def _step_alphas(self, dt_s: float) -> tuple[StepAlphas, StepAlphas]:
        """(VAD alphas, blendshape alphas) for a step of ``dt_s``, cached by step length."""
        cached = self._alphas.get(dt_s)
        if cached is None:
            if len(self._alphas) >= _MAX_CACHED_STEPS:
                self._alphas.clear()
            times = self._times
            cached = (step_alphas(dt_s, times, "vad"), step_alphas(dt_s, times, "blendshapes"))
            self._alphas[dt_s] = cached
        return cached

    def _infer_rows(self, vad: np.ndarray, out: np.ndarray, rows: np.ndarray | None,
                    count: int) -> None:
        """Write the model's (symmetrised) weights for ``vad[rows]`` into ``out[rows]``;
        ``rows`` None: every row of ``range(count)``."""
        if rows is None:  # every row: slices, no gather or scatter
            weights = out[:count]
            if self._forward_into is not None:
                self._forward_into(vad[:count], weights)
            else:
                weights[:] = self.engine.forward(vad[:count])
            if self.symmetry:
                symmetrize_inplace(weights, left=self._left[:count], right=self._right[:count])
            self.inferred_rows += count
            return
        n = rows.size
        if self._forward_into is not None:
            gathered = vad.take(rows, axis=0, out=self._rows_vad[:n], mode="clip")
            weights = self._rows_weights[:n]
            self._forward_into(gathered, weights)
        else:
            weights = self.engine.forward(vad[rows])
        if self.symmetry:
            symmetrize_inplace(weights, left=self._left[:n], right=self._right[:n])
        out[rows] = weights
        self.inferred_rows += n

    def _rows_to_infer(self, moved: np.ndarray, arrived: np.ndarray, dirty: np.ndarray,
                       count: int) -> np.ndarray:
        """Of the rows that moved, those whose weights must follow (see the module docstring);
        ``arrived``: the rows on their target after this step's smoothing."""
        infer = self._infer[:count]
        if self.skip_epsilon <= 0:
            np.logical_or(moved, dirty, out=infer)
            return infer
        state = self.table.state_vad[:count]
        gap = np.subtract(state, self._inferred_vad[:count], out=self._vad_gap[:count])
        np.abs(gap, out=gap)
        np.maximum.reduce(gap, axis=1, out=self._max_gap[:count])
        np.greater(self._max_gap[:count], self.skip_epsilon, out=infer)
        infer |= arrived
        infer &= moved
        infer |= dirty
        return infer

    def step(self, dt_s: float) -> None:
        """Advance every avatar by ``dt_s`` seconds; results land in ``table.weights``."""
        table = self.table
        count = len(table)
        self.changed = self._changed[:count]
        if count == 0:
            self._settled_count = 0  # nothing to animate: at rest until an avatar arrives
            return
        dirty = table.target_dirty[:count]
        if self._settled_count == count and not np.count_nonzero(dirty):
            return  # every face at rest on its target, and ``changed`` all False from then
        vad_alphas, weight_alphas = self._step_alphas(dt_s)
        changed = self._changed[:count]
        if self.space == "vad":
            if self._ahead_frames and self._predicted_for(count, dt_s, vad_alphas, dirty):
                self._take_predicted_frame(count)
                return
            self._ahead_frames = 0
            arrived = self._arrived[:count]
            smooth_toward(table.state_vad[:count], table.target_vad[:count], vad_alphas, changed,
                          self._vad_buffers, arrived=arrived)
            self._infer_vad_rows(changed, arrived, dirty, count, dt_s, vad_alphas)
        else:
            inferred = int(np.count_nonzero(dirty))
            if inferred == count:
                self._infer_rows(table.target_vad, table.target_weights, None, count)
            elif inferred:
                rows = dirty.nonzero()[0]
                self._infer_rows(table.target_vad, table.target_weights, rows, count)
            if self._weight_buffers is None:
                self._weight_buffers = SmoothingBuffers(table.capacity, NUM_BLENDSHAPES)
            smooth_toward(table.weights[:count], table.target_weights[:count], weight_alphas,
                          changed, self._weight_buffers)
            # The VAD glides too (no inference): it is what the face shows, for the outputs.
            vad_moved = self._vad_moved[:count]
            smooth_toward(table.state_vad[:count], table.target_vad[:count], vad_alphas,
                          vad_moved, self._vad_buffers)
            changed |= vad_moved
        dirty[:] = False
        self._settled_count = -1 if np.count_nonzero(changed) else count

    def _infer_vad_rows(self, changed: np.ndarray, arrived: np.ndarray, dirty: np.ndarray,
                        count: int, dt_s: float, alphas: StepAlphas) -> None:
        """After the VAD step: infer the rows whose faces must follow their smoothed VAD, and
        add the rows with new input to ``changed``; ``arrived``: the rows the step left on
        their target."""
        if self.lookahead_frames and count <= LOOKAHEAD_MAX_ROWS and self._forward_into is not None:
            # Every moving row inferred (no skipping: the call costs the same), with the frames
            # ahead.
            changed |= dirty
            if np.count_nonzero(changed):
                self._infer_with_lookahead(count, dt_s, alphas)
            return
        table = self.table
        infer = self._rows_to_infer(changed, arrived, dirty, count)
        changed |= dirty
        inferred = int(np.count_nonzero(infer))
        if inferred == count:
            self._infer_rows(table.state_vad, table.weights, None, count)
            self._inferred_vad[:count] = table.state_vad[:count]
        elif inferred:
            rows = infer.nonzero()[0]
            self._infer_rows(table.state_vad, table.weights, rows, count)
            self._inferred_vad[rows] = table.state_vad[rows]

    def _infer_with_lookahead(self, count: int, dt_s: float, alphas: StepAlphas) -> None:
        """Infer every row of this frame and of the next frames smoothed ahead, in one call."""
        assert self._forward_into is not None
        table = self.table
        state = self._ahead_state[:count]
        np.copyto(state, table.state_vad[:count])
        batch = self._ahead_vad
        batch[:count] = state
        frames = 0
        for frame in range(self.lookahead_frames):
            moved = self._ahead_changed[frame, :count]
            smooth_toward(state, table.target_vad[:count], alphas, moved, self._vad_buffers)
            if not np.count_nonzero(moved):  # at rest from here: nothing left to predict
                break
            batch[(frame + 1) * count : (frame + 2) * count] = state
            frames += 1
        rows = (frames + 1) * count
        weights = self._ahead_weights[:rows]
        self._forward_into(batch[:rows], weights)
        if self.symmetry:
            symmetrize_inplace(weights, left=self._left[:rows], right=self._right[:rows])
        table.weights[:count] = weights[:count]
        self._inferred_vad[:count] = table.state_vad[:count]
        self.inferred_rows += rows
        self._ahead_frames, self._ahead_used = frames, 0
        self._ahead_key = (count, dt_s, alphas)

    def _predicted_for(self, count: int, dt_s: float, alphas: StepAlphas,
                       dirty: np.ndarray) -> bool:
        """Whether the predicted frames hold for this step: no new target, and the same rows,
        step length and time constants (alphas are cached per step length: a new object means
        new time constants)."""
        rows, step_s, predicted_alphas = self._ahead_key
        return (rows == count and step_s == dt_s and predicted_alphas is alphas
                and not np.count_nonzero(dirty))

    def _take_predicted_frame(self, count: int) -> None:
        """This step is the next predicted frame: its states, faces and changed rows."""
        table = self.table
        self._ahead_used += 1
        frame = self._ahead_used
        table.state_vad[:count] = self._ahead_vad[frame * count : (frame + 1) * count]
        table.weights[:count] = self._ahead_weights[frame * count : (frame + 1) * count]
        self._inferred_vad[:count] = table.state_vad[:count]
        changed = self._changed[:count]
        changed[:] = self._ahead_changed[frame - 1, :count]
        self._ahead_frames -= 1
        self._settled_count = -1 if np.count_nonzero(changed) else count

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
        self._settled_count = -1
        self.space = space
