"""``idle_refresh_hz``: converged faces are re-sent at a low rate; a change goes out at once."""

from __future__ import annotations

import dataclasses
import socket

import numpy as np
import pytest
from bridge_harness import UdpReceiver, config_from_yaml, on_loop, running_bridge, send_osc
from conftest import free_port
from pythonosc.osc_message_builder import OscMessageBuilder

from vadbridge.config import BridgeConfig, ConfigError, LivelinessConfig
from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.refresh import (
    SPREAD_FRAMES,
    RefreshSchedule,
    is_due,
    next_refresh,
    refresh_frames,
    refresh_phase,
)
from vadbridge.core.stats import InputStats
from vadbridge.core.types import Frame
from vadbridge.daemon import Binding, Bridge, LiveSettings
from vadbridge.model.api import load_model
from vadbridge.outputs import VmcEncoder
from vadbridge.outputs.udp import UdpSink
from vadbridge.reload import NEEDS_RESTART, RELOADABLE


def test_a_held_face_is_resent_at_the_refresh_rate_and_a_moving_one_every_frame() -> None:
    vmc = UdpReceiver()
    osc_port = free_port(socket.SOCK_DGRAM)
    config = config_from_yaml(f"""
stats_interval_s: 0
idle_refresh_hz: 5
smoothing: {{tau_ms: 300}}
inputs: [{{type: osc, host: 127.0.0.1, port: {osc_port}}}]
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}}}]
""")
    try:
        with running_bridge(config) as bridge:
            vmc.receive(0.3)  # the first (changed) frame went out; the face is converged
            idle = vmc.receive(2.0)
            builder = OscMessageBuilder("/vad")
            for value in (0.8, 0.6, 0.5):
                builder.add_arg(value)
            send_osc(osc_port, builder.build().dgram)
            gliding = vmc.receive(0.5)
            frames = bridge.pacer.stats.frames
    finally:
        vmc.close()
    assert [every for _, _, _, every in bridge._single_schedules] == [12]  # 60 fps / 5 Hz
    assert 8 <= len(idle) <= 12  # ~5 per second instead of ~120 in 2 s
    assert frames > 100  # the frame loop itself kept running at 60 fps
    # While the face glides toward the new input it changes every frame: every frame goes out.
    assert len(gliding) >= 20


def test_every_top_level_key_is_either_reloadable_or_needs_a_restart() -> None:
    keys = {field.name for field in dataclasses.fields(BridgeConfig)}
    assert set(RELOADABLE) | set(NEEDS_RESTART) == keys
    assert not set(RELOADABLE) & set(NEEDS_RESTART)


def test_an_output_a_reload_adds_gets_the_next_frame_not_the_next_refresh() -> None:
    """At 0.1 Hz a converged face is re-sent every 10 s: a new receiver must not wait for it.
    The frame loop rests meanwhile (nothing is due for up to a second): the reload wakes it."""
    vmc, added = UdpReceiver(), UdpReceiver()
    config = config_from_yaml(f"""
stats_interval_s: 0
idle_refresh_hz: 0.1
inputs: []
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}}}]
""")
    try:
        with running_bridge(config) as bridge:
            vmc.receive(0.3)  # converged: from now on one frame per 10 s
            binding = bridge.bindings[0]
            sink = UdpSink(VmcEncoder(), "127.0.0.1", added.port, name="added")
            on_loop(bridge, lambda: bridge.reconfigure(
                bridge.settings, [binding, Binding(sink, binding.row)]))
            first = added.receive(0.3)
            later = added.receive(0.5)
    finally:
        vmc.close()
        added.close()
    assert len(first) == 1  # one frame at once (the row is due: its other outputs get it too)
    assert later == []  # then the refresh rate again


class _FrameList:
    name = "frames"
    send_errors = 0

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def send(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


def test_a_reload_of_the_refresh_rate_and_liveliness_rebuilds_the_outputs_with_both() -> None:
    """The output's schedule has the new rate, and its face shows the lively copy of the
    weights (not the model's), every face due next frame."""
    table = AvatarTable(2, initial_ids=["default"])
    before = LiveSettings(tau_s=0.1, space="vad", idle_timeout_s=0.0, idle_refresh_hz=5.0,
                          stats_interval_s=0.0, liveliness=LivelinessConfig())
    bridge = Bridge(table=table, animator=Animator(table, load_model()[0], tau_s=0.1),
                    sources=[], bindings=[Binding(_FrameList(), 0)], frame_rate=60,
                    input_stats=InputStats(), settings=before)
    [(_, face, _, every)] = bridge._single_schedules
    assert every == 12 and np.shares_memory(face.weights, table.weights)
    after = dataclasses.replace(before, idle_refresh_hz=10.0,
                                liveliness=LivelinessConfig(blink=True, seed=1))
    bridge._send_next[:] = False
    bridge.reconfigure(after, bridge.bindings)
    [(_, face, _, every)] = bridge._single_schedules
    assert every == 6  # 60 fps / 10 Hz
    assert np.shares_memory(face.weights, bridge.shown_weights)
    assert not np.shares_memory(face.weights, table.weights)
    assert bridge._send_next.all()


def test_a_schedule_sends_changed_rows_at_once_and_the_rest_spread_over_the_period() -> None:
    """120 rows at a period of 30 frames (2 Hz at 60 fps): over any 30 consecutive frames every
    row is due exactly once, in groups SPREAD_FRAMES apart (15 rows on 8 frames, not 120 on
    one); a changed row is due at once."""
    rows = np.arange(120)
    schedule = RefreshSchedule(rows, 30)
    nothing_changed = np.zeros(120, dtype=bool)
    sends = np.zeros(120, dtype=int)
    busy_frames = []
    for frame in range(100, 130):
        due = schedule.due(nothing_changed, frame)
        assert due is not None
        assert schedule.refreshes_at(frame) == bool(due.any())
        for row in (0, 7, 8, 119):
            assert bool(due[row]) == is_due(row, 30, frame, changed=False)
        if due.any():
            busy_frames.append(frame % 30)
            assert schedule.next_refresh(frame - 1) == frame
        sends += due
    assert sends.tolist() == [1] * 120
    assert sorted(busy_frames) == [0, 4, 8, 12, 16, 20, 24]  # 7 groups, SPREAD_FRAMES apart
    assert SPREAD_FRAMES == 4
    # Row 8 is in the group of phase 4; frame 100 is at 10 of the period: next at 124. The
    # schedule's next refresh is the next group's (phase 12): frame 102.
    assert refresh_phase(8, 30) == 4
    assert next_refresh(8, 30, 100) == 124
    assert schedule.next_refresh(100) == 102
    changed = nothing_changed.copy()
    changed[5] = True
    due = schedule.due(changed, 101)
    assert due is not None and due[5] and not is_due(5, 30, 101, changed=False)
    assert is_due(5, 30, 101, changed=True)
    assert RefreshSchedule(rows, 1).due(nothing_changed, 7) is None  # every frame: all
    assert RefreshSchedule(rows, 0).due(nothing_changed, 7) is None
    assert [refresh_frames(hz, 60) for hz in (0, 2, 5, 60, 240)] == [0, 30, 12, 1, 1]


def test_auto_refreshes_each_output_at_its_receivers_rate() -> None:
    """The default: VMC and OSC every 30 frames (2 Hz), Live Link every 12 (5 Hz), outputs
    whose receivers need every frame (ifacialmocap, record) every frame; a number overrides
    them all."""
    receivers = [UdpReceiver() for _ in range(4)]
    ports = [receiver.port for receiver in receivers]
    outputs = f"""outputs:
  - {{type: vmc, host: 127.0.0.1, port: {ports[0]}}}
  - {{type: osc, host: 127.0.0.1, port: {ports[1]}}}
  - {{type: livelink, host: 127.0.0.1, port: {ports[2]}}}
  - {{type: ifacialmocap, mode: push, host: 127.0.0.1, port: {ports[3]}}}
"""
    try:
        config = config_from_yaml("stats_interval_s: 0\ninputs: []\n" + outputs)
        assert config.idle_refresh_hz == "auto"
        with running_bridge(config) as bridge:
            assert not bridge._batch_schedules  # one output of each kind: none batched
            assert [every for _, _, _, every in bridge._single_schedules] == [30, 30, 12, 0]
            # Converged (nothing moves without inputs): the VMC receiver gets the refresh only.
            receivers[0].receive(0.3)
            assert len(receivers[0].receive(1.0)) <= 3  # 2 Hz (every frame would be ~60)
        config = config_from_yaml("stats_interval_s: 0\nidle_refresh_hz: 10\ninputs: []\n"
                                  + outputs)
        with running_bridge(config) as bridge:
            assert [every for _, _, _, every in bridge._single_schedules] == [6, 6, 6, 6]
    finally:
        for receiver in receivers:
            receiver.close()


@pytest.mark.parametrize("value", ["sometimes", -1, 1000, True])
def test_idle_refresh_hz_is_auto_or_a_rate(value: object) -> None:
    with pytest.raises(ConfigError, match=r"idle_refresh_hz.*auto"):
        config_from_yaml(f"idle_refresh_hz: {str(value).lower()}\n")


def test_a_refresh_that_falls_on_a_skipped_frame_goes_out_on_the_next_one() -> None:
    """Only odd frames handed out (an overloaded loop skipping every other one): the rows,
    whose phases are even, are still refreshed once a period, on the frame after their phase."""
    rows = np.array([1, 3, 4])
    schedule = RefreshSchedule(rows, 30)
    nothing_changed = np.zeros(5, dtype=bool)
    sends = np.zeros(3, dtype=int)
    for frame in range(31, 91, 2):  # two periods, elapsed 2 each time
        assert schedule.refreshes_at(frame, 2) == any(
            is_due(int(row), 30, frame, False, 2) for row in rows)
        due = schedule.due(nothing_changed, frame, 2)
        assert due is not None
        for index, row in enumerate(rows):
            assert bool(due[index]) == is_due(int(row), 30, frame, False, 2)
        sends += due
    assert sends.tolist() == [2, 2, 2]
    phase = int(refresh_phase(1, 30))
    assert is_due(1, 30, phase + 31, False, 2) and not is_due(1, 30, phase + 31, False, 1)


def test_a_refresh_period_of_days_costs_no_memory() -> None:
    """idle_refresh_hz 1e-9 at 240 fps is a period of 2.4e11 frames: the schedule keeps its
    phases, not an array of the period."""
    every = refresh_frames(1e-9, 240)
    schedule = RefreshSchedule([0, 5], every)
    phase = int(refresh_phase(5, every))
    assert phase > 0
    assert schedule.refreshes_at(every * 3 + phase) and not schedule.refreshes_at(every * 3 + 1)
    assert schedule.next_refresh(phase) == every
    config = config_from_yaml("idle_refresh_hz: 1.0e-9\n")
    assert config.idle_refresh_hz == 1e-9
