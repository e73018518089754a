"""Benchmark 5, idle cost: CPU time per second of the real daemon loop with converged avatars.

The avatars' states sit on their targets, so the animator does nothing; what is left is the
pacer and, with outputs, the refreshes: by default (``idle_refresh_hz: auto``) an unchanged
face is re-sent at its output's rate (VMC 2 Hz), spread over the period by row; the *every
frame* row (``idle_refresh_hz: 0``) sends every output every frame, converged or not.
Measured as ``time.process_time()`` over wall time (1.0 = one core busy); the receiver is
another process and is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

from vadbridge.benchmarks.harness import ReceiverProcess, Result
from vadbridge.benchmarks.scenario import RecordingPacer, build_scenario
from vadbridge.core.animator import Engine

FRAME_RATE = 60.0


def idle_cpu_fraction(engine: Engine, avatars: int, *, outputs: bool, seconds: float,
                      idle_refresh_hz: float | Literal["auto"] = "auto") -> float:
    receiver = ReceiverProcess()
    scenario = build_scenario(engine, avatars, "vmc", receiver.port)
    try:
        scenario.move_targets()
        scenario.converge()
        if not outputs:
            scenario.close()
            scenario.bindings.clear()
        bridge = scenario.bridge(FRAME_RATE, idle_refresh_hz)
        bridge.pacer = RecordingPacer(1.0 / FRAME_RATE)
        inferred_before = scenario.animator.inferred_rows
        cpu_start, wall_start = time.process_time(), time.monotonic()
        with contextlib.suppress(TimeoutError):
            asyncio.run(asyncio.wait_for(bridge.run(), seconds))
        fraction = (time.process_time() - cpu_start) / (time.monotonic() - wall_start)
        if scenario.animator.inferred_rows != inferred_before:
            raise RuntimeError("converged avatars were re-inferred: the idle path is not idle")
        return fraction
    finally:
        scenario.close()
        receiver.close()


def run(engine: Engine, *, quick: bool) -> list[Result]:
    seconds = 0.5 if quick else 5.0
    results = []
    cases: tuple[tuple[int, bool, float | Literal["auto"]], ...] = (
        (1000, False, "auto"), (1000, True, "auto"), (1000, True, 0.0), (1, True, "auto"))
    for avatars, outputs, refresh_hz in cases:
        case = f"{avatars} converged avatar{'s' * (avatars > 1)}, 60 fps, " + (
            "one VMC output each" if outputs else "no outputs"
        ) + ("" if refresh_hz == "auto" else ", every frame (idle_refresh_hz 0)")
        fraction = idle_cpu_fraction(engine, avatars, outputs=outputs, seconds=seconds,
                                     idle_refresh_hz=refresh_hz)
        results.append(Result("idle", case, "CPU", fraction * 100, "% of a core"))
    return results
