"""``idle_refresh_hz``: converged faces are re-sent at a low rate; a change goes out at once."""

from __future__ import annotations

import dataclasses
import socket

from bridge_harness import UdpReceiver, config_from_yaml, on_loop, running_bridge, send_osc
from conftest import free_port
from pythonosc.osc_message_builder import OscMessageBuilder

from vadbridge.config import BridgeConfig
from vadbridge.daemon import Binding
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
    assert bridge.idle_refresh_frames == 12  # 60 fps / 5 Hz
    assert 8 <= len(idle) <= 12  # ~5 per second instead of ~120 in 2 s
    assert frames > 100  # the frame loop itself kept running at 60 fps
    # While the face glides toward the new input it changes every frame: every frame goes out.
    assert len(gliding) >= 20


def test_every_top_level_key_is_either_reloadable_or_needs_a_restart() -> None:
    keys = {field.name for field in dataclasses.fields(BridgeConfig)}
    assert set(RELOADABLE) | set(NEEDS_RESTART) == keys
    assert not set(RELOADABLE) & set(NEEDS_RESTART)


def test_an_output_a_reload_adds_gets_the_next_frame_not_the_next_refresh() -> None:
    """At 0.1 Hz a converged face is re-sent every 10 s: a new receiver must not wait for it."""
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
