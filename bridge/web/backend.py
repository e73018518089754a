"""The panel's narrow view of the bridge: ``PanelBackend``, and ``BridgeBackend`` over a running
``Bridge``.

The server (``server.ControlPanel``) sees only this interface: faces to read, counters, the
avatars, the tunable settings, ``tune`` and ``save``. Inputs from the page reach the bridge the
way every source's do, through the ``on_sample`` the bridge hands its sources. Everything here
reads the bridge's tables between two frames (the panel runs on the bridge's event loop) and
nothing here runs on the frame loop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from vadbridge.daemon import Bridge
from vadbridge.web.tuning import SaveOutcome, TuneOutcome, Tuner

__all__ = ["BridgeBackend", "Face", "PanelBackend"]

MAX_LISTED_OUTPUTS = 16  # a crowd has thousands of outputs: the page lists the first ones
# How long after its deadline a frame's work is surely done (0.1-1 ms for a few avatars): the
# panel's updates go out then, in the quiet stretch before the next deadline.
FRAME_WORK_S = 0.002


class Face(NamedTuple):
    """One avatar as the panel shows it: views into the bridge's tables, read at once."""

    weights: np.ndarray  # (52,): what the outputs were sent (liveliness included)
    vad: np.ndarray  # (3,): the smoothed VAD the face shows
    target: np.ndarray  # (3,): the VAD the inputs asked for


class PanelBackend(Protocol):
    frame_rate: float

    def avatars(self) -> Sequence[str]: ...

    def admits(self, avatar: str) -> bool: ...

    def face(self, avatar: str) -> Face | None: ...

    def stats(self) -> dict[str, Any]: ...

    def settings(self) -> dict[str, dict[str, Any]]: ...

    def seconds_to_slack(self, at_least_s: float) -> float: ...

    @property
    def save_target(self) -> str | None: ...

    async def tune(self, changes: Mapping[str, Mapping[str, Any]]) -> TuneOutcome: ...

    async def save(self) -> SaveOutcome: ...


class BridgeBackend:
    """``PanelBackend`` over ``bridge``, tuned and saved through ``tuner``."""

    def __init__(self, bridge: Bridge, tuner: Tuner) -> None:
        self.bridge = bridge
        self.tuner = tuner
        self.frame_rate = 1.0 / bridge.pacer.period_s
        self._save_lock = asyncio.Lock()

    def avatars(self) -> Sequence[str]:
        return self.bridge.table.ids

    def admits(self, avatar: str) -> bool:
        return self.bridge.table.admits(avatar)

    def face(self, avatar: str) -> Face | None:
        table = self.bridge.table
        row = table.index.get(avatar)
        if row is None:
            return None
        return Face(self.bridge.shown_weights[row], table.state_vad[row], table.target_vad[row])

    def stats(self) -> dict[str, Any]:
        """``Bridge.stats_snapshot()`` with the state of the inputs and outputs that have one
        (MQTT: connected or retrying) and each listed output's send errors."""
        bridge = self.bridge
        snapshot = bridge.stats_snapshot()
        errors = snapshot["send_errors"]
        snapshot["sources"] = [_described(source.name, source) for source in bridge.sources]
        sinks = bridge.sinks
        snapshot["outputs"] = [
            {**_described(sink.name, sink), "send_errors": errors.get(sink.name, 0)}
            for sink in sinks[:MAX_LISTED_OUTPUTS]
        ]
        snapshot["output_count"] = len(sinks)
        return snapshot

    def settings(self) -> dict[str, dict[str, Any]]:
        return self.tuner.settings()

    def seconds_to_slack(self, at_least_s: float) -> float:
        """How long to sleep to wake at least about ``at_least_s`` from now, just after a
        frame's work: the start of the frame loop's longest quiet stretch. Work done then (the
        panel's updates to every page) has a whole frame period before the next deadline,
        instead of landing on one by chance. Reads the pacer's schedule; changes nothing."""
        pacer = self.bridge.pacer
        if pacer.frame_index < 0:  # not started: no schedule yet
            return at_least_s
        now_s = pacer.clock()
        frame = math.ceil((now_s + at_least_s - FRAME_WORK_S - pacer.start_s) / pacer.period_s)
        return max(0.0, pacer.deadline(frame) + FRAME_WORK_S - now_s)

    @property
    def save_target(self) -> str | None:
        target = self.tuner.save_target
        return None if target is None else target.name

    async def tune(self, changes: Mapping[str, Mapping[str, Any]]) -> TuneOutcome:
        return await self.tuner.tune(changes)

    async def save(self) -> SaveOutcome:
        async with self._save_lock:  # one save at a time: backups are numbered in turn
            return await asyncio.to_thread(self.tuner.save)


def _described(name: str, part: object) -> dict[str, Any]:
    connected = getattr(part, "connected", None)
    state = None if connected is None else ("connected" if connected else "retrying")
    return {"name": name, "state": state}
