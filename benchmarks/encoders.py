"""Benchmark 2, encoders alone: each output's ``encode`` vs building the same bytes naively.

The references are python-osc's ``OscMessageBuilder``/``OscBundleBuilder`` (the obvious way to
send VMC or OSC from Python) and, for Live Link, a per-frame ``struct.pack`` that reorders the
values through a name lookup. ``check_identical`` asserts both sides produce the same bytes
before anything is timed (tests/test_benchmarks.py runs it too): a faster encoder that sends
different packets would be no result at all.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from vadbridge.benchmarks.harness import Result
from vadbridge.config import LiveLinkOutputConfig
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, upper_camel
from vadbridge.outputs import LIVE_LINK_NAMES, LiveLinkEncoder, OscEncoder, VmcEncoder
from vadbridge.outputs.timecode import frame_time

ReferenceBuilder = Callable[[Frame], list[bytes]]
Encode = Callable[[Frame], Sequence[memoryview | bytes]]

_PERFECT_SYNC = [upper_camel(name) for name in ARKIT_NAMES]
_LIVE_LINK_SOURCE = {upper_camel(name): i for i, name in enumerate(ARKIT_NAMES)}


def _message(address: str, *args: tuple[str, str | int | float]) -> OscMessage:
    builder = OscMessageBuilder(address)
    for tag, value in args:
        builder.add_arg(value, tag)
    return builder.build()


def python_osc_vmc(frame: Frame) -> list[bytes]:
    """The VMC frame the way a python-osc user would build it (VmcEncoder's default layout)."""
    bundle = OscBundleBuilder(IMMEDIATELY)
    for name, value in zip(_PERFECT_SYNC, frame.weights.tolist(), strict=True):
        bundle.add_content(_message("/VMC/Ext/Blend/Val", ("s", name), ("f", value)))
    bundle.add_content(_message("/VMC/Ext/Blend/Apply"))
    bundle.add_content(_message("/VMC/Ext/OK", ("i", 1)))
    bundle.add_content(_message("/VMC/Ext/T", ("f", frame.time_s)))
    return [bundle.build().dgram]


def python_osc_per_shape(frame: Frame) -> list[bytes]:
    bundle = OscBundleBuilder(IMMEDIATELY)
    for name, value in zip(ARKIT_NAMES, frame.weights.tolist(), strict=True):
        bundle.add_content(_message(f"/blendshape/{name}", ("f", value)))
    return [bundle.build().dgram]


def python_osc_array(frame: Frame) -> list[bytes]:
    builder = OscMessageBuilder("/blendshape")
    for value in frame.weights.tolist():
        builder.add_arg(value, "f")
    return [builder.build().dgram]


def struct_live_link(frame: Frame) -> list[bytes]:
    """Live Link Face v6 packed per frame (LiveLinkEncoder's defaults: 60 fps, subject
    'vadbridge' and its derived device id; the clock pinned at midnight, so the timecode is
    ``time_s`` in frames)."""
    values = frame.weights.tolist()
    ordered = [values[_LIVE_LINK_SOURCE[name]] for name in LIVE_LINK_NAMES[:52]] + [0.0] * 9
    name = b"vadbridge"
    device = LiveLinkOutputConfig.default_device_id("vadbridge").encode()
    number, subframe = frame_time(frame.time_s, 60)
    layout = f">Bi{len(device)}si{len(name)}sifiiB61f"
    packet = struct.pack(
        layout, 6, len(device), device, len(name), name, number, subframe, 60, 1, 61, *ordered,
    )
    return [packet]


# (label, bridge encoder factory, reference builder)
PAIRS: tuple[tuple[str, Callable[[], Encode], ReferenceBuilder], ...] = (
    ("VMC bundle (52 Val + Apply + OK + T)", lambda: VmcEncoder().encode, python_osc_vmc),
    ("OSC per_shape bundle", lambda: OscEncoder("per_shape").encode, python_osc_per_shape),
    ("OSC array message", lambda: OscEncoder("array").encode, python_osc_array),
    ("Live Link v6 packet", lambda: LiveLinkEncoder(time_of_day=lambda: 0.0).encode,
     struct_live_link),
)


def sample_frames(count: int = 64, seed: int = 0) -> list[Frame]:
    weights = np.random.default_rng(seed).random((count, 52), dtype=np.float32)
    return [Frame(row, index, index / 60) for index, row in enumerate(weights)]


def check_identical(encode: Encode, reference: ReferenceBuilder, frames: list[Frame]) -> None:
    """Raise AssertionError naming the frame if ``encode`` and ``reference`` differ in any byte."""
    for frame in frames:
        ours = [bytes(d) for d in encode(frame)]
        if ours != reference(frame):
            raise AssertionError(f"frame {frame.number}: encoder bytes differ from the reference")


def _median_us(fn: Callable[[Frame], object], frames: list[Frame], calls: int) -> float:
    times = np.empty(calls)
    clock = time.perf_counter_ns
    for k in range(calls):
        frame = frames[k % len(frames)]
        start = clock()
        fn(frame)
        times[k] = clock() - start
    return float(np.median(times)) / 1e3


def run(*, quick: bool) -> list[Result]:
    frames = sample_frames()
    calls = 300 if quick else 3000
    results = []
    for label, factory, reference in PAIRS:
        encode = factory()
        check_identical(encode, reference, frames)
        # Alternate the two so drift on a shared machine hits both alike; keep each's best round.
        ours, theirs = [], []
        for _ in range(1 if quick else 3):
            ours.append(_median_us(encode, frames, calls))
            theirs.append(_median_us(reference, frames, calls))
        results.append(Result("encoders", label, "encode", min(ours), "µs", min(theirs)))
    return results
