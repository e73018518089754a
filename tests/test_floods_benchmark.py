"""The issue-12 floods benchmark runs end to end (a 1 s smoke run; the figures are in
docs/reliability.md, "Floods (issue 12)")."""

from __future__ import annotations

import pytest

from vadbridge.benchmarks import floods


@pytest.mark.slow
def test_the_floods_benchmark_measures_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    floods.main(["--seconds", "1"])  # the verdict on a 1 s window is not asserted: too short
    out = capsys.readouterr().out
    for scenario in floods.SCENARIOS:
        assert f"| {scenario.name} |" in out
        assert f"{scenario.name}: " in out


def test_the_log_reader_counts_lines_per_kind_per_stats_interval() -> None:
    result = floods.Result("x", fps=60, min_fps=60, max_gap_ms=17, skipped=0)
    stats = ("t0 t1 INFO vadbridge.daemon: stats (last 1 s): 60 frames (60.0 fps), late 0, "
             "skipped {s}, avatars 1; inputs accepted mqtt=5, rejected oversize={r}, clipped 0; "
             "send errors 0")
    reject = "t0 t1 WARNING vadbridge.inputs: rejected input (oversize): too big"
    floods.read_log("\n".join([reject, reject, stats.format(s=1, r=2), reject,
                               stats.format(s=0, r=1)]), result)
    assert result.lines_per_kind == {"oversize": 2}
    assert result.rejected == {"oversize": 3}
    assert result.accepted == {"mqtt": 10}
    assert result.skipped == 1
