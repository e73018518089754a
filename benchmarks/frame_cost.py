"""Benchmark 1, per avatar-frame cost: the naive path vs the bridge's real frame path.

Naive (kept as the reference): per avatar, smooth a (3,) numpy state, torch ``predict`` on one
sample, ``enforce_symmetry``, build the packet with python-osc (or ``struct.pack`` for Live Link)
and ``sendto``. Bridge: ``Animator.step`` over the whole table (smoothing + one batched forward
for the rows that changed + symmetry), then ``Bridge.send_frame``: the avatars' outputs encoded
by one numpy write per ``UdpBatch`` and one ``send`` each, exactly as ``Bridge._frames`` does
(the *outputs one by one* rows: each ``UdpSink`` encoding its own frame, side by side, the
send before batching). Every avatar gets a new
target every frame, so every row is re-inferred (the steady state with live inputs). Both paths
send to the same loopback socket, drained between frames outside the timing.

The *gliding* rows (1,000 avatars, VMC): each avatar gets a new target every ``GLIDE_FRAMES``
frames, staggered, and glides between (the animator skips inference for rows whose smoothed
VAD moved less than ``SKIP_EPSILON`` since their last inference); measured with skipping on
and, side by side as the baseline, off.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import numpy as np

from vadbridge.benchmarks.encoders import (
    ReferenceBuilder,
    python_osc_per_shape,
    python_osc_vmc,
    struct_live_link,
)
from vadbridge.benchmarks.harness import DrainedReceiver, Models, Result
from vadbridge.benchmarks.scenario import (
    OUTPUT_KINDS,
    OUTPUT_LABELS,
    TAU_S,
    Scenario,
    build_scenario,
)
from vadbridge.core.animator import SKIP_EPSILON, Engine
from vadbridge.core.smoothing import smoothing_alpha
from vadbridge.core.types import Frame
from vadbridge.model.api import predict
from vadbridge.model.arkit import enforce_symmetry

AVATAR_COUNTS: tuple[int, ...] = (1, 10, 100, 1000)
REFERENCES: dict[str, ReferenceBuilder] = {
    "vmc": python_osc_vmc,
    "osc": python_osc_per_shape,
    "livelink": struct_live_link,
}
FRAME_DT_S = 1 / 60
QUICK_NAIVE_AVATARS = 20
GLIDE_FRAMES = 120  # a new target for each avatar every 2 s at 60 fps (an emotion label's pace)


def naive_frame_us(
    models: Models, avatars: int, kind: str, receiver: DrainedReceiver, frames: int
) -> float:
    """Median µs per avatar-frame of the naive path over ``frames`` frames of ``avatars``."""
    build = REFERENCES[kind]
    module = models.module
    if module is None:
        raise ValueError("the naive frame path runs the torch module: needs torch")
    alpha = smoothing_alpha(FRAME_DT_S, TAU_S)
    rng = np.random.default_rng(1)
    states = [np.zeros(3, dtype=np.float32) for _ in range(avatars)]
    address = ("127.0.0.1", receiver.port)
    per_frame = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for frame in range(frames + 1):  # frame 0 warms up
            targets = rng.uniform(-1.0, 1.0, (avatars, 3)).astype(np.float32)
            start = time.perf_counter()
            for state, target in zip(states, targets, strict=True):
                state += alpha * (target - state)
                weights = enforce_symmetry(predict(module, state))
                for datagram in build(Frame(weights, frame, frame * FRAME_DT_S)):
                    sock.sendto(datagram, address)
            if frame:
                per_frame.append(time.perf_counter() - start)
            receiver.drain()
    return float(np.median(per_frame)) / avatars * 1e6


def _time_frames(
    scenario: Scenario, send_frame: Callable[[int, float], None], receiver: DrainedReceiver,
    frames: int, avatars: int,
) -> tuple[float, float, float]:
    """Run ``frames`` frames (after one warm-up): new targets, ``Animator.step``, then
    ``send_frame(frame, time_s)``. Median µs per avatar-frame: (total, animate, encode + send)."""
    animate, send = [], []
    clock = time.perf_counter
    for frame in range(frames + 1):
        scenario.move_targets()
        start = clock()
        scenario.animator.step(FRAME_DT_S)
        animated = clock()
        send_frame(frame, frame * FRAME_DT_S)
        sent = clock()
        if frame:
            animate.append(animated - start)
            send.append(sent - animated)
        receiver.drain()
    total = np.add(animate, send)
    scale = 1e6 / avatars
    return (
        float(np.median(total)) * scale,
        float(np.median(animate)) * scale,
        float(np.median(send)) * scale,
    )


def bridge_frame_us(
    engine: Engine, avatars: int, kind: str, receiver: DrainedReceiver, frames: int,
    *, batched: bool = True,
) -> tuple[float, float, float]:
    """Median µs per avatar-frame of the real path: (total, animate, encode + send).

    ``batched`` False: every output encodes its own frame (``UdpSink.send`` per avatar, the
    daemon's send before outputs were batched), the batches' side-by-side reference."""
    scenario = build_scenario(engine, avatars, kind, receiver.port)
    faces = [(b.sink, Frame(scenario.table.weights[b.row])) for b in scenario.bindings]

    def send_one_by_one(frame: int, time_s: float) -> None:
        for sink, face in faces:
            face.number = frame
            face.time_s = time_s
            sink.send(face)

    try:
        # The frame loop's own send, or the reference.
        send_frame = scenario.bridge(60).send_frame if batched else send_one_by_one
        result = _time_frames(scenario, send_frame, receiver, frames, avatars)
        if scenario.send_errors():
            raise RuntimeError(f"{scenario.send_errors()} sends failed on loopback")
    finally:
        scenario.close()
    return result


def gliding_frame_us(
    engine: Engine, avatars: int, receiver: DrainedReceiver, frames: int, skip_epsilon: float
) -> tuple[float, float]:
    """(median µs per avatar-frame, fraction of avatar-frames inferred) of the real path with
    gliding avatars (see the module docstring), VMC."""
    scenario = build_scenario(engine, avatars, "vmc", receiver.port)
    scenario.animator.skip_epsilon = skip_epsilon
    table = scenario.table
    rng = np.random.default_rng(2)
    phase = np.arange(avatars) % GLIDE_FRAMES
    frame_counter = [0]

    def move_some() -> None:
        due = phase == frame_counter[0] % GLIDE_FRAMES
        table.target_vad[:avatars][due] = rng.uniform(-1.0, 1.0, (int(due.sum()), 3))
        table.target_dirty[:avatars] |= due
        frame_counter[0] += 1

    scenario.move_targets = move_some  # type: ignore[method-assign]
    try:
        for _ in range(GLIDE_FRAMES):  # into the steady state of staggered glides
            move_some()
            scenario.animator.step(FRAME_DT_S)
        send_frame = scenario.bridge(60).send_frame
        before = scenario.animator.inferred_rows
        total, _, _ = _time_frames(scenario, send_frame, receiver, frames, avatars)
        inferred = (scenario.animator.inferred_rows - before) / ((frames + 1) * avatars)
    finally:
        scenario.close()
    return total, inferred


def _frames_for(avatars: int, quick: bool, budget: int) -> int:
    return max(1 if quick else 3, min(200, budget // avatars))


def _parts(case: str, animate: float, send: float) -> list[Result]:
    return [
        Result("frame_cost", case, "part: animate (smooth+infer+sym)", animate, "µs"),
        Result("frame_cost", case, "part: encode + send", send, "µs"),
    ]


def _gliding_results(
    engine: Engine, avatars: int, receiver: DrainedReceiver, frames: int
) -> list[Result]:
    frames = max(frames, GLIDE_FRAMES)
    reference, reference_share = gliding_frame_us(engine, avatars, receiver, frames, 0.0)
    total, share = gliding_frame_us(engine, avatars, receiver, frames, SKIP_EPSILON)
    case = f"{avatars} avatars, VMC, mlp, gliding"
    return [
        Result("frame_cost", case, "per avatar-frame (skip vs no skip)", total, "µs", reference),
        Result("frame_cost", case, "inferred share, skip", share * 100, "%"),
        Result("frame_cost", case, "inferred share, no skip", reference_share * 100, "%"),
    ]


def run(
    models: Models,
    *,
    quick: bool,
    lut: Engine | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Result]:
    receiver = DrainedReceiver()
    results: list[Result] = []
    counts = AVATAR_COUNTS
    kinds = OUTPUT_KINDS
    try:
        for kind in kinds:
            for avatars in counts:
                progress(f"frame cost: {avatars} avatars, {kind}")
                # The naive path costs ~0.6 ms per avatar-frame whatever the count (nothing is
                # shared between avatars), so it gets fewer frames, and --quick caps its avatars.
                naive_avatars = min(avatars, QUICK_NAIVE_AVATARS) if quick else avatars
                naive_frames = _frames_for(naive_avatars, quick, 20 if quick else 400)
                naive = naive_frame_us(models, naive_avatars, kind, receiver, naive_frames)
                frames = _frames_for(avatars, quick, 500 if quick else 20_000)
                total, animate, send = bridge_frame_us(
                    models.engine, avatars, kind, receiver, frames
                )
                case = f"{avatars} avatars, {OUTPUT_LABELS[kind]}, mlp"
                results.append(Result("frame_cost", case, "per avatar-frame", total, "µs", naive))
                if avatars != counts[-1]:
                    continue
                results += _parts(case, animate, send)
                engines = [("mlp", models.engine)] + ([("lut", lut)] if lut is not None else [])
                for engine_name, engine in engines:
                    for batched in (True, False):
                        if engine_name == "mlp" and batched:
                            continue  # measured above
                        total, animate, send = bridge_frame_us(
                            engine, avatars, kind, receiver, frames, batched=batched
                        )
                        case = f"{avatars} avatars, {OUTPUT_LABELS[kind]}, {engine_name}" + (
                            "" if batched else ", outputs one by one"
                        )
                        results.append(
                            Result("frame_cost", case, "per avatar-frame", total, "µs", naive)
                        )
                        results += _parts(case, animate, send)
                if kind == "vmc":
                    results += _gliding_results(models.engine, avatars, receiver, frames)
    finally:
        receiver.close()
    return results
