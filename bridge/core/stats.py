"""Input counters and the rate-limited rejection log (docs/DESIGN.md, "Core types").

Pure bookkeeping: no I/O besides the log line, and the clock is injectable so tests can step it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["DEFAULT_LOG_INTERVAL_S", "InputStats"]

_log = logging.getLogger("vadbridge.inputs")


DEFAULT_LOG_INTERVAL_S = 10.0  # seconds between two log lines of one kind of rejection

class InputStats:
    """Accepted inputs per source, rejected per kind, clipped per source.

    A rejection is logged at most once per kind per ``log_interval_s``; the next line for that
    kind says how many were suppressed in between, so a flood costs one line per interval.
    """

    def __init__(
        self,
        *,
        log_interval_s: float = DEFAULT_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = _log,
    ) -> None:
        if not log_interval_s >= 0.0:
            raise ValueError(f"log_interval_s must be >= 0, got {log_interval_s!r}")
        self.log_interval_s = log_interval_s
        self._clock = clock
        self._logger = logger
        self._accepted: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._clipped: dict[str, int] = {}
        self._last_logged_s: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def accept(self, source: str) -> None:
        self._accepted[source] = self._accepted.get(source, 0) + 1

    def clipped(self, source: str) -> None:
        """Count one accepted input from ``source`` that had an axis clipped to [-1, 1]."""
        self._clipped[source] = self._clipped.get(source, 0) + 1

    def reject(self, kind: str, reason: str) -> None:
        self._rejected[kind] = self._rejected.get(kind, 0) + 1
        now_s = self._clock()
        last_s = self._last_logged_s.get(kind)
        if last_s is not None and now_s - last_s < self.log_interval_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last_logged_s[kind] = now_s
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            self._logger.warning(
                "rejected input (%s): %s (%d more since)", kind, reason, suppressed
            )
        else:
            self._logger.warning("rejected input (%s): %s", kind, reason)

    @property
    def accepted_total(self) -> int:
        return sum(self._accepted.values())

    @property
    def rejected_total(self) -> int:
        return sum(self._rejected.values())

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Copies of the counters, for the stats line: ``{"accepted", "rejected", "clipped"}``."""
        return {
            "accepted": dict(self._accepted),
            "rejected": dict(self._rejected),
            "clipped": dict(self._clipped),
        }
