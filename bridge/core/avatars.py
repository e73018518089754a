"""The avatar table: every face's target and smoothed state as rows of shared numpy arrays.

Rows let one frame smooth, infer and symmetrise all avatars with a handful of array operations
(one (N, 3) forward pass instead of N small ones). Capacity is fixed at start (``max``), so the
arrays never reallocate while the daemon runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from vadbridge.model.arkit import NUM_BLENDSHAPES


class AvatarLimitError(Exception):
    """An input named a new avatar when the table is full or the id belongs to another shard."""

    def __init__(self, avatar_id: str, reason: str) -> None:
        super().__init__(f"avatar {avatar_id!r}: {reason}")
        self.avatar_id = avatar_id
        self.reason = reason


class AvatarTable:
    def __init__(
        self,
        capacity: int,
        *,
        initial_ids: Iterable[str] = (),
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        """``owns`` says which ids this instance may hold (a shard, e.g. ``Shard.owns``)."""
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._owns = owns
        # False once the start-up avatars exist: then unknown ids are refused, not created.
        self.accept_new = True
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.target_vad = np.zeros((capacity, 3), dtype=np.float32)
        self.state_vad = np.zeros((capacity, 3), dtype=np.float32)
        # Model output for the target (blendshape-space smoothing) and the smoothed output.
        self.target_weights = np.zeros((capacity, NUM_BLENDSHAPES), dtype=np.float32)
        self.weights = np.zeros((capacity, NUM_BLENDSHAPES), dtype=np.float32)
        self.last_input_s = np.zeros(capacity, dtype=np.float64)
        # Rows whose target changed since the last frame (blendshape space re-infers them).
        self.target_dirty = np.zeros(capacity, dtype=bool)
        for avatar_id in initial_ids:
            self.row(avatar_id)

    def __len__(self) -> int:
        return len(self.ids)

    def owns(self, avatar_id: str) -> bool:
        return self._owns is None or self._owns(avatar_id)

    def admits(self, avatar_id: str) -> bool:
        """Whether ``row(avatar_id)`` would give a row (known, or new and allowed); creates none.

        The inputs ask before parsing, so a message for a refused avatar costs no parse."""
        return avatar_id in self.index or (
            self.accept_new and len(self.ids) < self.capacity and self.owns(avatar_id)
        )

    def row(self, avatar_id: str) -> int:
        """The row of ``avatar_id``, created on first use; AvatarLimitError when it cannot be."""
        row = self.index.get(avatar_id)
        if row is not None:
            return row
        if not self.owns(avatar_id):
            raise AvatarLimitError(avatar_id, "belongs to another shard")
        if not self.accept_new:
            raise AvatarLimitError(avatar_id, "not one of this bridge's avatars "
                                              "(avatars.accept_new is false)")
        if len(self.ids) >= self.capacity:
            raise AvatarLimitError(avatar_id, f"the table is full ({self.capacity} avatars)")
        row = len(self.ids)
        self.ids.append(avatar_id)
        self.index[avatar_id] = row
        self.target_dirty[row] = True  # a new face needs its first inference
        return row

    def set_target(
        self, row: int, vad: tuple[float | None, float | None, float | None], now_s: float
    ) -> None:
        """Set the given axes of a row's target (None keeps that axis: partial update)."""
        target = self.target_vad[row]
        for axis, value in enumerate(vad):
            if value is not None:
                target[axis] = value
        self.last_input_s[row] = now_s
        self.target_dirty[row] = True

    def _held(self, count: int) -> np.ndarray:
        """(count,) bool: the rows whose target is off neutral (what ``release_idle`` releases)."""
        held: np.ndarray = np.any(self.target_vad[:count] != 0.0, axis=1)
        return held

    def release_idle(self, now_s: float, idle_timeout_s: float) -> None:
        """Targets of avatars without input for ``idle_timeout_s`` ease back to neutral."""
        count = len(self.ids)
        idle = (now_s - self.last_input_s[:count]) > idle_timeout_s
        idle &= self._held(count)
        if idle.any():
            self.target_vad[:count][idle] = 0.0
            self.target_dirty[:count][idle] = True

    def next_release_s(self, idle_timeout_s: float) -> float | None:
        """When the first held avatar's ``idle_timeout_s`` runs out (``release_idle`` eases it
        back to neutral at its first call after that); None when every target is neutral."""
        count = len(self.ids)
        held = self._held(count)
        if not held.any():
            return None
        return float(self.last_input_s[:count][held].min()) + idle_timeout_s
