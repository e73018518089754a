"""A kernel timer that wakes the event loop at an absolute time: Linux's timerfd.

The event loop's own sleep is only good to about a millisecond (epoll's timeout is in whole
milliseconds, rounded up), which is why the pacer's other modes finish each wait with a
blocking nanosleep and a spin. A timerfd armed at the deadline (``CLOCK_MONOTONIC``, the clock
of ``time.perf_counter`` on Linux) becomes readable when the deadline passes, to the
microsecond, and the loop wakes for it like for a socket: one wake-up per frame, nothing spun,
and inputs keep being read until the deadline. docs/performance.md, "Pacing modes", has the
measurements.

Python 3.13 has ``os.timerfd_create``; on 3.11 and 3.12 the two libc calls go through ctypes.
``DeadlineTimer()`` raises ``OSError`` where there is no timerfd (not Linux): the pacer then
falls back to the sleep-and-spin mode.
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
import sys
import time
from collections.abc import Callable

__all__ = ["DeadlineTimer"]

_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc_timerfd() -> tuple[Callable[[], int], Callable[[int, int], None]]:
    """(create, arm(fd, deadline_ns)) through ctypes; OSError without a timerfd."""
    if not sys.platform.startswith("linux"):
        raise OSError("timerfd is Linux only")
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        create_fd, settime = libc.timerfd_create, libc.timerfd_settime
    except AttributeError as error:
        raise OSError("this libc has no timerfd") from error
    spec = _Itimerspec()  # one, reused: arming allocates no structure
    value = spec.it_value  # a view into ``spec`` (each attribute access would make a new one)
    spec_pointer = ctypes.byref(spec)

    def create() -> int:
        fd = int(create_fd(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number))
        return fd

    def arm(fd: int, deadline_ns: int) -> None:
        value.tv_sec, value.tv_nsec = divmod(deadline_ns, 1_000_000_000)
        if settime(fd, _TFD_TIMER_ABSTIME, spec_pointer, None) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number))

    return create, arm


def _os_timerfd() -> tuple[Callable[[], int], Callable[[int, int], None]]:
    """(create, arm) with Python 3.13's ``os`` functions."""
    create_fd = getattr(os, "timerfd_create")  # noqa: B009 (absent before 3.13: mypy)
    settime_ns = getattr(os, "timerfd_settime_ns")  # noqa: B009
    flags = getattr(os, "TFD_NONBLOCK") | getattr(os, "TFD_CLOEXEC")  # noqa: B009
    absolute = getattr(os, "TFD_TIMER_ABSTIME")  # noqa: B009

    def create() -> int:
        return int(create_fd(time.CLOCK_MONOTONIC, flags=flags))

    def arm(fd: int, deadline_ns: int) -> None:
        settime_ns(fd, flags=absolute, initial=deadline_ns)

    return create, arm


def _timerfd_calls() -> tuple[Callable[[], int], Callable[[int, int], None]]:
    return _os_timerfd() if hasattr(os, "timerfd_create") else _libc_timerfd()


class DeadlineTimer:
    """``await timer.wait_until(deadline_s)``: resumes once ``time.perf_counter()`` has passed
    ``deadline_s``. One timer serves one waiter at a time, on one event loop."""

    def __init__(self) -> None:
        if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
            raise OSError("perf_counter is not CLOCK_MONOTONIC here")
        create, self._arm = _timerfd_calls()
        self._fd = create()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    def _on_readable(self) -> None:
        try:
            os.read(self._fd, 8)  # the expiry count; reading re-arms readiness
        except BlockingIOError:  # re-armed for a later deadline since it fired
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_until(self, deadline_s: float) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new loop (tests run several)
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            loop.add_reader(self._fd, self._on_readable)
            self._loop = loop
        waiter = loop.create_future()
        self._waiter = waiter
        # Whole nanoseconds, rounded up: the timer must not fire before the deadline.
        self._arm(self._fd, max(1, math.ceil(deadline_s * 1e9)))
        try:
            await waiter
        finally:
            self._waiter = None

    def __del__(self) -> None:
        # Only when no running loop still watches the fd: its selector would keep a stale key.
        if getattr(self, "_fd", -1) >= 0 and (self._loop is None or self._loop.is_closed()):
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        """Unregister from the loop and close the fd (idempotent); a pending ``wait_until``
        returns at once (early: its caller waits the rest another way, or is stopping)."""
        if self._fd < 0:
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
