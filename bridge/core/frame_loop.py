"""Frame pacing against absolute deadlines (start + k * period).

The pacer never bursts: after an overrun it jumps to the newest deadline that has passed and
counts the frames in between as skipped, so frame k always goes out at t0 + k * period or as
soon after as the machine allows. How it waits for a deadline is its mode (below); in every
mode, inputs that arrive until the deadline make the frame. With nothing to do (every face at
rest) the frame loop may ``rest`` through frames, and ``wake`` ends a rest at once.

``PACING_MODES`` names the ways measured for issue 16 (``vadbridge bench --only pacing`` prints
lateness and CPU for each): ``sleep`` (the event loop's sleep alone), ``nanosleep`` (loop sleep,
then a blocking nanosleep to the deadline, no spin), ``spin`` (loop sleep, nanosleep, a 0.2 ms
spin) and ``timer`` (the default: the loop wakes on a kernel timer armed at the deadline,
``core/deadline_timer.py``; where there is none, not Linux, it falls back to ``spin``);
docs/performance.md, "Pacing modes".
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vadbridge.config import DEFAULT_PACING_MODE
from vadbridge.core.deadline_timer import DeadlineTimer

# A frame sent later than this after its deadline counts as late in the stats line.
LATE_THRESHOLD_S = 0.002
# The last stretch before a deadline that is busy-waited rather than slept.
SPIN_ONLY_S = 0.0002
# How long before a deadline the event loop's sleep hands over to the thread's nanosleep.
TAIL_S = 0.0015


@dataclass(frozen=True)
class PacingMode:
    """How the pacer waits for a deadline."""

    tail_s: float  # the blocking tail before the deadline: nanosleep, then spin
    spin_only_s: float  # of which the last stretch is spun
    timer: bool = False  # wake on a kernel timer at the deadline instead (no tail)


PACING_MODES: dict[str, PacingMode] = {
    "sleep": PacingMode(0.0, 0.0),
    "nanosleep": PacingMode(TAIL_S, 0.0),
    "spin": PacingMode(TAIL_S, SPIN_ONLY_S),
    "timer": PacingMode(0.0, 0.0, timer=True),
}
# A rest ends this long before the due frame's deadline (the event loop's own timer is good to
# about a millisecond); ``next_frame`` then waits the rest the usual, precise way.
REST_MARGIN_S = 0.002
FALLBACK_PACING_MODE = "spin"  # where the timer cannot run


@dataclass
class PacingStats:
    frames: int = 0
    skipped: int = 0
    late: int = 0
    max_lateness_s: float = 0.0
    lateness_sum_s: float = 0.0
    handed_out: int = 0  # frames handed to the frame work (``frames`` also counts rested ones)

    def snapshot(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "skipped": self.skipped,
            "late": self.late,
            "max_lateness_ms": round(self.max_lateness_s * 1e3, 3),
            "mean_lateness_ms": round(self.lateness_sum_s / self.handed_out * 1e3, 3)
            if self.handed_out
            else 0.0,
        }


@dataclass
class FramePacer:
    """Hands out frame ticks: ``await pacer.next_frame()`` returns the frame due now."""

    period_s: float
    mode: str = DEFAULT_PACING_MODE  # a PACING_MODES name
    clock: Callable[[], float] = time.perf_counter
    stats: PacingStats = field(default_factory=PacingStats)
    start_s: float = field(init=False, default=0.0)
    frame_index: int = field(init=False, default=-1)
    spin_s: float = field(init=False, default=0.0)  # the blocking tail before each deadline
    spin_only_s: float = field(init=False, default=0.0)  # of which the last stretch is spun
    _timer: DeadlineTimer | None = field(init=False, default=None, repr=False)
    _rest_waiter: asyncio.Future[None] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")
        self.set_mode(self.mode)

    def set_mode(self, name: str) -> None:
        """Wait the ``PACING_MODES[name]`` way from the next frame on. ``timer`` needs the
        real clock and a timerfd; without either the pacer falls back to ``spin`` (``mode``
        then says so)."""
        if name not in PACING_MODES:
            raise ValueError(f"pacing mode must be one of {sorted(PACING_MODES)}, got {name!r}")
        if PACING_MODES[name].timer:
            try:
                if self.clock is not time.perf_counter:
                    raise OSError("the timer keeps time.perf_counter's clock")
                self._timer = self._timer or DeadlineTimer()
            except OSError:
                name = FALLBACK_PACING_MODE
        if not PACING_MODES[name].timer:
            self.close()
        self.mode = name
        self.spin_s = PACING_MODES[name].tail_s
        self.spin_only_s = PACING_MODES[name].spin_only_s

    def close(self) -> None:
        """Release the timer, if the mode had one (the pacer can still pace, by sleeping)."""
        if self._timer is not None:
            self._timer.close()
            self._timer = None

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
            self.stats.handed_out += 1
            return 0
        due = self.frame_index + 1
        now = self.clock()
        newest_passed = math.floor((now - self.start_s) / self.period_s)
        if newest_passed > due:
            self.stats.skipped += newest_passed - due
            due = newest_passed
        deadline = self.deadline(due)
        remaining = deadline - now
        if self._timer is not None:
            # Inputs are read while the loop waits, up to the deadline: nothing to spin for.
            if remaining > 0:
                await self._timer.wait_until(deadline)
            else:  # already late (an overrun): still let the loop run inputs and signals
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            return self._handed_out(due, deadline)
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
        return self._handed_out(due, deadline)

    def _handed_out(self, due: int, deadline: float) -> int:
        lateness = self.clock() - deadline
        self.frame_index = due
        self.stats.frames += 1
        self.stats.handed_out += 1
        self.stats.lateness_sum_s += lateness
        if lateness > self.stats.max_lateness_s:
            self.stats.max_lateness_s = lateness
        if lateness > LATE_THRESHOLD_S:
            self.stats.late += 1
        return due

    async def rest(self, until: int) -> None:
        """Nothing is due before frame ``until``: sleep through the frames before it, or until
        ``wake()``. The next ``next_frame`` then hands out the next frame on the grid at its
        deadline, as ever. Frames rested through count as frames (there was nothing to send in
        them), neither late nor skipped."""
        if self.frame_index < 0 or until <= self.frame_index + 1:
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._rest_waiter = waiter
        delay_s = self.deadline(until) - REST_MARGIN_S - self.clock()
        handle = loop.call_later(max(delay_s, 0.0), _resolve, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._rest_waiter = None
        passed = math.floor((self.clock() - self.start_s) / self.period_s)
        newest = min(passed, until - 1)
        if newest > self.frame_index:
            self.stats.frames += newest - self.frame_index
            self.frame_index = newest

    def wake(self) -> None:
        """End a ``rest`` now (an input or a reload arrived); nothing when not resting."""
        waiter = self._rest_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def time_s(self) -> float:
        """Seconds since the first frame, at the current frame's deadline."""
        return self.frame_index * self.period_s


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
