"""Frame pacing against absolute deadlines (start + k * period).

The pacer never bursts: after an overrun it jumps to the newest deadline that has passed and
counts the frames in between as skipped, so frame k always goes out at t0 + k * period or as
soon after as the machine allows. It sleeps on the event loop until shortly before a deadline
(the loop's sleep is only good to about a millisecond), sleeps the thread for the rest but
``spin_only_s``, and spins that last bit polling the event loop, so inputs that arrive until
the deadline make the frame.

``PACING_MODES`` names the three ways measured for issue 16 (``vadbridge bench --only
pacing`` prints lateness and CPU for each): ``sleep`` (the event loop's sleep alone),
``nanosleep`` (loop sleep, then a blocking nanosleep to the deadline, no spin) and ``spin``
(the default: loop sleep, nanosleep, a 0.2 ms spin); docs/performance.md, "Pacing modes".
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A frame sent later than this after its deadline counts as late in the stats line.
LATE_THRESHOLD_S = 0.002
# The last stretch before a deadline that is busy-waited rather than slept.
SPIN_ONLY_S = 0.0002
# How long before a deadline the event loop's sleep hands over to the thread's nanosleep.
TAIL_S = 0.0015
# mode -> (tail_s, spin_only_s) for FramePacer
PACING_MODES: dict[str, tuple[float, float]] = {
    "sleep": (0.0, 0.0),
    "nanosleep": (TAIL_S, 0.0),
    "spin": (TAIL_S, SPIN_ONLY_S),
}


@dataclass
class PacingStats:
    frames: int = 0
    skipped: int = 0
    late: int = 0
    max_lateness_s: float = 0.0
    lateness_sum_s: float = 0.0

    def snapshot(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "skipped": self.skipped,
            "late": self.late,
            "max_lateness_ms": round(self.max_lateness_s * 1e3, 3),
            "mean_lateness_ms": round(self.lateness_sum_s / self.frames * 1e3, 3)
            if self.frames
            else 0.0,
        }


@dataclass
class FramePacer:
    """Hands out frame ticks: ``await pacer.next_frame()`` returns the frame due now."""

    period_s: float
    spin_s: float = TAIL_S  # the blocking tail (nanosleep, then spin) before each deadline
    spin_only_s: float = SPIN_ONLY_S  # of which the last stretch is spun
    clock: Callable[[], float] = time.perf_counter
    stats: PacingStats = field(default_factory=PacingStats)
    start_s: float = field(init=False, default=0.0)
    frame_index: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")

    def deadline(self, frame_index: int) -> float:
        return self.start_s + frame_index * self.period_s

    def start(self) -> None:
        self.start_s = self.clock()
        self.frame_index = -1

    async def next_frame(self) -> int:
        """Wait for the next deadline; return its frame index (the first call starts the clock)."""
        if self.frame_index < 0:
            self.start()
            self.frame_index = 0
            self.stats.frames += 1
            return 0
        due = self.frame_index + 1
        now = self.clock()
        newest_passed = math.floor((now - self.start_s) / self.period_s)
        if newest_passed > due:
            self.stats.skipped += newest_passed - due
            due = newest_passed
        deadline = self.deadline(due)
        remaining = deadline - now
        if remaining > self.spin_s:
            await asyncio.sleep(remaining - self.spin_s)
        # The tail: a blocking nanosleep (accurate to ~0.1 ms, costs no CPU), then a short spin.
        tail = deadline - self.clock() - self.spin_only_s
        if tail > 0:
            time.sleep(tail)
        # Inputs that arrived while the thread slept wait in the socket: yield so they make this
        # frame instead of the next (the first yield polls the selector, the second runs the
        # callbacks it found), and keep yielding through the spin, so that an input arriving
        # until the deadline makes the frame. Without this an input in the last ~1.5 ms missed it.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        while self.clock() < deadline:
            await asyncio.sleep(0)
        lateness = self.clock() - deadline
        self.frame_index = due
        self.stats.frames += 1
        self.stats.lateness_sum_s += lateness
        if lateness > self.stats.max_lateness_s:
            self.stats.max_lateness_s = lateness
        if lateness > LATE_THRESHOLD_S:
            self.stats.late += 1
        return due

    @property
    def time_s(self) -> float:
        """Seconds since the first frame, at the current frame's deadline."""
        return self.frame_index * self.period_s
