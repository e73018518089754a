"""Time of day for outputs stamped like Epic's Live Link Face app (its packets and CSV takes).

The app stamps every frame with timecode: the local time of day counted in frames at a given
rate, plus the fraction of a frame (the subframe). A frame's ``time_s`` is anchored to the wall
clock once, at the first frame (that frame's time of day minus its ``time_s``), and advanced by
``time_s`` afterwards, so stamps keep the frame loop's exact spacing and never jump with the
wall clock.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import Final

__all__ = ["SECONDS_PER_DAY", "TimeOfDayAnchor", "frame_time", "local_time_of_day_s"]

SECONDS_PER_DAY: Final = 86400
# The largest float32 below 1: a subframe above it would be sent as 1.0, a whole frame.
_MAX_SUBFRAME: Final = 1.0 - 2.0**-24


def local_time_of_day_s() -> float:
    """Seconds since local midnight, now."""
    now = datetime.datetime.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return (now - midnight).total_seconds()


class TimeOfDayAnchor:
    """Maps a frame's ``time_s`` to seconds since midnight, anchored at the first frame.

    ``time_of_day`` (seconds since midnight) is read once, at the first call; injectable for
    tests.
    """

    def __init__(self, time_of_day: Callable[[], float] = local_time_of_day_s) -> None:
        self._time_of_day = time_of_day
        self._origin_s: float | None = None

    @property
    def anchored(self) -> bool:
        """Whether the wall clock was read (the first frame was stamped)."""
        return self._origin_s is not None

    def seconds(self, time_s: float) -> float:
        """Seconds since midnight for ``time_s`` (wrapping at 24 h)."""
        if self._origin_s is None:
            self._origin_s = self._time_of_day() - time_s
        return (self._origin_s + time_s) % SECONDS_PER_DAY


def frame_time(seconds: float, fps: int) -> tuple[int, float]:
    """``(frame, subframe)`` for ``seconds`` since midnight at ``fps`` frames per second.

    ``frame`` counts whole frames since midnight (0 to 86400 x fps - 1, wrapping at 24 h);
    ``subframe`` is the rest of the frame in [0, 1), below 1 even as a float32.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"time of day must be finite and >= 0, got {seconds!r}")
    frames = seconds * fps
    whole = math.floor(frames)
    subframe = frames - whole
    if subframe > _MAX_SUBFRAME:
        whole, subframe = whole + 1, 0.0
    return whole % (SECONDS_PER_DAY * fps), subframe
