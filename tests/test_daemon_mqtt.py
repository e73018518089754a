"""The daemon end to end with a real mosquitto: every accepted payload form moves the face."""

from __future__ import annotations

import json

import pytest
from bridge_harness import (
    UdpReceiver,
    config_from_yaml,
    expected_vmc_frame,
    running_bridge,
    wait_for_frame,
    wait_until,
)
from models import FLOAT32_PATH_ATOL

from vadbridge.model.emotions import emotion_to_vad, mix_to_vad
from vadbridge.wiring import load_model_engine

PAYLOADS = [
    ("vad", json.dumps({"valence": 0.5, "arousal": -0.2, "dominance": 0.1}), (0.5, -0.2, 0.1)),
    ("vad", json.dumps({"v": -0.6, "a": 0.4, "d": 0.3}), (-0.6, 0.4, 0.3)),
    ("vad", json.dumps([0.2, 0.7, -0.4]), (0.2, 0.7, -0.4)),
    ("vad", "0.9 0.1 0.25", (0.9, 0.1, 0.25)),
    (
        "emotion",
        json.dumps({"emotion": "sadness", "intensity": 0.9}),
        tuple(emotion_to_vad("sadness", 0.9)),
    ),
    ("emotion", "happiness+surprise", tuple(emotion_to_vad("happiness+surprise"))),
    (
        "emotion",
        json.dumps([{"label": "anger", "score": 0.8}, {"label": "fear", "score": 0.2}]),
        tuple(mix_to_vad({"anger": 0.8, "fear": 0.2})),
    ),
]


@pytest.mark.parametrize("protocol", [4, 5])
def test_every_payload_form_drives_the_output(mosquitto, protocol: int) -> None:
    vmc = UdpReceiver()
    text = f"""
stats_interval_s: 0
smoothing: {{tau_ms: 0}}
inputs:
  - {{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}, protocol: {protocol}}}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {vmc.port}, avatar: face-1}}
"""
    engine = load_model_engine(config_from_yaml(text))
    try:
        with running_bridge(config_from_yaml(text)) as bridge:
            source = bridge.sources[0]
            wait_until(lambda: source.connected, "the MQTT connection")  # type: ignore[attr-defined]
            for leaf, payload, vad in PAYLOADS:
                mosquitto.publish_sync([(f"vadbridge/face-1/{leaf}", payload)])
                want = expected_vmc_frame(engine, vad)
                got = wait_for_frame(vmc, want)
                # The bridge's table-row inference vs a one-row forward: two float32 paths.
                assert got == pytest.approx(want, abs=FLOAT32_PATH_ATOL), (leaf, payload)
            assert bridge.input_stats.snapshot()["accepted"] == {"mqtt": len(PAYLOADS)}
    finally:
        vmc.close()
