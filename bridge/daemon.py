"""The daemon's thin async shell: sources feed the avatar table, the frame loop animates and sends.

Everything that computes lives elsewhere (animator, encoders, parsers); this module owns only
tasks, time and shutdown. Shutdown is a feature: cancelling ``Bridge.run`` sends one neutral
(all-zero) frame to every output before the sockets close.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol, cast

import numpy as np

from vadbridge.config import DEFAULT_PACING_MODE, LivelinessConfig, SmoothingSpace
from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarLimitError, AvatarTable
from vadbridge.core.frame_loop import FramePacer
from vadbridge.core.liveliness import Liveliness
from vadbridge.core.refresh import RefreshSchedule, is_due, next_refresh, refresh_frames
from vadbridge.core.smoothing import TimeConstants
from vadbridge.core.stats import (
    DEFAULT_LOG_INTERVAL_S,
    InputStats,
    format_stats_line,
    interval_counts,
)
from vadbridge.core.types import Frame, VadSample
from vadbridge.model.arkit import LEFT_INDICES, NUM_BLENDSHAPES, symmetrize_inplace
from vadbridge.outputs.batch import UdpBatch, batch_bindings

log = logging.getLogger("vadbridge")


class Source(Protocol):
    """An input. ``kind`` is the name it counts its inputs under in the stats (``osc``,
    ``mqtt``, ``web``)."""

    name: str
    kind: str

    async def run(self, on_sample: Callable[[VadSample], None]) -> None: ...


class Sink(Protocol):
    """An output. A sink that needs a task of its own (e.g. an MQTT publisher) also has
    ``async def run()``; the bridge runs it beside the frame loop, supervised (its failure
    stops the bridge), and at shutdown awaits it (up to SINK_DRAIN_TIMEOUT_S) after
    ``close()`` so the neutral frame still goes out. A sink may have ``auto_refresh_hz``: how
    often its receivers need an unchanged face under ``idle_refresh_hz: auto`` (absent = every
    frame)."""

    name: str
    send_errors: int

    def send(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


SINK_DRAIN_TIMEOUT_S = 0.5
# The longest the frame loop rests with nothing to do (it wakes at once for an input or a reload).
MAX_REST_S = 1.0
STATS_OFF_POLL_S = 1.0


class OutputTaskError(Exception):
    """An output's own task (such as the MQTT publisher) failed with an unexpected error."""


@dataclass(frozen=True)
class Binding:
    """One output streaming one avatar's row of the table; ``config`` is the output's config
    entry it was built from (a reload keeps the bindings whose entry did not change)."""

    sink: Sink
    row: int
    config: Any = None


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """What a running bridge changes without a restart (a SIGHUP reload sets them); built from
    the config by ``wiring.live_settings``, whose values and defaults are the config's."""

    tau_s: float | TimeConstants  # attack = release everywhere, or per direction and region
    space: SmoothingSpace
    idle_timeout_s: float
    idle_refresh_hz: float | Literal["auto"]  # auto: each output's own (``auto_refresh_hz``)
    stats_interval_s: float  # 0 = no stats lines
    liveliness: LivelinessConfig  # blinks and breathing (off: frames go out without a copy)


def retire(bindings: Sequence[Binding], frame_number: int, time_s: float) -> None:
    """Send each binding one neutral frame (zero weights, zero VAD), then close its sink (once
    per sink).

    What every receiver gets when the bridge stops feeding it (shutdown, or a reload that
    removes the output): the face returns to rest instead of freezing mid-expression.
    """
    neutral = Frame(np.zeros(NUM_BLENDSHAPES, dtype=np.float32), frame_number, time_s)
    for binding in bindings:
        binding.sink.send(neutral)
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
        settings: LiveSettings,
        clock: Callable[[], float] = time.monotonic,
        pacing: str = DEFAULT_PACING_MODE,
    ) -> None:
        self.table = table
        self.animator = animator
        self.sources = list(sources)
        self.input_stats = input_stats
        self.clock = clock
        self.pacer = FramePacer(1.0 / frame_rate, mode=pacing)
        # Idle refresh (core/refresh.py): rows whose face changed this frame, and rows to send
        # next frame whatever changed (a new output's).
        self._changed_rows = np.zeros(table.capacity, dtype=bool)
        self._send_next = np.zeros(table.capacity, dtype=bool)
        self.liveliness: Liveliness | None = None  # built from the settings (_set_liveliness)
        self._liveliness_config: LivelinessConfig | None = None
        self._lively_weights: np.ndarray | None = None
        # Symmetry's pair halves for the lively faces (sized with them): no array per frame.
        self._lively_left: np.ndarray | None = None
        self._lively_right: np.ndarray | None = None
        self._sent_weights = table.weights
        # One Frame per bound row, its arrays views into the tables: sending allocates nothing.
        self._faces: dict[int, Frame] = {}
        self.bindings: list[Binding] = []
        # UDP outputs go in batches (outputs.batch); the others one by one, with their faces;
        # each with its refresh schedule (built from the bindings and the settings).
        self._batches: list[UdpBatch] = []
        self._singles: list[Binding] = []
        self._batch_schedules: list[tuple[UdpBatch, RefreshSchedule]] = []
        self._single_schedules: list[tuple[Sink, Frame, int, int]] = []
        self._apply_settings(settings)
        self._set_bindings(bindings)
        self.started = asyncio.Event()
        self.stopping = False  # set once shutdown began: a late reload must not swap outputs
        self._main_task: asyncio.Task[Any] | None = None
        self._output_tasks: set[asyncio.Task[None]] = set()
        self._output_task_failure: tuple[str, BaseException] | None = None

    def _face(self, row: int) -> Frame:
        face = self._faces.get(row)
        if face is None:
            face = Frame(self._sent_weights[row], vad=self.table.state_vad[row])
            self._faces[row] = face
        return face

    def _set_bindings(self, bindings: Sequence[Binding]) -> None:
        """Bind the outputs: UDP outputs whose packets share a shape in one ``UdpBatch`` each
        (one numpy write encodes them all), every other output sent its ``Frame``."""
        self.bindings = list(bindings)
        self._batches, alone = batch_bindings([(b.sink, b.row) for b in self.bindings])
        self._singles = [self.bindings[index] for index in alone]
        self._set_schedules()

    def _refresh_frames(self, sink: object) -> int:
        """Frames between two sends of an unchanged face to ``sink`` (0 = every frame)."""
        refresh_hz = self.settings.idle_refresh_hz
        if refresh_hz == "auto":
            refresh_hz = float(getattr(sink, "auto_refresh_hz", 0.0))
        return refresh_frames(refresh_hz, 1.0 / self.pacer.period_s)

    def _set_schedules(self) -> None:
        """Each output's refresh schedule, from the bindings and ``idle_refresh_hz``."""
        self._batch_schedules = [
            (batch, RefreshSchedule(batch.rows, self._refresh_frames(batch.sinks[0])))
            for batch in self._batches
        ]  # a batch is one encoder kind: one rate
        self._single_schedules = [
            (b.sink, self._face(b.row), b.row, self._refresh_frames(b.sink)) for b in self._singles
        ]

    def reconfigure(self, settings: LiveSettings, bindings: Sequence[Binding]) -> None:
        """Apply a reload: new live settings and outputs, between two frames.

        Synchronous (no await), so the frame loop sees all of it or none. Outputs in
        ``bindings`` that were not bound before start their tasks under the same supervision
        as those present at start; outputs no longer bound get a neutral frame and close.
        """
        if self.stopping:
            raise RuntimeError("the bridge is stopping: no reconfiguration")
        bound = {id(b.sink) for b in self.bindings}
        kept = {id(b.sink) for b in bindings}
        removed = [b for b in self.bindings if id(b.sink) not in kept]
        added = [b for b in bindings if id(b.sink) not in bound]
        # Settings first (as at start): the outputs' schedules and faces are built once, with
        # the new idle_refresh_hz over the weights the new liveliness sends.
        self._apply_settings(settings)
        self._set_bindings(bindings)
        for binding in added:  # a new output gets the next frame, not the next idle refresh
            self._send_next[binding.row] = True
        self.pacer.wake()
        if self._main_task is not None:  # running: start the new outputs' tasks now
            self._start_output_tasks(list({id(b.sink): b.sink for b in added}.values()))
        retire(removed, self.pacer.frame_index + 1, self.pacer.time_s)

    def _apply_settings(self, settings: LiveSettings) -> None:
        """Smoothing, idle handling and stats take effect from the next frame; the outputs'
        refresh schedules follow from ``_set_bindings``, which comes after (at start and in
        ``reconfigure``)."""
        self.settings = settings
        self.animator.tau_s = settings.tau_s
        self.animator.set_space(settings.space)
        self.idle_timeout_s = settings.idle_timeout_s
        self.stats_interval_s = settings.stats_interval_s
        # With stats lines off, rejected inputs are still logged at the counters' own pace.
        self.input_stats.log_interval_s = settings.stats_interval_s or DEFAULT_LOG_INTERVAL_S
        if settings.liveliness != self._liveliness_config:
            self._set_liveliness(settings.liveliness)

    def _set_liveliness(self, config: LivelinessConfig) -> None:
        """Blinks and breathing on, off or changed (at start, or by a reload): a new
        ``Liveliness`` (its blink clocks start again), the faces forgotten (``_set_bindings``,
        which follows, rebuilds them over the weights they now send; the batches are handed
        those weights every send), and every bound face sent next frame (none stays
        mid-blink)."""
        self._liveliness_config = config
        table = self.table
        self.liveliness = Liveliness(config, table.capacity) if config.enabled else None
        # Liveliness works on a copy: table.weights stays the model's output, which the
        # animator only rewrites for rows whose input changed.
        lively = np.zeros_like(table.weights) if self.liveliness is not None else None
        self._lively_weights = lively
        pairs = (table.capacity, LEFT_INDICES.size)
        self._lively_left = np.zeros(pairs, dtype=np.float32) if lively is not None else None
        self._lively_right = np.zeros(pairs, dtype=np.float32) if lively is not None else None
        self._sent_weights = lively if lively is not None else table.weights
        self._faces = {}
        self._send_next[:] = True

    @property
    def shown_weights(self) -> np.ndarray:
        """(capacity, 52): the weights the outputs are sent, row by row (the model's, or with
        blinks and breathing on a copy of them); read-only by convention."""
        return self._sent_weights

    def on_sample(self, sample: VadSample, *, source: str) -> None:
        """Set the target of ``sample``'s avatar. ``source`` is the name the input's source
        counts it under (``osc``, ``mqtt``, ``web``): a sample carries no source, and a refusal
        here is that source's rejection (``run`` binds it per source)."""
        try:
            row = self.table.row(sample.avatar)
        except AvatarLimitError as error:
            self.input_stats.reject("avatar.limit", str(error), source=source)
            return
        self.table.set_target(row, sample.vad, self.clock())
        self.pacer.wake()  # a resting frame loop makes the next frame (no-op otherwise)

    async def run(self) -> None:
        """Run until cancelled (SIGINT/SIGTERM cancel it), then send neutral and close.

        Raises OutputTaskError if an output's own task (e.g. the MQTT publisher) failed, also
        one a reload added: that tears the bridge down like a failing source, instead of an
        output dying silently.
        """
        self._main_task = asyncio.current_task()
        self._start_output_tasks(self.sinks)
        try:
            async with asyncio.TaskGroup() as tasks:
                for source in self.sources:
                    on_sample = partial(self.on_sample, source=source.kind)
                    tasks.create_task(source.run(on_sample), name=f"source {source.name}")
                tasks.create_task(self._frames(), name="frames")
                # Always running: a SIGHUP reload may turn stats lines on (bridge/reload.py).
                tasks.create_task(self._stats_lines(), name="stats")
        finally:
            self.stopping = True
            self.pacer.close()  # its kernel timer, if it has one
            retire(self.bindings, self.pacer.frame_index + 1, self.pacer.time_s)
            if self._output_tasks:
                _, pending = await asyncio.wait(self._output_tasks, timeout=SINK_DRAIN_TIMEOUT_S)
                for task in pending:
                    task.cancel()
                if pending:  # let them unwind (close sockets) before the loop ends
                    await asyncio.wait(pending, timeout=SINK_DRAIN_TIMEOUT_S)
            if self._output_task_failure is not None:
                name, failure = self._output_task_failure
                raise OutputTaskError(f"output {name} failed: {failure!r}") from failure

    def _start_output_tasks(self, sinks: Sequence[Sink]) -> None:
        for sink in sinks:
            run = getattr(sink, "run", None)
            if run is None:
                continue
            task = asyncio.get_running_loop().create_task(run(), name=sink.name)
            self._output_tasks.add(task)
            task.add_done_callback(self._output_tasks.discard)
            task.add_done_callback(self._on_output_task_done)

    def _on_output_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None or self.stopping:
            return
        if self._output_task_failure is None:  # the first failure is the reason
            self._output_task_failure = (task.get_name(), cast(BaseException, task.exception()))
        if self._main_task is not None:
            self._main_task.cancel()

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
            elapsed = frame - previous_frame  # more than 1 after skipped frames
            self.animator.step(elapsed * pacer.period_s)
            previous_frame = frame
            time_s = pacer.time_s
            if self.liveliness is not None:  # a lively face changes every frame
                self._lively(time_s)
                self.send_frame(frame, time_s)
                continue
            self._send_due(frame, time_s, max(1, elapsed))
            rest_until = self._rest_until(frame)
            if rest_until > frame + 1:
                await pacer.rest(rest_until)
                # Smoothing restarts from rest: a new target glides from the next frame, one
                # period at a time (not one step as long as the rest).
                previous_frame = pacer.frame_index

    def _rest_until(self, frame: int) -> int:
        """The next frame that may have something to do: ``frame + 1`` unless every face is at
        rest, then the first output refresh, the first idle timeout, or MAX_REST_S away."""
        if not self.animator.at_rest or np.count_nonzero(self._send_next[: len(self.table)]):
            return frame + 1
        until = frame + max(1, round(MAX_REST_S / self.pacer.period_s))
        for _, schedule in self._batch_schedules:
            until = min(until, schedule.next_refresh(frame))
        for _, _, row, every in self._single_schedules:
            until = min(until, next_refresh(row, every, frame))
        if self.idle_timeout_s > 0 and until > frame + 1:
            release_s = self.table.next_release_s(self.idle_timeout_s)
            if release_s is not None:  # an avatar eases back to neutral then: be awake for it
                frames_away = math.ceil((release_s - self.clock()) / self.pacer.period_s)
                until = min(until, frame + max(1, frames_away))
        return until

    def send_frame(self, number: int, time_s: float) -> None:
        """Send every output its avatar's current face (the frame loop's send, every frame)."""
        weights = self._sent_weights
        for batch in self._batches:
            batch.send_rows(weights, time_s)
        for sink, face, _, _ in self._single_schedules:
            face.number = number
            face.time_s = time_s
            sink.send(face)

    def _send_due(self, frame: int, time_s: float, elapsed: int = 1) -> None:
        """Send the faces that changed this frame, and the others on their outputs' refresh
        schedules (core/refresh.py)."""
        count = len(self.table)
        changed = self._changed_rows[:count]
        send_next = self._send_next[:count]
        np.logical_or(self.animator.changed, send_next, out=changed)
        send_next[:] = False
        weights = self._sent_weights
        moved = np.count_nonzero(changed)
        if moved == count:  # every face moved (one live avatar): all go
            self.send_frame(frame, time_s)
            return
        for batch, schedule in self._batch_schedules:
            if moved or schedule.refreshes_at(frame, elapsed):  # else none of it is due
                batch.send_rows(weights, time_s, schedule.due(self._changed_rows, frame, elapsed))
        for sink, face, row, every in self._single_schedules:
            if is_due(row, every, frame, bool(changed[row]), elapsed):
                face.number = frame
                face.time_s = time_s
                sink.send(face)

    def _lively(self, time_s: float) -> None:
        """The animator's weights plus blinks and breathing, symmetrised again after them."""
        assert self.liveliness is not None and self._lively_weights is not None
        assert self._lively_left is not None and self._lively_right is not None
        count = len(self.table)
        out = self._lively_weights[:count]
        np.copyto(out, self.table.weights[:count])
        self.liveliness.apply(out, time_s)
        if self.animator.symmetry:
            symmetrize_inplace(out, left=self._lively_left[:count],
                               right=self._lively_right[:count])

    def stats_snapshot(self) -> dict[str, Any]:
        """Counters since start (frames, late, skipped, inputs, send errors) and the gauges
        (avatars, and receivers when an output has them); the stats line shows the difference
        between two of these."""
        pacing = self.pacer.stats.snapshot()
        snapshot = {
            **pacing,
            "avatars": len(self.table),
            "inferred_rows": self.animator.inferred_rows,
            "inputs": self.input_stats.snapshot(),
            "send_errors": self._send_errors_by_destination(),
        }
        # Outputs that stream to whoever asks (ifacialmocap's handshake mode) say how many do.
        receivers = {sink.name: count for sink in self.sinks
                     if (count := getattr(sink, "receiver_count", None)) is not None}
        if receivers:
            snapshot["receivers"] = receivers
        return snapshot

    def _send_errors_by_destination(self) -> dict[str, int]:
        """Send errors per output name (outputs to the same destination add up)."""
        errors: dict[str, int] = {}
        for sink in self.sinks:
            errors[sink.name] = errors.get(sink.name, 0) + sink.send_errors
        return errors

    async def _stats_lines(self) -> None:
        """Every ``stats_interval_s``, one line of what happened since the previous line (the
        snapshot stays totals since start; the line shows the differences)."""
        before: dict[str, Any] | None = None
        before_s = 0.0
        while True:
            if self.stats_interval_s <= 0:  # off; a reload may change that, so look again later
                before = None
                await asyncio.sleep(STATS_OFF_POLL_S)
                continue
            if before is None:
                before, before_s = self.stats_snapshot(), time.monotonic()
            await asyncio.sleep(self.stats_interval_s)
            now_s = time.monotonic()
            snapshot = self.stats_snapshot()
            log.info("%s", format_stats_line(interval_counts(snapshot, before), now_s - before_s))
            before, before_s = snapshot, now_s
