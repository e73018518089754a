"""The benchmark suite: the --quick run works end to end and its table parses (no timing asserts).

The table is what docs/performance.md and the issue report quote, so the smoke test checks its
shape and internal consistency (ratio = baseline / bridge), never how fast anything was.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from models import run_cli_without_torch

from vadbridge.benchmarks.encoders import PAIRS, check_identical, sample_frames
from vadbridge.benchmarks.floor import FLOORS
from vadbridge.benchmarks.harness import Result, format_table, parse_table
from vadbridge.benchmarks.one_avatar import CASE as ONE_AVATAR_CASE
from vadbridge.benchmarks.one_avatar import grid_lateness_s
from vadbridge.benchmarks.suite import BENCHMARKS
from vadbridge.commands import main as vadbridge_main
from vadbridge.commands.args import NEEDS_TORCH
from vadbridge.core.frame_loop import PACING_MODES

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_quick_bench_exits_zero_and_prints_every_benchmark(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    assert quick_run.returncode == 0, quick_run.stderr[-2000:]
    rows = parse_table(quick_run.stdout)
    assert {row["benchmark"] for row in rows} >= set(BENCHMARKS)
    assert all(row["unit"] for row in rows)


def _half_step(value: float) -> float:
    """Half the last printed digit of a table number (benchmarks.harness formatting)."""
    magnitude = abs(value)
    if magnitude >= 10:
        return 0.05
    if magnitude >= 0.01:
        return 0.0005
    return magnitude * 5e-3  # three significant digits


def test_quick_bench_numbers_are_finite_and_ratios_consistent(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    rows = parse_table(quick_run.stdout)
    for row in rows:
        assert math.isfinite(row["bridge"]), row
        if row["baseline"] is not None:
            assert row["baseline"] > 0 and row["bridge"] > 0, row
            # Cells are rounded (see benchmarks.harness: 1 decimal from 10 up, 3 below, 3
            # significant digits under 0.01; ratios to 0.1): allow exactly that much.
            expected = row["baseline"] / row["bridge"]
            relative = _half_step(row["baseline"]) / row["baseline"] + _half_step(
                row["bridge"]) / row["bridge"]
            assert abs(row["ratio"] - expected) <= expected * relative + 0.05 + 1e-9, row


def test_quick_bench_covers_the_issue_cases(quick_run: subprocess.CompletedProcess[str]) -> None:
    rows = parse_table(quick_run.stdout)
    cases = {(row["benchmark"], row["case"], row["metric"]) for row in rows}
    for avatars in (1, 10, 100, 1000):
        for output in ("VMC", "OSC per_shape", "Live Link"):
            assert ("frame_cost", f"{avatars} avatars, {output}, mlp", "per avatar-frame") in cases
    assert ("pacing", "60 fps, 1 avatar, mlp", "lateness p99") in cases
    assert any(b == "latency" and m == "p99" for b, _, m in cases)
    assert any(b == "idle" and c.startswith("1000 converged") for b, c, _ in cases)
    assert "targets (this run):" in quick_run.stdout
    for mode in PACING_MODES:
        assert ("pacing", f"60 fps, 1 avatar, mlp, pacer {mode}", "CPU") in cases
    assert ("engines", "forward, batch 1000, numpy", "per avatar-row") in cases
    assert any(b == "engines" and m == "bound on a skipped face's lag" for b, _, m in cases)


def test_quick_bench_measures_one_avatar_beside_the_naive_process(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    rows = {row["metric"]: row for row in parse_table(quick_run.stdout)
            if row["benchmark"] == "one_avatar" and row["case"] == ONE_AVATAR_CASE}
    cpu = rows["CPU"]
    assert cpu["bridge"] > 0 and cpu["baseline"] > 0  # both processes' ticks were counted
    assert rows["lateness p99"]["bridge"] >= 0
    assert rows["frames received"]["bridge"] > 0
    target = [line for line in quick_run.stdout.splitlines()
              if f"one avatar ({ONE_AVATAR_CASE})" in line]
    assert len(target) == 1
    assert "% of a core (<= 1)" in target[0] and "lateness p99" in target[0]
    floors = {row["case"]: row["bridge"] for row in parse_table(quick_run.stdout)
              if row["benchmark"] == "one_avatar" and row["case"].startswith("floor: ")}
    assert set(floors) == {f"floor: {floor.name}, 60 wakes/s" for floor in FLOORS}
    assert "this machine's floor beside it: asyncio loop + 3 sends" in quick_run.stdout


def test_grid_lateness_is_measured_from_the_most_punctual_frame_whatever_the_clock_rate() -> None:
    period_s = 1 / 60
    frames = np.arange(600)
    late_s = np.zeros(600)
    late_s[::50] = 0.003  # twelve frames 3 ms late
    late_s[120:180] += 0.001  # one whole chunk (second) 1 ms late: must not tilt the grid
    # Another clock: an offset and a rate 200 ppm off the sender's.
    received = 1.7e9 + (frames * period_s + 0.0004 + late_s) * (1 + 2e-4)
    shuffled = np.random.default_rng(0).permutation(600)  # datagrams may arrive out of order
    lateness = grid_lateness_s(received[shuffled], frames[shuffled], period_s, chunk_frames=60)
    assert lateness == pytest.approx(late_s[shuffled] * (1 + 2e-4), abs=1e-6)


def test_frame_counts_are_whole_and_clock_drift_adds_the_skips_back(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    rows = [row for row in parse_table(quick_run.stdout) if row["unit"] == "frames"]
    assert rows
    assert all(row["bridge"] == int(row["bridge"]) for row in rows)
    by_case: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["benchmark"] != "pacing":
            continue
        by_case.setdefault(row["case"], {})[row["metric"]] = row["bridge"]
    # The quick run's two pacing cases, and one avatar under each pacing mode.
    assert len(by_case) == 2 + len(PACING_MODES)
    for case, counts in by_case.items():
        # Clock drift adds the skipped deadlines back to the frames sent: exact integers.
        skipped = counts["skipped frames"]
        assert skipped >= 0, case
        assert counts["clock drift (sent + skipped - expected)"] == (
            counts["drift (sent - expected)"] + skipped
        ), case


def test_the_benchmark_references_build_the_encoders_bytes() -> None:
    # Otherwise the encoder speed-ups would compare different packets.
    frames = sample_frames(count=8, seed=3)
    for _label, factory, reference in PAIRS:
        check_identical(factory(), reference, frames)


def test_check_identical_names_the_first_differing_frame() -> None:
    frames = sample_frames(count=4, seed=1)
    _label, factory, reference = PAIRS[0]
    encode = factory()

    def off_by_one_byte(frame):  # type: ignore[no-untyped-def]
        packet = bytearray(reference(frame)[0])
        if frame.number == 2:
            packet[-1] ^= 1
        return [bytes(packet)]

    with pytest.raises(AssertionError, match="frame 2"):
        check_identical(encode, off_by_one_byte, frames)


def test_format_then_parse_gives_the_numbers_back() -> None:
    results = [
        Result("frame_cost", "1000 avatars, VMC, mlp", "per avatar-frame", 8.25, "µs", 630.0),
        Result("pacing", "60 fps, 1 avatar, mlp", "skipped frames", 0, "frames"),
    ]
    rows = parse_table("header line\n" + format_table(results) + "\ntrailer")
    assert [(r["benchmark"], r["bridge"], r["baseline"]) for r in rows] == [
        ("frame_cost", 8.25, 630.0),
        ("pacing", 0.0, None),
    ]
    assert rows[0]["ratio"] == pytest.approx(630.0 / 8.25, abs=0.05)
    assert rows[1]["ratio"] is None


def test_parse_rejects_a_row_with_missing_cells() -> None:
    with pytest.raises(ValueError, match="line 3: 3 cells"):
        parse_table(format_table([]) + "\n| a | b | c |")


def test_bench_rejects_an_unknown_benchmark_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        vadbridge_main(["bench", "--only", "nonsense"])
    assert exit_info.value.code == 2
    assert "nonsense" in capsys.readouterr().err



def test_bench_without_torch_runs_what_needs_no_torch() -> None:
    """The encoders need numpy alone: they run, and are measured, without torch."""
    result = run_cli_without_torch(["bench", "--quick", "--only", "encoders"])
    assert result.returncode == 0, result.stderr
    rows = parse_table(result.stdout)
    assert {row["case"] for row in rows} >= {"VMC bundle (52 Val + Apply + OK + T)",
                                              "Live Link v6 packet"}
    assert all(row["bridge"] > 0 for row in rows)


def test_bench_without_torch_skips_frame_cost_and_refuses_it_by_name() -> None:
    result = run_cli_without_torch(["bench", "--only", "frame_cost"])
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"vadbridge bench: error: frame_cost: {NEEDS_TORCH}\n"
    assert result.stdout == ""  # nothing measured
    assert "pip install 'vadbridge[train]'" in NEEDS_TORCH
