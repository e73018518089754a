"""Hold a SIGHUP that arrives before ``vadbridge run`` can reload (issue 12, item 6).

SIGHUP's default disposition ends the process, and a daemon spends its first few hundred
milliseconds importing numpy and loading the model. ``hold()`` is called first thing by
``main()`` for ``run`` (this module imports nothing heavy), so from then on a SIGHUP is only
remembered; ``vadbridge run`` honours it once its reload handler is installed.
"""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["EarlyHangup", "hold"]


class EarlyHangup:
    """Remembers a SIGHUP (``requested``) until ``restore()`` puts the old handler back."""

    def __init__(self) -> None:
        self.requested = False
        self._signum = getattr(signal, "SIGHUP", None)  # not on Windows
        self._previous: Any = None
        if self._signum is not None:
            self._previous = signal.signal(self._signum, self._remember)

    def _remember(self, _signum: int, _frame: object) -> None:
        self.requested = True

    def restore(self) -> None:
        if self._signum is not None and signal.getsignal(self._signum) == self._remember:
            signal.signal(self._signum, self._previous)


_held: EarlyHangup | None = None


def hold() -> EarlyHangup:
    """The process's one holder, installed on the first call."""
    global _held
    if _held is None:
        _held = EarlyHangup()
    return _held
