"""Benchmark 3, pacing: the real daemon loop (``Bridge`` + ``FramePacer``) for a fixed time.

Lateness is how long after its deadline ``t0 + k * period`` a frame was handed to the frame work
(the sends follow after the work); skipped frames are deadlines the pacer jumped over after an
overrun; drift compares frames sent with the frames a wall clock says were due (clock drift
adds the skipped frames back: 0 means the schedule itself never slipped, only stalls cost
frames). Inputs arrive every frame for every avatar (all rows re-inferred); outputs go to a
receiver process.

The single-avatar case also runs under each of the pacer's modes (``PACING_MODES``: event-loop
sleep alone, + nanosleep tail, + 0.2 ms spin, and the kernel timer, the default), labelled
``pacer <mode>``, to compare lateness with CPU.

Also runnable alone for the long soak run (not part of ``vadbridge bench``):
``python -m vadbridge.benchmarks.pacing --fps 60 --avatars 1 --seconds 600 [--realtime]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from vadbridge.benchmarks.harness import ReceiverProcess, Result, percentile
from vadbridge.benchmarks.scenario import RecordingPacer, build_scenario
from vadbridge.core.animator import Engine
from vadbridge.core.frame_loop import PACING_MODES
from vadbridge.scheduling import freeze_startup_objects


@dataclass(frozen=True)
class PacingRun:
    fps: float
    avatars: int
    engine: str
    seconds: float
    frames: int
    skipped: int
    expected: int
    lateness_ms: tuple[float, float, float]  # p50, p99, max
    work_ms: tuple[float, float]  # p50, p99
    cpu_fraction: float  # process CPU time over wall time (1.0 = one core busy)
    send_errors: int
    mode: str | None = None  # a PACING_MODES name when not the daemon's default pacer

    @property
    def drift_frames(self) -> int:
        return self.frames - self.expected

    def results(self) -> list[Result]:
        case = f"{self.fps:g} fps, {self.avatars} avatar{'s' * (self.avatars > 1)}, {self.engine}"
        if self.mode is not None:
            case += f", pacer {self.mode}"
        p50, p99, worst = self.lateness_ms
        return [
            Result("pacing", case, "lateness p50", p50, "ms"),
            Result("pacing", case, "lateness p99", p99, "ms"),
            Result("pacing", case, "lateness max", worst, "ms"),
            Result("pacing", case, "frame work p99", self.work_ms[1], "ms"),
            Result("pacing", case, "skipped frames", self.skipped, "frames"),
            Result("pacing", case, "drift (sent - expected)", self.drift_frames, "frames"),
            Result(
                "pacing",
                case,
                "clock drift (sent + skipped - expected)",
                self.drift_frames + self.skipped,
                "frames",
            ),
            Result("pacing", case, "CPU", self.cpu_fraction * 100, "% of a core"),
        ]


def run_pacing(
    engine: Engine, *, fps: float, avatars: int, seconds: float, engine_name: str = "mlp",
    mode: str | None = None,
) -> PacingRun:
    """``mode``: one of PACING_MODES, or None for the daemon's default pacer."""
    receiver = ReceiverProcess()
    scenario = build_scenario(engine, avatars, "vmc", receiver.port)
    try:
        bridge = scenario.bridge(fps)
        pacer = RecordingPacer(1.0 / fps, on_tick=scenario.move_targets)
        if mode is not None:
            pacer.set_mode(mode)
        bridge.pacer = pacer
        freeze_startup_objects()  # as `vadbridge run` does before its frame loop
        cpu_start = time.process_time()
        wall_start = time.monotonic()
        with contextlib.suppress(TimeoutError):
            asyncio.run(asyncio.wait_for(bridge.run(), seconds))
        cpu = (time.process_time() - cpu_start) / (time.monotonic() - wall_start)
        elapsed = pacer.last_wall_s - pacer.first_wall_s
        return PacingRun(
            fps=fps,
            avatars=avatars,
            engine=engine_name,
            seconds=seconds,
            frames=pacer.stats.frames,
            skipped=pacer.stats.skipped,
            expected=math.floor(elapsed * fps + 0.5) + 1,
            lateness_ms=(
                percentile(pacer.lateness_s, 50) * 1e3,
                percentile(pacer.lateness_s, 99) * 1e3,
                max(pacer.lateness_s) * 1e3,
            ),
            work_ms=(percentile(pacer.work_s, 50) * 1e3, percentile(pacer.work_s, 99) * 1e3),
            cpu_fraction=cpu,
            send_errors=scenario.send_errors(),
            mode=mode,
        )
    finally:
        scenario.close()
        receiver.close()


def run(
    engine: Engine,
    lut: Engine,
    *,
    quick: bool,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Result]:
    """60 and 240 fps with 1 and 1,000 avatars (MLP), and 1,000 avatars with the LUT engine;
    then one avatar at 60 fps under each pacing mode."""
    seconds = 1.0 if quick else 10.0
    cases = (
        [(60, 1, "mlp"), (60, 1000, "lut")]
        if quick
        else [
            (fps, avatars, name)
            for avatars, name in ((1, "mlp"), (1000, "mlp"), (1000, "lut"))
            for fps in (60, 240)
        ]
    )
    results = []
    for fps, avatars, name in cases:
        progress(f"pacing: {fps} fps, {avatars} avatars, {name}, {seconds:g} s")
        chosen = lut if name == "lut" else engine
        run = run_pacing(chosen, fps=fps, avatars=avatars, seconds=seconds, engine_name=name)
        results += run.results()
    for mode in PACING_MODES:
        progress(f"pacing: 60 fps, 1 avatar, pacer {mode}, {seconds:g} s")
        run = run_pacing(engine, fps=60, avatars=1, seconds=seconds, mode=mode)
        results += run.results()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--avatars", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--engine", choices=("mlp", "lut"), default="mlp")
    parser.add_argument("--realtime", action="store_true", help="run under SCHED_FIFO 10")
    parser.add_argument("--mode", choices=tuple(PACING_MODES), default=None,
                        help="pace with this mode instead of the daemon's default")
    args = parser.parse_args()
    from vadbridge.benchmarks.harness import (
        format_table,
        load_models,
        scratch_dir,
    )
    from vadbridge.scheduling import limit_blas_threads, request_realtime

    limit_blas_threads(1)
    if args.realtime and not request_realtime():
        parser.error("SCHED_FIFO was refused (needs root or CAP_SYS_NICE)")
    with scratch_dir() as workdir:
        models = load_models(workdir)
        engine: Engine = models.engine
        if args.engine == "lut":
            from vadbridge.model.lut import bake_lut

            engine = bake_lut(models.engine)
        run = run_pacing(
            engine, fps=args.fps, avatars=args.avatars, seconds=args.seconds,
            engine_name=args.engine, mode=args.mode,
        )  # fmt: skip
    print(f"model: {models.source}; frames {run.frames}, expected {run.expected}")
    print(format_table(run.results()))


if __name__ == "__main__":
    main()
