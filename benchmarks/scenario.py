"""The bridge's real frame path for N avatars: table, animator, one UDP output per avatar.

Built from the daemon's own parts (``AvatarTable``, ``Animator``, ``UdpSink`` + encoders,
``Binding``, ``Bridge``), so a benchmark measures what ``vadbridge run`` does per frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vadbridge.config import LivelinessConfig
from vadbridge.core.animator import Animator, Engine
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.frame_loop import FramePacer
from vadbridge.core.stats import InputStats
from vadbridge.daemon import Binding, Bridge, LiveSettings
from vadbridge.outputs import LiveLinkEncoder, OscEncoder, VmcEncoder
from vadbridge.outputs.udp import UdpSink

OUTPUT_KINDS: tuple[str, ...] = ("vmc", "osc", "livelink")
OUTPUT_LABELS = {"vmc": "VMC", "osc": "OSC per_shape", "livelink": "Live Link"}
TAU_S = 0.15  # config/default.yaml's smoothing.tau_ms


def make_encoder(kind: str) -> VmcEncoder | OscEncoder | LiveLinkEncoder:
    if kind == "vmc":
        return VmcEncoder()
    if kind == "osc":
        return OscEncoder("per_shape")
    if kind == "livelink":
        return LiveLinkEncoder()
    raise ValueError(f"output kind must be one of {OUTPUT_KINDS}, got {kind!r}")


@dataclass
class Scenario:
    table: AvatarTable
    animator: Animator
    bindings: list[Binding]
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def move_targets(self) -> None:
        """New targets for every avatar: steady state with inputs every frame (all rows change)."""
        count = len(self.table)
        self.table.target_vad[:count] = self.rng.uniform(-1.0, 1.0, (count, 3))
        self.table.target_dirty[:count] = True

    def converge(self, max_frames: int = 10_000) -> int:
        """Step until no avatar changes any more; returns the frames it took."""
        for frame in range(max_frames):
            self.animator.step(1 / 60)
            if not self.animator.changed.any():
                return frame
        raise RuntimeError(f"avatars did not converge within {max_frames} frames")

    def bridge(self, frame_rate: float,
               idle_refresh_hz: float | Literal["auto"] = "auto") -> Bridge:
        """The real daemon over this table (no sources: benchmarks move targets themselves)."""
        return Bridge(
            table=self.table,
            animator=self.animator,
            sources=[],
            bindings=self.bindings,
            frame_rate=frame_rate,
            input_stats=InputStats(),
            settings=LiveSettings(tau_s=self.animator.tau_s, space=self.animator.space,
                                  idle_timeout_s=0.0, idle_refresh_hz=idle_refresh_hz,
                                  stats_interval_s=0.0, liveliness=LivelinessConfig()),
        )

    def sent_frames(self) -> int:
        return sum(getattr(b.sink, "frames_sent", 0) for b in self.bindings)

    def send_errors(self) -> int:
        return sum(b.sink.send_errors for b in self.bindings)

    def close(self) -> None:
        for binding in self.bindings:
            binding.sink.close()


def build_scenario(
    engine: Engine, avatars: int, kind: str, port: int, *, tau_s: float = TAU_S
) -> Scenario:
    """``avatars`` avatars, each streamed by its own ``UdpSink`` to 127.0.0.1:``port``."""
    table = AvatarTable(avatars, initial_ids=[f"avatar{i}" for i in range(avatars)])
    animator = Animator(table, engine, tau_s=tau_s)
    bindings = [
        Binding(UdpSink(make_encoder(kind), "127.0.0.1", port, name=f"{kind}{i}"), i)
        for i in range(avatars)
    ]
    return Scenario(table, animator, bindings)


@dataclass
class RecordingPacer(FramePacer):
    """The real ``FramePacer`` that also records each frame's lateness and work time.

    ``on_tick`` runs right after a frame is handed out (before the daemon's frame work): the
    benchmarks use it to feed new targets, as inputs arriving every frame would.
    """

    on_tick: Callable[[], None] | None = None
    lateness_s: list[float] = field(default_factory=list)
    work_s: list[float] = field(default_factory=list)
    first_wall_s: float = 0.0
    last_wall_s: float = 0.0
    _handed_out_at: float = 0.0

    async def next_frame(self) -> int:
        if self._handed_out_at:
            self.work_s.append(self.clock() - self._handed_out_at)
        frame = await super().next_frame()
        now = self.clock()
        self.lateness_s.append(now - self.deadline(frame))
        self.last_wall_s = time.monotonic()
        if frame == 0:
            self.first_wall_s = self.last_wall_s
        if self.on_tick is not None:
            self.on_tick()
        self._handed_out_at = self.clock()
        return frame
