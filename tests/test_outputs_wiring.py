"""The new outputs end to end: config -> wiring -> a real bridge -> real receivers.

Record (Live Link Face CSV), MQTT (a real mosquitto and subscriber), VMC with VRM presets
(decoded with python-osc) and the liveliness stage (blinks on the wire, left == right).
"""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import time
from pathlib import Path
from typing import Any

import aiomqtt
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
from conftest import Mosquitto, free_port
from models import FLOAT32_PATH_ATOL, seeded_checkpoint

from vadbridge.config import (
    ConfigError,
    MqttOutputConfig,
    RecordOutputConfig,
    TlsConfig,
    load_config,
    parse_config,
)
from vadbridge.core.types import VadSample
from vadbridge.model.arkit import ARKIT_NAMES, MIRROR_PAIRS, symmetrize_inplace, upper_camel
from vadbridge.model.checkpoint import load_engine
from vadbridge.model.emotions import emotion_to_vad
from vadbridge.outputs import VmcEncoder
from vadbridge.outputs.mqtt import MqttSink
from vadbridge.outputs.record import CSV_BLENDSHAPE_NAMES, RecordSink, csv_header
from vadbridge.outputs.udp import UdpSink
from vadbridge.outputs.vrm import VRM0_PRESET_NAMES, VrmVmcEncoder, preset_weights
from vadbridge.reload import Reloader
from vadbridge.wiring import build_bridge

PERFECT_SYNC = [upper_camel(name) for name in ARKIT_NAMES]
VAL, APPLY = "/VMC/Ext/Blend/Val", "/VMC/Ext/Blend/Apply"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random model (until the bundled checkpoint exists)."""
    return seeded_checkpoint(tmp_path_factory.mktemp("model") / "random.npz", seed=0)


def bridge_yaml(checkpoint: Path, outputs: str, extra: str = "", osc_port: int | None = None,
                ) -> str:
    inputs = f"[{{type: osc, host: 127.0.0.1, port: {osc_port}}}]" if osc_port else "[]"
    # idle_refresh_hz 0: every frame to every output (tests read the latest frame received).
    return (f"stats_interval_s: 0\nidle_refresh_hz: 0\nmodel: {{checkpoint: {checkpoint}}}\n"
            f"smoothing: {{tau_ms: 50}}\ninputs: {inputs}\noutputs:\n{outputs}\n{extra}")


# ---------------------------------------------------------------- config of the new outputs


def test_a_record_output_defaults_to_take_csv_beside_the_config(tmp_path: Path) -> None:
    config = parse_config("outputs: [{type: record}]\n", str(tmp_path / "c.yaml"))
    assert config.outputs == (RecordOutputConfig(path=str(tmp_path / "take.csv")),)


def test_a_record_path_in_a_missing_directory_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("outputs: [{type: record, path: nowhere/take.csv}]\n", str(tmp_path / "c"))
    assert caught.value.key_path == "outputs[0].path"
    assert "existing directory" in caught.value.expected


def test_two_recordings_to_one_file_are_rejected(tmp_path: Path) -> None:
    text = "outputs:\n  - {type: record, path: a.csv}\n  - {type: record, path: ./a.csv}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, str(tmp_path / "c.yaml"))
    assert (caught.value.key_path, caught.value.line) == ("outputs[1].path", 3)


def test_an_mqtt_output_reads_topic_credentials_and_tls() -> None:
    text = ("outputs:\n  - {type: mqtt, topic: 'stage/<avatar>/face', rate_hz: 20, protocol: 4,"
            " username: u, password_env: PW, tls: {}}\n")
    (output,) = parse_config(text, "c.yaml", environ={"PW": "secret"}).outputs
    assert output == MqttOutputConfig(topic="stage/<avatar>/face", rate_hz=20.0, protocol=4,
                                      username="u", password="secret", password_env="PW",
                                      tls=TlsConfig())
    assert "secret" not in repr(output)


@pytest.mark.parametrize(("entry", "key_path", "expected"), [
    ("{type: mqtt, topic: 'a/#'}", "outputs[0].topic", "no wildcards"),
    ("{type: mqtt, topic: '$SYS/x'}", "outputs[0].topic", "not starting with '$'"),
    ("{type: mqtt, password: p}", "outputs[0].password", "username to be set"),
    ("{type: mqtt, rate_hz: 0}", "outputs[0].rate_hz", "0.1..1000"),
    ("{type: mqtt, protocol: 3}", "outputs[0].protocol", "MQTT 3.1.1"),
    ("{type: vmc, arkit: false}", "outputs[0].arkit", "vrm_presets vrm0 or vrm1"),
    ("{type: vmc, vrm_presets: vrm2}", "outputs[0].vrm_presets", "none, vrm0, vrm1"),
])
def test_bad_new_output_settings_name_the_key(entry: str, key_path: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"outputs:\n  - {entry}\n", "c.yaml", environ={})
    assert (caught.value.key_path, caught.value.line) == (key_path, 2)
    assert expected in caught.value.expected


# ---------------------------------------------------------------- wiring


def test_wiring_builds_the_sink_each_output_asks_for(checkpoint: Path, tmp_path: Path) -> None:
    outputs = (f"  - {{type: record, path: {tmp_path / 'take.csv'}}}\n"
               "  - {type: mqtt, port: 1}\n"
               "  - {type: vmc, port: 9}\n"
               "  - {type: vmc, port: 9, vrm_presets: vrm1, arkit: false}\n")
    bridge = build_bridge(config_from_yaml(bridge_yaml(checkpoint, outputs)))
    try:
        sinks = [binding.sink for binding in bridge.bindings]
        assert [type(sink) for sink in sinks] == [RecordSink, MqttSink, UdpSink, UdpSink]
        assert isinstance(sinks[2], UdpSink) and type(sinks[2].encoder) is VmcEncoder
        assert isinstance(sinks[3], UdpSink) and isinstance(sinks[3].encoder, VrmVmcEncoder)
        assert sinks[3].encoder.names == ("happy", "angry", "sad", "relaxed", "surprised", "blink")
        assert bridge.liveliness is None  # off by default: frames go out without a copy
    finally:
        for sink in bridge.sinks:
            sink.close()


# ---------------------------------------------------------------- real bridges


def test_a_record_output_writes_live_link_face_csv_rows(checkpoint: Path, tmp_path: Path) -> None:
    take = tmp_path / "take.csv"
    config = config_from_yaml(bridge_yaml(checkpoint, f"  - {{type: record, path: {take}}}"))
    with running_bridge(config) as bridge:
        sink = bridge.bindings[0].sink
        time.sleep(0.3)  # let ~18 frames go by
    assert isinstance(sink, RecordSink) and sink.closed
    lines = take.read_text(encoding="utf-8").splitlines()
    assert lines[0] == csv_header()
    rows = list(csv.reader(lines[1:]))
    assert len(rows) == sink.frames_written >= 10
    for row in rows:
        assert len(row) == 63 and row[1] == "61"
        values = [float(v) for v in row[2:]]
        assert len(values) == 61 and all(0.0 <= v <= 1.0 for v in values)
        by_name = dict(zip(CSV_BLENDSHAPE_NAMES, values, strict=False))
        for left, right in MIRROR_PAIRS:
            assert by_name[PERFECT_SYNC[left]] == by_name[PERFECT_SYNC[right]]
    assert any(float(v) > 0 for v in rows[0][2:54])  # the model's face, not all zeros
    assert [float(v) for v in rows[-1][2:]] == [0.0] * 61  # closed with the neutral frame


async def _subscribe(broker: Mosquitto, topic: str, count: int) -> list[dict[str, Any]]:
    payloads: list[dict[str, Any]] = []
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                payloads.append(json.loads(message.payload))
                if len(payloads) == count:
                    break
    return payloads


@pytest.mark.parametrize("protocol", [4, 5])
def test_an_mqtt_output_publishes_json_frames(checkpoint: Path, mosquitto: Mosquitto,
                                              protocol: int) -> None:
    output = (f"  - {{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}, protocol: {protocol},"
              " avatar: npc-1, topic: 'stage/<avatar>/face', rate_hz: 30}")
    config = config_from_yaml(bridge_yaml(checkpoint, output, "avatars: {ids: [npc-1]}"))
    with running_bridge(config):
        payloads = asyncio.run(_subscribe(mosquitto, "stage/npc-1/face", 5))
    frames = [payload["frame"] for payload in payloads]
    assert frames == sorted(frames) and len(set(frames)) == 5
    for payload in payloads:
        assert set(payload) == {"t", "frame", "blendshapes"}
        shapes = payload["blendshapes"]
        assert isinstance(shapes, dict) and list(shapes) == list(ARKIT_NAMES)
        assert all(0.0 <= value <= 1.0 for value in shapes.values())
        assert shapes["eyeBlinkLeft"] == shapes["eyeBlinkRight"]


def test_a_vmc_output_sends_vrm_presets_before_apply(checkpoint: Path, vmc: UdpReceiver) -> None:
    osc_port = free_port(socket.SOCK_DGRAM)
    output = f"  - {{type: vmc, host: 127.0.0.1, port: {vmc.port}, vrm_presets: vrm0}}"
    with running_bridge(config_from_yaml(bridge_yaml(checkpoint, output, osc_port=osc_port))):
        calm = decode_vmc(vmc.receive(0.2)[-1][1])
        send_osc(osc_port, osc("/emotion", "happiness", 1.0))
        vmc.receive(0.5)  # 10 time constants: the state has arrived
        happy = decode_vmc(vmc.receive(0.1)[-1][1])
    for messages in (calm, happy):
        addresses = [address for address, _ in messages]
        assert addresses[:58] == [VAL] * 57 + [APPLY]
        assert [params[0] for _, params in messages[:57]] == PERFECT_SYNC + list(VRM0_PRESET_NAMES)
    presets: dict[Any, Any] = {params[0]: params[1] for _, params in happy[52:57]}
    assert presets["Joy"] > 0.9 and presets["Angry"] < 0.05 and presets["Sorrow"] < 1e-6
    assert {params[1] for _, params in calm[52:57]} == {0.0}  # neutral VAD: no expression


def test_vrm_presets_follow_the_smoothed_vad_on_kept_and_new_outputs_after_a_reload(
    checkpoint: Path, tmp_path: Path, vmc: UdpReceiver
) -> None:
    """The presets come from the frame's VAD, which glides in either smoothing space: after a
    reload to ``blendshapes`` the kept output and the one the reload added both show the same
    half-way presets, then the full ones."""
    path = tmp_path / "bridge.yaml"
    vrm0 = f"  - {{type: vmc, host: 127.0.0.1, port: {vmc.port}, vrm_presets: vrm0}}\n"
    text = bridge_yaml(checkpoint, vrm0)
    path.write_text(text)
    config = load_config(path)
    bridge = build_bridge(config)
    kept_sink = bridge.bindings[0].sink
    path.write_text(text.replace("{tau_ms: 50}", "{tau_ms: 50, space: blendshapes}")
                    + vrm0.replace("vrm0", "vrm1"))
    result = asyncio.run(Reloader(bridge, path, config).reload())
    try:
        assert result.error is None and "smoothing" in result.changed
        assert bridge.animator.space == "blendshapes"
        assert bridge.bindings[0].sink is kept_sink and len(bridge.bindings) == 2
        happiness = emotion_to_vad("happiness")
        bridge.on_sample(VadSample("default", tuple(float(v) for v in happiness)), source="osc")

        def presets_after(steps: int) -> tuple[float, float]:
            for _ in range(steps):
                bridge.animator.step(1 / 60)
            bridge.send_frame(1, 1.0)
            datagrams = [data for _, data in vmc.receive(0.2)]
            values = [vmc_frame_values(data) for data in datagrams]
            assert len(values) == 2
            joy = next(v["Joy"] for v in values if "Joy" in v)
            happy = next(v["happy"] for v in values if "happy" in v)
            return joy, happy

        full = float(preset_weights(happiness)[0])
        joy, happy = presets_after(1)  # alpha = 1 - exp(-(1/60) / 0.05) = 0.28 of the way
        assert joy == happy and 0.05 < joy < 0.9 * full
        joy, happy = presets_after(60)  # 20 time constants: arrived
        assert joy == happy == pytest.approx(full, abs=1e-5)
    finally:
        for binding in bridge.bindings:
            binding.sink.close()


def test_liveliness_blinks_on_the_wire_with_both_eyes_equal(checkpoint: Path,
                                                            vmc: UdpReceiver) -> None:
    output = f"  - {{type: vmc, host: 127.0.0.1, port: {vmc.port}}}"
    lively = "liveliness: {blink: true, breathing: true, blink_interval_s: [0.5, 1.0], seed: 7}"
    with running_bridge(config_from_yaml(bridge_yaml(checkpoint, output, lively))) as bridge:
        datagrams = vmc.receive(2.5)
    frames = [decode_vmc(data) for _, data in datagrams[:-1]]  # the last may be neutral
    values = np.array([[params[1] for _, params in messages[:52]] for messages in frames])
    blink_left = values[:, PERFECT_SYNC.index("EyeBlinkLeft")]
    assert blink_left.max() > 0.5 and blink_left.min() < 0.2  # closes and reopens
    for left, right in MIRROR_PAIRS:
        assert np.array_equal(values[:, left], values[:, right])  # exact, on the wire
    # The stage works on a copy: the table still holds the model's own output.
    engine, _ = load_engine(checkpoint)
    model_face = engine.forward(bridge.table.state_vad[:1])
    symmetrize_inplace(model_face)
    np.testing.assert_allclose(bridge.table.weights[:1], model_face, rtol=0,
                               atol=FLOAT32_PATH_ATOL)  # two inference paths (tests/models.py)
