"""Malformed OSC datagrams and MQTT payloads are counted and dropped; the stream never stops."""

from __future__ import annotations

import json
import socket
from itertools import pairwise

from bridge_harness import (
    UdpReceiver,
    config_from_yaml,
    osc,
    running_bridge,
    send_osc,
    wait_until,
)
from conftest import free_port

BAD_OSC = [
    (b"\x00\x01\x02", "osc.decode"),  # not a multiple of 4, no address
    (b"#bundle\x00" + b"\x00" * 4, "osc.decode"),  # truncated bundle header
    (osc("/vad", 0.1, 0.2), "osc.arity"),
    (osc("/vad", "a", 0.2, 0.3), "osc.type"),
    (osc("/vad", float("nan"), 0.2, 0.3), "nonfinite"),
    (osc("/emotion", "hapiness"), "emotion.unknown"),
    (osc("/nothing/here", 1.0), "osc.address"),
]
BAD_MQTT = [
    ("vad", b"{not json", "mqtt.json"),
    ("vad", b"\xff\xfe", "mqtt.json"),
    ("vad", json.dumps([1, 2]).encode(), "mqtt.shape"),
    ("vad", json.dumps({"valence": "x"}).encode(), "mqtt.shape"),
    ("vad", b"[" * 5000 + b"]" * 5000, "mqtt.shape"),
    ("vad", b"0" * 70000, "oversize"),
    ("emotion", json.dumps({"emotion": "blorp"}).encode(), "emotion.unknown"),
]


def test_malformed_input_is_counted_and_the_stream_goes_on(mosquitto) -> None:
    vmc = UdpReceiver()
    osc_port = free_port(socket.SOCK_DGRAM)
    text = f"""
stats_interval_s: 0
idle_refresh_hz: 0  # every frame: the test measures gaps in the stream
inputs:
  - {{type: osc, host: 127.0.0.1, port: {osc_port}}}
  - {{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}}}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {vmc.port}}}
"""
    try:
        with running_bridge(config_from_yaml(text)) as bridge:
            mqtt_source = bridge.sources[1]
            wait_until(lambda: mqtt_source.connected, "the MQTT connection")  # type: ignore[attr-defined]
            vmc.drain()
            for data, _ in BAD_OSC:
                send_osc(osc_port, data)
            mosquitto.publish_sync([(f"vadbridge/default/{leaf}", p) for leaf, p, _ in BAD_MQTT])
            send_osc(osc_port, osc("/vad", 2.0, 0.0, 0.0))  # clipped, accepted, counted
            datagrams = vmc.receive(1.0)
            stats = bridge.input_stats.snapshot()
            target = bridge.table.target_vad[0].tolist()
    finally:
        vmc.close()
    expected: dict[str, int] = {}
    for kind in [k for _, k in BAD_OSC] + [k for _, _, k in BAD_MQTT]:
        expected[kind] = expected.get(kind, 0) + 1
    assert stats["rejected"] == expected
    assert stats["accepted"] == {"osc": 1}
    assert stats["clipped"] == {"osc": 1}
    assert target == [1.0, 0.0, 0.0]
    # The stream never stopped: ~60 frames in that second, no gap longer than two periods.
    assert len(datagrams) >= 50
    gaps = [b[0] - a[0] for a, b in pairwise(datagrams)]
    assert max(gaps) < 0.25
