"""Which outputs send this frame when faces that did not change are only re-sent now and then.

An output sends its avatar's face on every frame where the face changed (or the output is new),
and otherwise once per refresh period: every ``every`` frames, on the frames where
``frame % every == refresh_phase(row, every)``. The phases are spread over the period in steps of
``SPREAD_FRAMES``: a crowd of avatars that converged on the same frame is re-sent in a few
groups (not one burst), and a frame loop at rest wakes for one group in ``SPREAD_FRAMES``
frames (not every frame). ``every`` 0 or 1 = every frame.

A frame is handed out ``elapsed`` frames after the one before (1, or more when the pacer skipped
frames after an overrun): a refresh that fell on a skipped frame goes out on the next frame
handed out, so a skip never stretches an output's silence by a whole period.

``RefreshSchedule`` answers for a group of outputs with one period (a ``UdpBatch``), with numpy;
``is_due`` and ``next_refresh`` are the same rule for one output, in plain Python.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

__all__ = ["SPREAD_FRAMES", "RefreshSchedule", "is_due", "next_refresh", "refresh_frames",
           "refresh_phase"]

# Refresh phases are multiples of this: at 60 fps a crowd at rest wakes the loop 15 times a
# second for its refreshes. Measured (1,000 converged avatars, one VMC output each, 2 Hz): 4.5%
# of a core with phases on every frame, docs/performance.md, "Round 2, session 4".
SPREAD_FRAMES = 4


def refresh_phase(row: int | np.ndarray, every: int) -> int | np.ndarray:
    """The frame of the period (``frame % every``) on which ``row`` refreshes."""
    if every <= 1:
        return row * 0
    groups = max(1, every // SPREAD_FRAMES)
    return (row % groups) * (every // groups)


def refresh_frames(refresh_hz: float, frame_rate: float) -> int:
    """Frames between two sends of an unchanged face at ``refresh_hz`` (0 = every frame)."""
    return max(1, round(frame_rate / refresh_hz)) if refresh_hz > 0 else 0


def is_due(row: int, every: int, frame: int, changed: bool, elapsed: int = 1) -> bool:
    """One output's answer, as ``RefreshSchedule.due`` gives it for a group."""
    return every <= 1 or changed or (frame - int(refresh_phase(row, every))) % every < elapsed


def next_refresh(row: int, every: int, frame: int) -> int:
    """One output's ``RefreshSchedule.next_refresh``."""
    if every <= 1:
        return frame + 1
    return frame + 1 + (int(refresh_phase(row, every)) - frame - 1) % every


class RefreshSchedule:
    """The refresh schedule of a group of outputs that share one period (a ``UdpBatch``)."""

    def __init__(self, rows: Sequence[int] | np.ndarray, every: int) -> None:
        self.rows = np.asarray(rows, dtype=np.intp)
        self.every = every
        self._phase = np.asarray(refresh_phase(self.rows, every), dtype=np.intp)
        self._due = np.zeros(self.rows.size, dtype=bool)
        self._phase_hit = np.zeros(self.rows.size, dtype=bool)
        self._since = np.zeros(self.rows.size, dtype=np.intp)
        # The phases some output refreshes on (a set, not an array of the period: a period of
        # hours at 240 fps is millions of frames).
        self._phases: list[int] = sorted(set(self._phase.tolist()))
        self._phase_set = frozenset(self._phases)

    def refreshes_at(self, frame: int, elapsed: int = 1) -> bool:
        """Whether some output's refresh falls in the ``elapsed`` frames up to ``frame``."""
        if self.every <= 1 or elapsed >= self.every:
            return True
        return any((frame - back) % self.every in self._phase_set for back in range(elapsed))

    def next_refresh(self, frame: int) -> int:
        """The first frame after ``frame`` on which some output refreshes."""
        if self.every <= 1 or not self._phases:
            return frame + 1
        start = (frame + 1) % self.every
        index = bisect.bisect_left(self._phases, start)
        phase = self._phases[index] if index < len(self._phases) else self._phases[0] + self.every
        return frame + 1 + phase - start

    def due(self, changed_rows: np.ndarray, frame: int, elapsed: int = 1) -> np.ndarray | None:
        """A bool per output: its row changed (``changed_rows`` is per table row) or its phase
        came round in the ``elapsed`` frames up to ``frame``; None when every output sends
        every frame. A view of a kept buffer."""
        if self.every <= 1:
            return None
        due = changed_rows.take(self.rows, out=self._due, mode="clip")
        if elapsed == 1:
            np.equal(self._phase, frame % self.every, out=self._phase_hit)
        else:  # (frame - phase) % every < elapsed: the phase fell in the skipped frames
            since = np.subtract(frame % self.every, self._phase, out=self._since)
            np.remainder(since, self.every, out=since)
            np.less(since, elapsed, out=self._phase_hit)
        due |= self._phase_hit
        return due
