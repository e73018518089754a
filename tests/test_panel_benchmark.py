"""The control panel's benchmark (issue 15) runs end to end: a 1 s smoke run whose figures are
not asserted (too short, and timing goals live in the benchmark's printout); the full run's
numbers are in docs/performance.md, "Control panel"."""

from __future__ import annotations

import pytest

from vadbridge.benchmarks import panel


@pytest.mark.slow
def test_the_panel_benchmark_measures_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    panel.main(["--seconds", "1", "--pages", "3"])
    out = capsys.readouterr().out
    for scenario in panel.scenarios(3):
        assert f"| panel | {scenario.name} | lateness p99 |" in out
    assert "3 pages + hostile client: lateness p99" in out
    assert "counted web.rate_limit" in out and "counted oversize" in out


def test_a_verdict_compares_p99_with_the_scenarios_own_target() -> None:
    calm, flood = panel.Scenario("2 pages", 2, False), panel.Scenario("flood", 2, True)
    calm.lateness_s = [0.0005] * 100
    flood.lateness_s = [0.0015] * 100
    assert panel.verdicts([panel.Scenario("no pages", 0, False), calm, flood]) == [
        "2 pages: lateness p99 0.500 ms, target < 1 ms: met",
        "flood: lateness p99 1.500 ms, target < 2 ms: met",
    ]
