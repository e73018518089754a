"""Which outputs send this frame when faces that did not change are only re-sent now and then.

An output sends its avatar's face on every frame where the face changed (or the output is new),
and otherwise once per refresh period: every ``every`` frames, at frame numbers where
``frame % every == row % every``, so a crowd of avatars that converged on the same frame is
re-sent spread over the period instead of in one burst. ``every`` 0 or 1 = every frame.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

__all__ = ["RefreshSchedule", "refresh_frames"]


def refresh_frames(refresh_hz: float, frame_rate: float) -> int:
    """Frames between two sends of an unchanged face at ``refresh_hz`` (0 = every frame)."""
    return max(1, round(frame_rate / refresh_hz)) if refresh_hz > 0 else 0


def is_due(row: int, every: int, frame: int, changed: bool) -> bool:
    """One output's answer, as ``RefreshSchedule.due`` gives it for a group."""
    return every <= 1 or changed or frame % every == row % every


def next_refresh(row: int, every: int, frame: int) -> int:
    """One output's ``RefreshSchedule.next_refresh``."""
    return frame + 1 if every <= 1 else frame + 1 + (row - frame - 1) % every


class RefreshSchedule:
    """The refresh schedule of a group of outputs that share one period (a ``UdpBatch``)."""

    def __init__(self, rows: Sequence[int] | np.ndarray, every: int) -> None:
        self.rows = np.asarray(rows, dtype=np.intp)
        self.every = every
        self._phase = self.rows % every if every > 1 else self.rows
        self._due = np.zeros(self.rows.size, dtype=bool)
        self._phase_hit = np.zeros(self.rows.size, dtype=bool)
        # Which frames of the period some output refreshes on: an idle frame checks one bool.
        self._refreshing_at = np.zeros(max(every, 1), dtype=bool)
        self._refreshing_at[self._phase if every > 1 else 0] = True
        self._phases = sorted(set(self._phase.tolist())) if every > 1 else [0]

    def refreshes_at(self, frame: int) -> bool:
        """Whether some output's refresh falls on ``frame`` (always, at every frame)."""
        return self.every <= 1 or bool(self._refreshing_at[frame % self.every])

    def next_refresh(self, frame: int) -> int:
        """The first frame after ``frame`` on which some output refreshes."""
        if self.every <= 1 or not self._phases:
            return frame + 1
        start = (frame + 1) % self.every
        index = bisect.bisect_left(self._phases, start)
        phase = self._phases[index] if index < len(self._phases) else self._phases[0] + self.every
        return frame + 1 + phase - start

    def due(self, changed_rows: np.ndarray, frame: int) -> np.ndarray | None:
        """A bool per output: its row changed (``changed_rows`` is per table row) or its phase
        came round; None when every output sends every frame. A view of a kept buffer."""
        if self.every <= 1:
            return None
        due = changed_rows.take(self.rows, out=self._due, mode="clip")
        np.equal(self._phase, frame % self.every, out=self._phase_hit)
        due |= self._phase_hit
        return due
