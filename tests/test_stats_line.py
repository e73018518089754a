"""The stats line shows one interval's counts; at debug level accepted inputs are logged, a line
per source per second at most (README, "Reading the log")."""

from __future__ import annotations

import logging

import pytest

from vadbridge.core.stats import (
    ACCEPTED_LOG_INTERVAL_S,
    InputStats,
    format_stats_line,
    interval_counts,
    printable,
    show,
)
from vadbridge.core.types import VadSample


def snapshot(frames: int = 600, late: int = 2, skipped: int = 1,
             accepted: dict[str, int] | None = None, rejected: dict[str, int] | None = None,
             send_errors: dict[str, int] | None = None) -> dict[str, object]:
    """A ``Bridge.stats_snapshot()``: totals since start, and the gauges."""
    return {
        "frames": frames, "late": late, "skipped": skipped, "avatars": 3,
        "max_lateness_ms": 4.2, "mean_lateness_ms": 0.3, "inferred_rows": 10,
        "inputs": {"accepted": accepted if accepted is not None else {"osc": 12, "mqtt": 0},
                   "rejected": rejected if rejected is not None else {"mqtt.json": 2},
                   "clipped": {}},
        "send_errors": send_errors if send_errors is not None else {},
    }


def test_stats_line_names_nonzero_counters_only() -> None:
    line = format_stats_line(
        snapshot(send_errors={"vmc 127.0.0.1:39539": 0, "livelink 10.0.0.2:11111": 7}), 10.0
    )
    assert line == (
        "stats (last 10 s): 600 frames (60.0 fps), late 2, skipped 1, avatars 3; inputs "
        "accepted osc=12, rejected mqtt.json=2, clipped 0; send errors livelink 10.0.0.2:11111=7"
    )


def test_stats_line_shows_ignored_messages_only_when_there_were_some() -> None:
    """An empty retained MQTT message is counted as ignored: shown, never warned about."""
    stats = InputStats()
    stats.accept("mqtt")
    stats.ignore("mqtt.cleared")
    stats.ignore("mqtt.cleared")
    counts = snapshot()
    counts["inputs"] = stats.snapshot()
    line = format_stats_line(counts, 10.0)
    assert "accepted mqtt=1, rejected 0, clipped 0, ignored mqtt.cleared=2; send errors" in line
    later = interval_counts(counts, counts)  # an interval with nothing new
    assert ", ignored" not in format_stats_line(later, 10.0)


def test_stats_line_says_the_measured_interval_to_a_tenth_of_a_second() -> None:
    assert format_stats_line(snapshot(frames=30), 0.501).startswith(
        "stats (last 0.5 s): 30 frames (59.9 fps),"
    )


def test_stats_line_names_only_the_worst_outputs_of_a_crowd() -> None:
    errors = {f"vmc 127.0.0.1:{port}": port - 39000 for port in range(39001, 39101)}
    line = format_stats_line(snapshot(send_errors=errors), 10.0, max_outputs=2)
    assert line.endswith("send errors vmc 127.0.0.1:39099=99 vmc 127.0.0.1:39100=100 "
                         "(+98 more outputs)")


def test_interval_counts_are_the_differences_of_two_totals() -> None:
    before = snapshot(frames=600, late=2, skipped=1, accepted={"osc": 12},
                      rejected={"mqtt.json": 2}, send_errors={"vmc 127.0.0.1:39539": 5})
    now = snapshot(frames=1200, late=3, skipped=1, accepted={"osc": 20, "mqtt": 4},
                   rejected={"mqtt.json": 2}, send_errors={"vmc 127.0.0.1:39539": 9})
    counts = interval_counts(now, before)
    assert (counts["frames"], counts["late"], counts["skipped"]) == (600, 1, 0)
    assert counts["inputs"] == {"accepted": {"osc": 8, "mqtt": 4}, "rejected": {"mqtt.json": 0},
                                "clipped": {}}
    assert counts["send_errors"] == {"vmc 127.0.0.1:39539": 4}
    assert counts["avatars"] == 3  # a gauge: as it is now
    assert format_stats_line(counts, 10.0) == (
        "stats (last 10 s): 600 frames (60.0 fps), late 1, skipped 0, avatars 3; inputs "
        "accepted mqtt=4 osc=8, rejected 0, clipped 0; send errors vmc 127.0.0.1:39539=4"
    )


def test_interval_counts_take_a_restarted_counter_whole() -> None:
    # A reload replaced the output: its new sink counts from zero again.
    before = snapshot(send_errors={"vmc 127.0.0.1:39539": 50})
    now = snapshot(send_errors={"vmc 127.0.0.1:39539": 3, "osc 127.0.0.1:9001": 1})
    assert interval_counts(now, before)["send_errors"] == {
        "vmc 127.0.0.1:39539": 3, "osc 127.0.0.1:9001": 1,
    }


# --- debug lines for accepted inputs -------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_accepted_inputs_are_logged_at_debug_once_per_source_per_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    stats = InputStats(clock=clock)
    with caplog.at_level(logging.DEBUG, logger="vadbridge.inputs"):
        stats.accept("osc", VadSample("default", (0.5, 0.25, None)))
        for _ in range(9):
            stats.accept("osc", VadSample("default", (0.1, 0.1, 0.1)))
        stats.accept("mqtt", VadSample("alice", (-1.0, 0.0, 1.0)))  # its own budget
        clock.now_s += ACCEPTED_LOG_INTERVAL_S
        stats.accept("osc", VadSample("bob", (None, 0.125, None)))
    assert [r.getMessage() for r in caplog.records] == [
        "accepted osc input: avatar default, valence 0.500, arousal 0.250, dominance unchanged",
        "accepted mqtt input: avatar alice, valence -1.000, arousal 0.000, dominance 1.000",
        "accepted osc input: avatar bob, valence unchanged, arousal 0.125, dominance unchanged "
        "(10 accepted since the previous line)",
    ]
    assert {r.levelno for r in caplog.records} == {logging.DEBUG}
    assert stats.snapshot()["accepted"] == {"osc": 11, "mqtt": 1}


def test_accepted_inputs_are_not_logged_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    stats = InputStats()
    with caplog.at_level(logging.INFO, logger="vadbridge.inputs"):
        stats.accept("osc", VadSample("default", (0.5, 0.5, 0.5)))
    assert caplog.records == []
    assert stats.snapshot()["accepted"] == {"osc": 1}


def test_with_debug_off_an_accepted_input_is_only_counted() -> None:
    # No clock read, no formatting: one level check (~0.1 us; handling the datagram is ~10 us).
    def clock() -> float:
        raise AssertionError("the clock was read with debug off")

    quiet = logging.getLogger("vadbridge.test.quiet")
    quiet.setLevel(logging.INFO)
    stats = InputStats(clock=clock, logger=quiet)
    for _ in range(3):
        stats.accept("osc", VadSample("default", (0.5, 0.5, 0.5)))
    assert stats.snapshot()["accepted"] == {"osc": 3}


# --- input text in log lines (issue 12, log forging) ---------------------------------------------


def test_show_escapes_control_characters_like_repr() -> None:
    assert show("/a\n2026 ERROR x\r\x00\u2028") == "'/a\\n2026 ERROR x\\r\\x00\\u2028'"


def test_show_cuts_long_input_to_80_chars_and_an_ellipsis() -> None:
    shown = show("x" * 65_000)
    assert shown == "'" + "x" * 79 + "…"
    assert show("x" * 10) == "'xxxxxxxxxx'"


def test_a_rejection_reason_with_a_raw_newline_is_logged_escaped_on_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = InputStats()
    with caplog.at_level(logging.WARNING, logger="vadbridge.inputs"):
        stats.reject("mqtt.topic", "vb/a\n2026-01-01 ERROR vadbridge: forged" + "y" * 1000,
                     source="mqtt")
    (record,) = caplog.records
    text = record.getMessage()
    assert "\n" not in text and "vb/a\\n2026-01-01 ERROR" in text
    assert len(text) < 500 and text.endswith("…")


def test_printable_leaves_printable_text_alone() -> None:
    assert printable("unknown address '/x': expected /vad") == "unknown address '/x': expected /vad"
