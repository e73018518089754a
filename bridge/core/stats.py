"""Input counters, the rate-limited input log lines and the stats line (docs/DESIGN.md, "Core
types"; README, "Reading the log").

Pure bookkeeping: no I/O besides the log lines, and the clock is injectable so tests can step it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from vadbridge.core.types import VadSample

__all__ = [
    "ACCEPTED_LOG_INTERVAL_S",
    "DEFAULT_LOG_INTERVAL_S",
    "InputStats",
    "format_stats_line",
    "interval_counts",
    "printable",
    "show",
]

_log = logging.getLogger("vadbridge.inputs")


DEFAULT_LOG_INTERVAL_S = 10.0  # seconds between two log lines of one kind of rejection
ACCEPTED_LOG_INTERVAL_S = 1.0  # debug level: seconds between two "accepted" lines of one source
_AXES = ("valence", "arousal", "dominance")


# --- input text in log lines ---------------------------------------------------------------------

LOG_TEXT_CHARS = 80  # one piece of input (an address, a topic, a name) as a log line shows it
_REASON_CHARS = 400  # a whole rejection reason: a few pieces and the words around them
_CUT = "…"


def show(value: object, limit: int = LOG_TEXT_CHARS) -> str:
    """A piece of input as a log line may show it: ``repr``-escaped and at most ``limit`` chars.

    The single way input text reaches a log line (issue 12, log forging): ``repr`` escapes
    newlines, control and other non-printable characters, so a sender cannot start a line of its
    own; the cut keeps attacker-sized input from making log lines huge. A cut text ends in "…".
    """
    cut = False
    if isinstance(value, str | bytes | bytearray) and len(value) > limit:
        value, cut = value[:limit], True  # repr of the head only: no O(n) work on 64 KB inputs
    text = repr(value)
    if len(text) > limit:
        text, cut = text[:limit], True
    return text + _CUT if cut else text


def printable(text: str, limit: int = _REASON_CHARS) -> str:
    """``text`` (a whole log message built elsewhere) with non-printable characters escaped as
    ``repr`` would and cut to ``limit`` chars: the last guard before a rejection is logged."""
    if len(text) > limit:
        text = text[:limit] + _CUT
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class InputStats:
    """Accepted inputs per source, rejected per kind and per source, clipped per source, ignored
    per kind.

    Sources are the names inputs are counted under (``osc``, ``mqtt``, ``web``); kinds such as
    ``rate_limit`` or ``avatar.limit`` are shared by them, so a rejection is counted twice over:
    per kind (the stats line, the log) and per source (the panel's accepted/rejected per source).

    Ignored messages are not input and nothing is wrong with them (an MQTT retained value being
    cleared): counted, never logged.

    A rejection is logged at most once per kind per ``log_interval_s``; the next line for that
    kind says how many were suppressed in between, so a flood costs one line per interval.

    At debug level (``vadbridge run -v``) an accepted input is logged too, at most once per
    source per ``ACCEPTED_LOG_INTERVAL_S``, with its avatar and values and how many that source
    accepted since its previous line (this one included), so a user sees at once that an input
    arrived. With
    debug off that costs one ``isEnabledFor`` (a cached dict lookup) per accepted input.
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
        self._rejected_by_source: dict[str, int] = {}
        self._clipped: dict[str, int] = {}
        self._ignored: dict[str, int] = {}
        self._last_logged_s: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._accept_logged_s: dict[str, float] = {}
        self._accepts_unlogged: dict[str, int] = {}

    def accept(self, source: str, sample: VadSample | None = None) -> None:
        """Count one accepted input from ``source``; ``sample`` is what the debug line shows."""
        self._accepted[source] = self._accepted.get(source, 0) + 1
        # Asked per input, not cached: a SIGHUP reload may change the level while we run.
        if sample is not None and self._logger.isEnabledFor(logging.DEBUG):
            self._log_accepted(source, sample)

    def _log_accepted(self, source: str, sample: VadSample) -> None:
        unlogged = self._accepts_unlogged.get(source, 0) + 1
        now_s = self._clock()
        last_s = self._accept_logged_s.get(source)
        if last_s is not None and now_s - last_s < ACCEPTED_LOG_INTERVAL_S:
            self._accepts_unlogged[source] = unlogged
            return
        self._accept_logged_s[source] = now_s
        self._accepts_unlogged[source] = 0
        values = ", ".join(
            f"{axis} {'unchanged' if value is None else format(value, '.3f')}"
            for axis, value in zip(_AXES, sample.vad, strict=True)
        )
        since = "" if last_s is None else f" ({unlogged} accepted since the previous line)"
        self._logger.debug(
            "accepted %s input: avatar %s, %s%s", source, sample.avatar, values, since
        )

    def clipped(self, source: str) -> None:
        """Count one accepted input from ``source`` that had an axis clipped to [-1, 1]."""
        self._clipped[source] = self._clipped.get(source, 0) + 1

    def ignore(self, kind: str) -> None:
        """Count one message of ``kind`` that carries no input and is dropped quietly."""
        self._ignored[kind] = self._ignored.get(kind, 0) + 1

    def reject(self, kind: str, reason: str, *, source: str) -> None:
        """Count one input of ``source`` rejected as ``kind``; log ``reason`` if ``kind`` has
        not been logged in the last ``log_interval_s``. ``source`` is keyword-only and required
        so that no rejection goes uncounted per source."""
        self._rejected[kind] = self._rejected.get(kind, 0) + 1
        self._rejected_by_source[source] = self._rejected_by_source.get(source, 0) + 1
        now_s = self._clock()
        last_s = self._last_logged_s.get(kind)
        if last_s is not None and now_s - last_s < self.log_interval_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last_logged_s[kind] = now_s
        suppressed = self._suppressed.pop(kind, 0)
        # Reasons show input through ``show``; this catches any piece that was not.
        reason = printable(reason)
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
        """Copies of the counters: ``{"accepted", "rejected", "rejected_by_source", "clipped",
        "ignored"}``, each a name -> count dict: ``accepted``, ``rejected_by_source`` and
        ``clipped`` per source, ``rejected`` and ``ignored`` per kind. The stats line shows all
        but ``rejected_by_source``; the panel shows that one beside ``accepted``."""
        return {
            "accepted": dict(self._accepted),
            "rejected": dict(self._rejected),
            "rejected_by_source": dict(self._rejected_by_source),
            "clipped": dict(self._clipped),
            "ignored": dict(self._ignored),
        }


# --- the stats line ------------------------------------------------------------------------------

_FRAME_COUNTERS = ("frames", "late", "skipped")


def interval_counts(now: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """The counts of one stats interval from two ``Bridge.stats_snapshot()`` totals.

    Frames, late, skipped, every input counter and every output's send errors become the
    difference; the other entries (``avatars``, ``receivers``, lateness) are taken from ``now``.
    A counter smaller than before was started again (an output a reload replaced): all of it is
    new.
    """
    counts = dict(now)
    for key in _FRAME_COUNTERS:
        counts[key] = _since(now[key], before.get(key, 0))
    before_inputs = before.get("inputs", {})
    counts["inputs"] = {
        kind: _difference(by_key, before_inputs.get(kind, {}))
        for kind, by_key in now["inputs"].items()
    }
    counts["send_errors"] = _difference(now["send_errors"], before.get("send_errors", {}))
    return counts


def _since(now: int, before: int) -> int:
    return now - before if now >= before else now


def _difference(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {key: _since(value, before.get(key, 0)) for key, value in now.items()}


def format_stats_line(counts: Mapping[str, Any], interval_s: float, *,
                      max_outputs: int = 5) -> str:
    """One readable line from ``interval_counts``: what happened in the last ``interval_s``
    seconds. Zero counters are left out, and only the first few failing outputs are named (a
    crowd has thousands of outputs). The README ("Reading the log") says what each field means."""

    def named(mapping: Mapping[str, int]) -> str:
        shown = [f"{key}={value}" for key, value in sorted(mapping.items()) if value]
        return " ".join(shown) if shown else "0"

    inputs = counts["inputs"]
    failing = {name: n for name, n in counts["send_errors"].items() if n}
    worst = dict(sorted(failing.items(), key=lambda item: -item[1])[:max_outputs])
    errors = named(worst) + (f" (+{len(failing) - len(worst)} more outputs)"
                             if len(failing) > len(worst) else "")
    fps = counts["frames"] / interval_s if interval_s > 0 else 0.0
    ignored = inputs.get("ignored", {})
    quiet = f", ignored {named(ignored)}" if any(ignored.values()) else ""
    # A gauge: how many receivers such an output streams to now, zero included.
    receivers = counts.get("receivers") or {}
    streaming = "; receivers " + " ".join(
        f"{name}={count}" for name, count in sorted(receivers.items())) if receivers else ""
    return (
        f"stats (last {_seconds(interval_s)} s): {counts['frames']} frames ({fps:.1f} fps), "
        f"late {counts['late']}, skipped {counts['skipped']}, avatars {counts['avatars']}; "
        f"inputs accepted {named(inputs['accepted'])}, rejected {named(inputs['rejected'])}, "
        f"clipped {named(inputs['clipped'])}{quiet}; send errors {errors}{streaming}"
    )


def _seconds(value_s: float) -> str:
    """``10``, ``0.5``, ``2.5``: the measured interval to a tenth, without a trailing ``.0``."""
    return f"{value_s:.1f}".removesuffix(".0")
