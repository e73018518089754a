"""The daemon's thin async shell: sources feed the avatar table, the frame loop animates and sends.

Everything that computes lives elsewhere (animator, encoders, parsers); this module owns only
tasks, time and shutdown. Shutdown is a feature: cancelling ``Bridge.run`` sends one neutral
(all-zero) frame to every output before the sockets close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarLimitError, AvatarTable
from vadbridge.core.frame_loop import FramePacer
from vadbridge.core.liveliness import Liveliness
from vadbridge.core.stats import InputStats
from vadbridge.core.types import VadSample
from vadbridge.model.arkit import NUM_BLENDSHAPES, symmetrize_inplace

log = logging.getLogger("vadbridge")


class Source(Protocol):
    name: str

    async def run(self, on_sample: Callable[[VadSample], None]) -> None: ...


class Sink(Protocol):
    """An output. A sink that needs a task of its own (e.g. an MQTT publisher) also has
    ``async def run()``; the daemon runs it beside the frame loop and, at shutdown, awaits it
    (up to SINK_DRAIN_TIMEOUT_S) after ``close()`` so the neutral frame still goes out."""

    name: str
    send_errors: int

    def send(self, weights: np.ndarray, frame_number: int, time_s: float) -> None: ...

    def close(self) -> None: ...


SINK_DRAIN_TIMEOUT_S = 0.5
NEUTRAL_FACE = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)


class OutputTaskError(Exception):
    """An output's own task (such as the MQTT publisher) failed with an unexpected error."""
STATS_OFF_POLL_S = 1.0


@dataclass(frozen=True)
class Binding:
    """One output streaming one avatar's row of the table; ``config`` is the output's config
    entry it was built from (a reload keeps the bindings whose entry did not change)."""

    sink: Sink
    row: int
    config: Any = None


def retire(bindings: Sequence[Binding], frame_number: int, time_s: float) -> None:
    """Send each binding one neutral (all-zero) frame, then close its sink (once per sink).

    What every receiver gets when the bridge stops feeding it (shutdown, or a reload that
    removes the output): the face returns to rest instead of freezing mid-expression.
    """
    for binding in bindings:
        binding.sink.send(NEUTRAL_FACE, frame_number, time_s)
    for sink in {id(b.sink): b.sink for b in bindings}.values():
        sink.close()


class Bridge:
    def __init__(
        self,
        *,
        table: AvatarTable,
        animator: Animator,
        sources: Sequence[Source],
        bindings: Sequence[Binding],
        frame_rate: float,
        input_stats: InputStats,
        idle_timeout_s: float = 0.0,
        idle_refresh_hz: float = 0.0,
        stats_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        liveliness: Liveliness | None = None,
    ) -> None:
        self.table = table
        self.animator = animator
        self.sources = list(sources)
        self.bindings = list(bindings)
        self.input_stats = input_stats
        self.idle_timeout_s = idle_timeout_s
        self.stats_interval_s = stats_interval_s
        self.clock = clock
        self.pacer = FramePacer(1.0 / frame_rate)
        self.idle_refresh_frames = 0
        self.set_idle_refresh(idle_refresh_hz)
        self._last_sent_frame = np.full(table.capacity, -(1 << 30), dtype=np.int64)
        self._by_row: dict[int, list[Sink]] = {}
        self._by_row_source: list[Binding] | None = None
        self.liveliness = liveliness
        # Liveliness works on a copy: table.weights stays the model's output, which the
        # animator only rewrites for rows whose input changed.
        self._lively_weights = np.zeros_like(table.weights) if liveliness is not None else None
        self.started = asyncio.Event()
        self.stopping = False  # set once shutdown began: a late reload must not swap outputs
        self._output_task_failure: BaseException | None = None

    def set_idle_refresh(self, idle_refresh_hz: float) -> None:
        """Unchanged faces are re-sent every ``idle_refresh_frames`` frames (0 = every frame)."""
        frame_rate = 1.0 / self.pacer.period_s
        self.idle_refresh_frames = (
            max(1, round(frame_rate / idle_refresh_hz)) if idle_refresh_hz > 0 else 0
        )

    def on_sample(self, sample: VadSample) -> None:
        try:
            row = self.table.row(sample.avatar)
        except AvatarLimitError as error:
            self.input_stats.reject("avatar.limit", str(error))
            return
        self.table.set_target(row, sample.vad, self.clock())

    async def run(self) -> None:
        """Run until cancelled (SIGINT/SIGTERM cancel it), then send neutral and close.

        Raises OutputTaskError if an output's own task (e.g. the MQTT publisher) failed: that
        tears the bridge down like a failing source, instead of an output dying silently.
        """
        main = asyncio.current_task()
        sink_tasks = [
            asyncio.create_task(run(), name=f"sink {sink.name}")
            for sink in self.sinks
            if (run := getattr(sink, "run", None)) is not None
        ]

        def on_sink_task_done(task: asyncio.Task[Any]) -> None:
            if task.cancelled() or task.exception() is None or self.stopping:
                return
            self._output_task_failure = task.exception()
            if main is not None:
                main.cancel()

        for task in sink_tasks:
            task.add_done_callback(on_sink_task_done)
        try:
            async with asyncio.TaskGroup() as tasks:
                for source in self.sources:
                    tasks.create_task(source.run(self.on_sample), name=f"source {source.name}")
                tasks.create_task(self._frames(), name="frames")
                # Always running: a SIGHUP reload may turn stats lines on (bridge/reload.py).
                tasks.create_task(self._stats_lines(), name="stats")
        finally:
            self.stopping = True
            retire(self.bindings, self.pacer.frame_index + 1, self.pacer.time_s)
            if sink_tasks:
                _, pending = await asyncio.wait(sink_tasks, timeout=SINK_DRAIN_TIMEOUT_S)
                for task in pending:
                    task.cancel()
            if self._output_task_failure is not None:
                failure = self._output_task_failure
                raise OutputTaskError(f"an output task failed: {failure!r}") from failure

    @property
    def sinks(self) -> list[Sink]:
        """Each output once (several bindings may share one sink)."""
        return list({id(b.sink): b.sink for b in self.bindings}.values())

    async def _frames(self) -> None:
        pacer = self.pacer
        table = self.table
        previous_frame = 0
        self.started.set()
        while True:
            frame = await pacer.next_frame()
            if self.idle_timeout_s > 0:
                table.release_idle(self.clock(), self.idle_timeout_s)
            self.animator.step((frame - previous_frame) * pacer.period_s)
            previous_frame = frame
            time_s = pacer.time_s
            if self._lively_weights is not None:  # a lively face changes every frame
                weights = self._lively(time_s)
            else:
                weights = table.weights
                if self.idle_refresh_frames:
                    self._send_due_rows(frame, time_s)
                    continue
            for binding in self.bindings:
                binding.sink.send(weights[binding.row], frame, time_s)

    def _send_due_rows(self, frame: int, time_s: float) -> None:
        """Send the faces that changed this frame, and the others once per refresh period."""
        count = len(self.table)
        last_sent = self._last_sent_frame[:count]
        due = self.animator.changed | (frame - last_sent >= self.idle_refresh_frames)
        last_sent[due] = frame
        by_row = self._bindings_by_row()
        weights = self.table.weights
        for row in np.flatnonzero(due).tolist():
            for sink in by_row.get(row, ()):
                sink.send(weights[row], frame, time_s)

    def _bindings_by_row(self) -> dict[int, list[Sink]]:
        """Row -> its sinks, rebuilt when a reload replaces the bindings list."""
        if self._by_row_source is not self.bindings:
            by_row: dict[int, list[Sink]] = {}
            for binding in self.bindings:
                by_row.setdefault(binding.row, []).append(binding.sink)
            self._by_row, self._by_row_source = by_row, self.bindings
        return self._by_row

    def _lively(self, time_s: float) -> np.ndarray:
        """The animator's weights plus blinks and breathing, symmetrised again after them."""
        assert self.liveliness is not None and self._lively_weights is not None
        out = self._lively_weights[: len(self.table)]
        np.copyto(out, self.table.weights[: len(self.table)])
        self.liveliness.apply(out, time_s)
        if self.animator.symmetry:
            symmetrize_inplace(out)
        return self._lively_weights

    def close_outputs(self) -> None:
        for sink in self.sinks:
            sink.close()

    def stats_snapshot(self) -> dict[str, Any]:
        pacing = self.pacer.stats.snapshot()
        return {
            **pacing,
            "avatars": len(self.table),
            "inferred_rows": self.animator.inferred_rows,
            "inputs": self.input_stats.snapshot(),
            "send_errors": self._send_errors_by_destination(),
        }

    def _send_errors_by_destination(self) -> dict[str, int]:
        """Send errors per output name (outputs to the same destination add up)."""
        errors: dict[str, int] = {}
        for sink in self.sinks:
            errors[sink.name] = errors.get(sink.name, 0) + sink.send_errors
        return errors

    async def _stats_lines(self) -> None:
        last_frames = 0
        last_time = time.monotonic()
        while True:
            if self.stats_interval_s <= 0:  # off; a reload may change that, so look again later
                await asyncio.sleep(STATS_OFF_POLL_S)
                last_frames, last_time = self.pacer.stats.frames, time.monotonic()
                continue
            await asyncio.sleep(self.stats_interval_s)
            now = time.monotonic()
            snapshot = self.stats_snapshot()
            fps = (snapshot["frames"] - last_frames) / (now - last_time)
            last_frames, last_time = snapshot["frames"], now
            log.info("%s", format_stats_line(snapshot, fps))


def format_stats_line(snapshot: dict[str, Any], fps: float, *, max_outputs: int = 5) -> str:
    """One readable line from ``Bridge.stats_snapshot()``: zero counters are left out, and
    only the first few failing outputs are named (a crowd has thousands of outputs)."""

    def counts(mapping: dict[str, int]) -> str:
        shown = [f"{key}={value}" for key, value in sorted(mapping.items()) if value]
        return " ".join(shown) if shown else "0"

    inputs = snapshot["inputs"]
    failing = {name: n for name, n in snapshot["send_errors"].items() if n}
    named = dict(sorted(failing.items(), key=lambda item: -item[1])[:max_outputs])
    errors = counts(named) + (f" (+{len(failing) - len(named)} more outputs)"
                              if len(failing) > len(named) else "")
    return (
        f"stats: {fps:.1f} fps, late {snapshot['late']}, skipped {snapshot['skipped']}, "
        f"avatars {snapshot['avatars']}; inputs accepted {counts(inputs['accepted'])}, "
        f"rejected {counts(inputs['rejected'])}, clipped {counts(inputs['clipped'])}; "
        f"send errors {errors}"
    )
