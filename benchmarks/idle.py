"""Benchmark 5, idle cost: CPU time per second of the real daemon loop with converged avatars.

The avatars' states sit on their targets, so the animator skips inference; what is left is the
pacer (its sleep-then-spin tail) and, with outputs, one encode and one ``send`` per avatar per
frame (by default the daemon streams every frame, converged or not; with ``idle_refresh_hz``
an unchanged face is re-sent only at that rate). Measured as ``time.process_time()``
over wall time (1.0 = one core busy); the receiver is another process and is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from vadbridge.benchmarks.harness import ReceiverProcess, Result
from vadbridge.benchmarks.scenario import RecordingPacer, build_scenario
from vadbridge.core.animator import Engine

FRAME_RATE = 60.0


def idle_cpu_fraction(engine: Engine, avatars: int, *, outputs: bool, seconds: float,
                      idle_refresh_hz: float = 0.0) -> float:
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
    cases = ((1000, False, 0.0), (1000, True, 0.0), (1000, True, 2.0), (1, True, 0.0))
    for avatars, outputs, refresh_hz in cases:
        case = f"{avatars} converged avatar{'s' * (avatars > 1)}, 60 fps, " + (
            "one VMC output each" if outputs else "no outputs"
        ) + (f", idle_refresh_hz {refresh_hz:g}" if refresh_hz else "")
        fraction = idle_cpu_fraction(engine, avatars, outputs=outputs, seconds=seconds,
                                     idle_refresh_hz=refresh_hz)
        results.append(Result("idle", case, "CPU", fraction * 100, "% of a core"))
    return results
