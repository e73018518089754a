"""A frame loop with nothing to do rests: every face at rest, no output due until its refresh.

It sleeps through those frames (counted as frames: there was nothing to send) and wakes for
the next refresh, an input, a reload (tests/test_idle_refresh.py) or an idle timeout. Nothing
here asserts on how long a wake-up takes; the counts are bounded from the side a loaded machine
cannot cross.
"""

from __future__ import annotations

import socket
import time

from bridge_harness import UdpReceiver, config_from_yaml, on_loop, running_bridge, wait_until
from conftest import free_port

from vadbridge.core.smoothing import smoothing_alpha
from vadbridge.core.types import VadSample
from vadbridge.daemon import Bridge


def _record_steps(bridge: Bridge) -> list[float]:
    """From now on, the step length of every frame the loop works on (rested frames have
    none). Installed on the bridge's loop, between two frames."""
    worked: list[float] = []
    step = bridge.animator.step

    def recording_step(dt_s: float) -> None:
        worked.append(dt_s)
        step(dt_s)

    on_loop(bridge, lambda: setattr(bridge.animator, "step", recording_step))
    return worked


def test_a_face_at_rest_wakes_the_loop_only_for_its_refreshes() -> None:
    vmc = UdpReceiver()
    config = config_from_yaml(f"""
stats_interval_s: 0
inputs: []
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}}}]
""")
    try:
        with running_bridge(config) as bridge:
            worked = _record_steps(bridge)
            vmc.receive(0.3)  # at rest from the first frames (no inputs)
            frames_before, worked_before = bridge.pacer.stats.frames, len(worked)
            received = vmc.receive(1.5)
            frames = bridge.pacer.stats.frames - frames_before
            wake_ups = len(worked) - worked_before
    finally:
        vmc.close()
    # VMC refreshes at 2 Hz under idle_refresh_hz: auto: ~3 frames worked on in 1.5 s, not 90.
    assert 1 <= wake_ups <= 6
    assert len(received) <= 6
    # Rested frames still count: the frame clock ran on (>= half of 90 even on a loaded box).
    assert frames >= 45


def test_an_input_ends_a_rest_and_glides_from_the_next_frame() -> None:
    """The first step after a rest is one period long: the face glides toward the new target
    from where it rested, it does not jump there in one step as long as the rest."""
    vmc = UdpReceiver()
    config = config_from_yaml(f"""
stats_interval_s: 0
smoothing: {{tau_ms: 100}}
inputs: []
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}}}]
""")
    try:
        with running_bridge(config) as bridge:
            worked = _record_steps(bridge)
            vmc.receive(0.6)  # resting between the 2 Hz refreshes
            before = len(worked)
            on_loop(bridge, lambda: bridge.on_sample(VadSample("default", (0.8, None, None)),
                                                     source="osc"))
            wait_until(lambda: bridge.table.state_vad[0, 0] != 0.0, "the glide to start")
            first_step = worked[before]
            moved = [float(bridge.table.state_vad[0, 0])]
    finally:
        vmc.close()
    period = 1 / 60
    assert abs(first_step - period) < 1e-9
    # The first frame moved the valence by one period's share of the way (tau 100 ms: ~15%),
    # or a few frames' worth if the test thread polled late, never the whole way.
    assert 0.8 * smoothing_alpha(period, 0.1) * 0.99 <= moved[0] < 0.79


def test_an_idle_timeout_still_eases_a_resting_face_back_to_neutral() -> None:
    vmc = UdpReceiver()
    osc_port = free_port(socket.SOCK_DGRAM)
    config = config_from_yaml(f"""
stats_interval_s: 0
smoothing: {{tau_ms: 20, idle_timeout_s: 0.6}}
inputs: [{{type: osc, host: 127.0.0.1, port: {osc_port}}}]
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}}}]
""")
    try:
        with running_bridge(config) as bridge:
            on_loop(bridge, lambda: bridge.on_sample(VadSample("default", (0.7, 0.5, 0.2)),
                                                     source="osc"))
            wait_until(lambda: bridge.animator.at_rest and bridge.table.state_vad[0, 0] > 0.69,
                       "the face to arrive and rest")
            started = time.monotonic()
            wait_until(lambda: bridge.table.state_vad[0, 0] == 0.0, "the idle timeout")
            waited = time.monotonic() - started
    finally:
        vmc.close()
    assert waited > 0.3  # not before the timeout (0.6 s after the input, minus the glide)
