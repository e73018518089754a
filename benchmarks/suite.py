"""The benchmark suite behind ``vadbridge bench``: runs the chosen benchmarks, prints one table.

Defaults take under three minutes on a 2-core machine; ``quick`` shortens every benchmark to
a smoke run (seconds) whose numbers are indicative only. numpy's BLAS is pinned to one thread
first: the targets are per core (docs/performance.md says why it matters).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BENCHMARKS: tuple[str, ...] = (
    "encoders", "frame_cost", "engines", "pacing", "latency", "idle", "one_avatar",
)  # fmt: skip
# Their naive references run the torch module; the others need numpy alone.
NEEDS_TORCH: frozenset[str] = frozenset({"frame_cost", "one_avatar"})


def _progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def run_benchmarks(
    names: Sequence[str],
    *,
    quick: bool,
    realtime: bool = False,
    out: Callable[[str], None] = print,
    torch_module: bool = True,
) -> int:
    """Run ``names`` (in BENCHMARKS order); ``torch_module`` False: none of NEEDS_TORCH."""
    from vadbridge.benchmarks import (
        encoders,
        engines,
        frame_cost,
        idle,
        latency,
        one_avatar,
        pacing,
    )
    from vadbridge.benchmarks.harness import (
        Result,
        format_table,
        load_models,
        scratch_dir,
    )
    from vadbridge.benchmarks.targets import target_lines
    from vadbridge.model.lut import bake_lut
    from vadbridge.scheduling import limit_blas_threads, request_realtime

    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    if not torch_module and NEEDS_TORCH & set(names):
        raise ValueError(f"{sorted(NEEDS_TORCH & set(names))} need torch")
    pinned = limit_blas_threads(1)
    scheduling = "default scheduling"
    if realtime:
        scheduling = "SCHED_FIFO 10" if request_realtime() else "SCHED_FIFO refused"
    started = time.monotonic()
    results: list[Result] = []
    with scratch_dir() as workdir:
        models = load_models(workdir, torch_module=torch_module)
        lut = bake_lut(models.engine, 17 if quick else 33)
        out(
            f"vadbridge bench{' --quick' if quick else ''}: {platform.python_implementation()} "
            f"{platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.2f}, BLAS threads "
            f"{'pinned to 1' if pinned else 'not pinned'}, model {models.source}, "
            f"LUT {lut.size}^3, {scheduling}"
        )
        for name in BENCHMARKS:
            if name not in names:
                continue
            _progress(f"{name} ...")
            if name == "encoders":
                results += encoders.run(quick=quick)
            elif name == "frame_cost":
                results += frame_cost.run(models, quick=quick, lut=lut, progress=_progress)
            elif name == "engines":
                results += engines.run(models, quick=quick)
            elif name == "pacing":
                results += pacing.run(models.engine, lut, quick=quick, progress=_progress)
            elif name == "latency":
                results += latency.run(models, workdir, quick=quick)
            elif name == "idle":
                results += idle.run(models.engine, quick=quick)
            elif name == "one_avatar":
                results += one_avatar.run(quick=quick, progress=_progress)
            if name == "frame_cost":
                results += lut_error_results(lut, models, quick=quick)
    out(format_table(results))
    out("")
    for line in target_lines(results):
        out(line)
    out(f"# took {time.monotonic() - started:.0f} s")
    return 0


def lut_error_results(lut: Any, models: Any, *, quick: bool) -> list[Any]:
    from vadbridge.benchmarks.harness import Result
    from vadbridge.model.lut import interpolation_error

    error = interpolation_error(lut, models.engine, samples=2000 if quick else 20_000)
    case = f"LUT {lut.size}^3 vs MLP ({error.points} points)"
    return [
        Result("lut", case, "max abs error", error.max_abs, "weight"),
        Result("lut", case, "mean abs error", error.mean_abs, "weight"),
    ]
