"""Hold a SIGHUP that arrives before ``vadbridge run`` can reload (issue 12, item 6).

SIGHUP's default disposition ends the process, and a daemon spends its first few hundred
milliseconds importing numpy and loading the model. The console script's launcher
(``vadbridge.__main__``) calls ``hold()`` before it imports anything else of ours, about 1 ms
after the interpreter hands over; from then on a SIGHUP is only remembered, and ``vadbridge
run`` honours it once its reload handler is installed. The interpreter's own start-up (~10 ms
after exec) runs before any Python code and stays at the default disposition: a supervisor
that must reload that early starts the process with SIGHUP ignored, which Python keeps.

This module is imported first thing, so it imports only the C ``_signal`` module: ``signal``
would pull in ``enum`` (~6 ms on this machine) while the default disposition still holds.
"""

from __future__ import annotations

try:
    import _signal as _signals  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # an interpreter without the C module under that name
    import signal as _signals

__all__ = ["EarlyHangup", "hold"]


class EarlyHangup:
    """Remembers a SIGHUP (``requested``) until ``restore()`` puts the old handler back."""

    def __init__(self) -> None:
        self.requested = False
        self._signum: int | None = getattr(_signals, "SIGHUP", None)  # not on Windows
        self._previous: object = None
        if self._signum is not None:
            self._previous = _signals.signal(self._signum, self._remember)

    def _remember(self, _signum: int, _frame: object) -> None:
        self.requested = True

    def restore(self) -> None:
        if self._signum is not None and _signals.getsignal(self._signum) == self._remember:
            _signals.signal(self._signum, self._previous)


_held: EarlyHangup | None = None


def hold() -> EarlyHangup:
    """The process's one holder, installed on the first call."""
    global _held
    if _held is None:
        _held = EarlyHangup()
    return _held


def command_is_run(arguments: list[str]) -> bool:
    """Whether the command line names ``run`` (its first word that is not an option)."""
    return next((a for a in arguments if not a.startswith("-")), None) == "run"
