"""The daemon end to end over real UDP: OSC in, VMC / generic OSC / Live Link out."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from bridge_harness import (
    UdpReceiver,
    config_from_yaml,
    decode_vmc,
    osc,
    running_bridge,
    send_osc,
    vmc_frame_values,
)
from conftest import free_port
from livelink_decoder import decode_livelink
from pythonosc.osc_packet import OscPacket

from vadbridge.model.arkit import ARKIT_NAMES, MIRROR_PAIRS, upper_camel

PERFECT_SYNC_NAMES = [upper_camel(name) for name in ARKIT_NAMES]


@pytest.fixture
def receivers() -> dict[str, UdpReceiver]:
    made = {name: UdpReceiver() for name in ("vmc", "osc", "livelink")}
    yield made
    for receiver in made.values():
        receiver.close()


def bridge_yaml(osc_port: int, receivers: dict[str, UdpReceiver], extra: str = "") -> str:
    return f"""
stats_interval_s: 0
idle_refresh_hz: 0  # every frame to every output: these tests read the stream frame by frame
smoothing: {{tau_ms: 100}}
inputs:
  - {{type: osc, host: 127.0.0.1, port: {osc_port}}}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {receivers["vmc"].port}}}
  - {{type: osc, host: 127.0.0.1, port: {receivers["osc"].port}, mode: array, prefix: /face}}
  - {{type: livelink, host: 127.0.0.1, port: {receivers["livelink"].port}, subject: npc}}
{extra}
"""


def test_vmc_frames_carry_52_perfect_sync_values_then_apply(receivers) -> None:
    osc_port = free_port(socket.SOCK_DGRAM)
    with running_bridge(config_from_yaml(bridge_yaml(osc_port, receivers))):
        datagrams = receivers["vmc"].receive(0.5)
    assert len(datagrams) >= 20
    for _, data in datagrams[:-1]:  # the last one may be the neutral frame; checked elsewhere
        messages = decode_vmc(data)
        addresses = [address for address, _ in messages]
        assert addresses[:53] == ["/VMC/Ext/Blend/Val"] * 52 + ["/VMC/Ext/Blend/Apply"]
        assert [params[0] for _, params in messages[:52]] == PERFECT_SYNC_NAMES
        values = np.array([params[1] for _, params in messages[:52]])
        assert np.all((values >= 0.0) & (values <= 1.0))
        for left, right in MIRROR_PAIRS:
            assert values[left] == values[right]  # exact, on the wire


def test_happiness_drives_the_smile_up_within_tau(receivers) -> None:
    osc_port = free_port(socket.SOCK_DGRAM)
    with running_bridge(config_from_yaml(bridge_yaml(osc_port, receivers))):
        before = vmc_frame_values(receivers["vmc"].receive(0.2)[-1][1])
        receivers["vmc"].drain()
        send_osc(osc_port, osc("/emotion", "happiness", 1.0))
        after = vmc_frame_values(receivers["vmc"].receive(0.3)[-1][1])  # 3 tau later
    assert after["MouthSmileLeft"] > before["MouthSmileLeft"] + 0.2
    assert after["MouthSmileLeft"] == after["MouthSmileRight"]
    assert after["CheekSquintLeft"] > before["CheekSquintLeft"]


def test_named_avatar_and_partial_updates_move_only_that_avatar(receivers) -> None:
    osc_port = free_port(socket.SOCK_DGRAM)
    text = bridge_yaml(osc_port, receivers, "avatars: {ids: [default, npc]}")
    text = text.replace(
        f"port: {receivers['livelink'].port}, subject: npc}}",
        f"port: {receivers['livelink'].port}, subject: npc, avatar: npc}}",
    )
    with running_bridge(config_from_yaml(text)) as bridge:
        send_osc(osc_port, osc("/avatar/npc/vad", 0.8, 0.6, 0.5))
        send_osc(osc_port, osc("/avatar/npc/vad/dominance", -0.25))
        receivers["livelink"].receive(0.6)
        npc = bridge.table.index["npc"]
        default = bridge.table.index["default"]
        assert bridge.table.target_vad[npc].tolist() == pytest.approx([0.8, 0.6, -0.25])
        assert bridge.table.target_vad[default].tolist() == [0.0, 0.0, 0.0]
        assert bridge.input_stats.snapshot()["accepted"] == {"osc": 2}


def test_generic_osc_array_and_live_link_match_the_vmc_frame(receivers) -> None:
    osc_port = free_port(socket.SOCK_DGRAM)
    with running_bridge(config_from_yaml(bridge_yaml(osc_port, receivers))):
        send_osc(osc_port, osc("/vad", 0.3, 0.9, 0.2))
        receivers["vmc"].receive(0.8)
        for receiver in receivers.values():
            receiver.drain()
        vmc = receivers["vmc"].receive(0.1)[-1][1]
        array = receivers["osc"].receive(0.1)[-1][1]
        live = receivers["livelink"].receive(0.1)[-1][1]
    vmc_values = vmc_frame_values(vmc)
    (message,) = OscPacket(array).messages
    assert message.message.address == "/face"
    array_values = dict(zip(ARKIT_NAMES, message.message.params, strict=True))
    packet = decode_livelink(live)
    assert packet.subject == "npc"
    # The held input has converged (tau 100 ms, 0.8 s): all three outputs carry the same face.
    for name in ARKIT_NAMES:
        assert array_values[name] == pytest.approx(vmc_values[upper_camel(name)], abs=0)
        assert packet.values[upper_camel(name)] == pytest.approx(array_values[name], abs=0)
    assert array_values["jawOpen"] > 0.1  # surprise opens the jaw


def test_sixty_fps_for_three_seconds_sends_about_180_frames(receivers) -> None:
    osc_port = free_port(socket.SOCK_DGRAM)
    with running_bridge(config_from_yaml(bridge_yaml(osc_port, receivers))):
        receivers["vmc"].receive(0.1)
        datagrams = receivers["vmc"].receive(3.0)
    assert 177 <= len(datagrams) <= 183
