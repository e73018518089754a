"""The issue's targets, checked against a run's results: one "met"/"missed" line each.

Only a summary for the reader; nothing asserts on timing (tests/test_benchmarks.py checks that
the lines are produced, not what they say).
"""

from __future__ import annotations

from collections.abc import Sequence

from vadbridge.benchmarks.harness import Result


def _find(results: Sequence[Result], benchmark: str, case_start: str, metric: str) -> Result | None:
    for result in results:
        if (
            result.benchmark == benchmark
            and result.case.startswith(case_start)
            and result.metric == metric
        ):
            return result
    return None


def _verdict(ok: bool) -> str:
    return "met   " if ok else "MISSED"


def target_lines(results: Sequence[Result]) -> list[str]:
    lines = ["targets (this run):"]
    for engine in ("mlp", "lut"):
        cost = _find(results, "frame_cost", f"1000 avatars, VMC, {engine}", "per avatar-frame")
        if cost is not None and cost.ratio is not None:
            ok = cost.value <= 10.0 and cost.ratio >= 60.0
            lines.append(
                f"  {_verdict(ok)} 1,000 avatars VMC ({engine}): {cost.value:.2f} µs/avatar-frame"
                f" (<= 10), {cost.ratio:.0f}x the naive path (>= 60x)"
            )
    for engine in ("mlp", "lut"):
        case = f"60 fps, 1000 avatars, {engine}"
        p99 = _find(results, "pacing", case, "lateness p99")
        skipped = _find(results, "pacing", case, "skipped frames")
        if p99 is not None and skipped is not None:
            ok = p99.value <= 2.0 and skipped.value == 0
            lines.append(
                f"  {_verdict(ok)} {case}: lateness p99 {p99.value:.3f} ms (<= 2), "
                f"skipped {skipped.value:.0f} (0)"
            )
    case = "60 fps, 1 avatar, mlp"
    p99 = _find(results, "pacing", case, "lateness p99")
    drift = _find(results, "pacing", case, "drift (sent - expected)")
    if p99 is not None and drift is not None:
        ok = p99.value <= 0.5 and drift.value == 0
        lines.append(
            f"  {_verdict(ok)} {case}: lateness p99 {p99.value:.3f} ms (<= 0.5), drift "
            f"{drift.value:.0f} frames (0); the 10-minute run: "
            "python -m vadbridge.benchmarks.pacing"
        )
    for result in results:
        if result.benchmark == "latency" and result.metric == "p99":
            budget = _find(results, "latency", result.case, "target: period + 1 ms")
            if budget is not None:
                lines.append(
                    f"  {_verdict(result.value <= budget.value)} latency {result.case}: p99 "
                    f"{result.value:.2f} ms (<= {budget.value:.2f})"
                )
    for result in results:
        if result.benchmark == "idle" and result.case.startswith("1000 converged"):
            lines.append(
                f"  {_verdict(result.value <= 5.0)} idle {result.case}: {result.value:.1f}% "
                "of a core (<= 5)"
            )
    if len(lines) == 1:
        lines.append("  (no target-bearing benchmark ran)")
    return lines
