"""An output's own task failing (a bug, not a network error) stops the bridge loudly."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.stats import InputStats
from vadbridge.daemon import Binding, Bridge, OutputTaskError
from vadbridge.model.api import load_model


class BrokenPublisherSink:
    """A fault injector: an output whose background task dies after a few frames."""

    name = "broken publisher"
    send_errors = 0

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.closed = False

    def send(self, weights: np.ndarray, frame_number: int, time_s: float) -> None:
        self.frames.append(weights.copy())

    def close(self) -> None:
        self.closed = True

    async def run(self) -> None:
        while len(self.frames) < 3:
            await asyncio.sleep(0.005)
        raise RuntimeError("publisher bug")


def test_a_failing_output_task_ends_the_bridge_with_neutral_frames() -> None:
    table = AvatarTable(2, initial_ids=["default"])
    sink = BrokenPublisherSink()
    bridge = Bridge(
        table=table, animator=Animator(table, load_model()[0], tau_s=0.1), sources=[],
        bindings=[Binding(sink, 0)], frame_rate=60, input_stats=InputStats(),
        stats_interval_s=0,
    )
    with pytest.raises(OutputTaskError, match="publisher bug"):
        asyncio.run(asyncio.wait_for(bridge.run(), 10))
    assert len(sink.frames) >= 4
    assert not sink.frames[-1].any()  # the last frame is the neutral face
    assert sink.closed
