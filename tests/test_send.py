"""``vadbridge send``: the sweep schedule, packet builders, and the CLI over real UDP and MQTT."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import aiomqtt
import numpy as np
import pytest
from conftest import Mosquitto, free_port
from pythonosc.osc_message import OscMessage

from vadbridge.commands import main as cli_main
from vadbridge.core.osc_codec import decode_packet
from vadbridge.inputs.parse import parse_mqtt, parse_osc_message
from vadbridge.model.emotions import BASIC_EMOTIONS, emotion_to_vad
from vadbridge.tools import send
from vadbridge.tools.send import (
    DEFAULT_TOUR,
    mqtt_emotion_message,
    mqtt_vad_message,
    osc_emotion_packet,
    osc_vad_packet,
    sweep_schedule,
)

TIMEOUT_S = 10.0  # only bounds a failing test; nothing here asserts on time


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    send.add_parser(parser.add_subparsers())
    args = parser.parse_args(["send", *argv])
    status: int = args.func(args)
    return status


# --- the sweep schedule -----------------------------------------------------------------------


def test_the_default_tour_visits_every_basic_emotion_from_and_back_to_neutral() -> None:
    assert DEFAULT_TOUR[0] == DEFAULT_TOUR[-1] == "neutral"
    assert set(DEFAULT_TOUR) == set(BASIC_EMOTIONS)
    assert len(DEFAULT_TOUR) == len(BASIC_EMOTIONS) + 1


def test_sweep_samples_at_the_rate_from_zero_to_the_end_of_the_tour() -> None:
    schedule = sweep_schedule()
    stops = len(DEFAULT_TOUR)
    total_s = stops * 1.5 + (stops - 1) * 1.0
    times = [t for t, _ in schedule]
    assert times[0] == 0.0 and times[-1] == pytest.approx(total_s)
    assert len(schedule) == round(total_s * 30) + 1
    np.testing.assert_allclose(np.diff(times), 1 / 30, rtol=1e-9)


def test_sweep_holds_each_stop_exactly() -> None:
    schedule = dict(sweep_schedule(hold_s=1.5, transition_s=1.0, rate_hz=10.0))
    for index, stop in enumerate(DEFAULT_TOUR):
        start_s = index * 2.5
        for t in (start_s, start_s + 0.5, start_s + 1.5):
            key = round(t * 10) / 10
            np.testing.assert_array_equal(schedule[key], emotion_to_vad(stop), err_msg=f"{t}")


def test_sweep_transitions_ease_through_the_midpoint_without_jumps() -> None:
    schedule = sweep_schedule(["happiness", "sadness"], hold_s=1.0, transition_s=1.0, rate_hz=10)
    by_time = dict(schedule)
    happy, sad = emotion_to_vad("happiness"), emotion_to_vad("sadness")
    np.testing.assert_allclose(by_time[1.5], (happy + sad) / 2, atol=1e-6)  # smoothstep(0.5)
    # Eased: the first step out of the hold is smaller than a linear ramp's.
    linear_step = np.abs(sad - happy) / 10
    assert np.all(np.abs(by_time[1.1] - happy) < linear_step)
    steps = np.abs(np.diff(np.stack([vad for _, vad in schedule]), axis=0))
    assert steps.max() <= 1.5 * linear_step.max() + 1e-6  # smoothstep peaks at 1.5x linear
    assert schedule[-1][0] == 3.0
    np.testing.assert_array_equal(schedule[-1][1], sad)


def test_sweep_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="at least one stop"):
        sweep_schedule([])
    with pytest.raises(ValueError, match="rate_hz"):
        sweep_schedule(rate_hz=0)
    with pytest.raises(ValueError, match="unknown emotion"):
        sweep_schedule(["neutral", "hapiness_x"])


# --- packets and payloads: exactly what the bridge's parsers accept ---------------------------


def test_osc_vad_packet_is_slash_vad_with_three_floats() -> None:
    message = OscMessage(osc_vad_packet([0.25, -0.5, 1.0]))  # python-osc's own parser
    assert message.address == "/vad"
    assert message.params == [0.25, -0.5, 1.0]
    parsed = parse_osc_message(*decode_packet(osc_vad_packet([0.25, -0.5, 1.0], "bob"))[0])
    assert parsed.sample.avatar == "bob" and parsed.sample.vad == (0.25, -0.5, 1.0)


def test_osc_emotion_packet_is_name_and_intensity() -> None:
    message = OscMessage(osc_emotion_packet("happiness", 0.5, "bob"))
    assert message.address == "/avatar/bob/emotion"
    assert message.params == ["happiness", 0.5]
    parsed = parse_osc_message(message.address, tuple(message.params))
    expected = emotion_to_vad("happiness", 0.5).tolist()
    assert parsed.sample.vad == pytest.approx(expected, abs=1e-7)


def test_mqtt_payloads_are_what_the_bridge_parses() -> None:
    topic, payload = mqtt_vad_message([0.1, 0.2, -0.3], "bob", "studio")
    assert topic == "studio/bob/vad"
    assert json.loads(payload) == {"valence": 0.1, "arousal": 0.2, "dominance": -0.3}
    parsed = parse_mqtt(topic, payload, topic_prefix="studio", max_payload_bytes=4096)
    assert parsed.sample.vad == pytest.approx((0.1, 0.2, -0.3))

    topic, payload = mqtt_emotion_message("fear", 0.75, "bob")
    assert topic == "vadbridge/bob/emotion"
    assert json.loads(payload) == {"emotion": "fear", "intensity": 0.75}
    parsed = parse_mqtt(topic, payload, topic_prefix="vadbridge", max_payload_bytes=4096)
    assert parsed.sample.vad == pytest.approx(emotion_to_vad("fear", 0.75).tolist(), abs=1e-7)


# --- the CLI over a real UDP socket -----------------------------------------------------------


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT_S)
    yield sock
    sock.close()


def _address(sock: socket.socket) -> str:
    return f"127.0.0.1:{sock.getsockname()[1]}"


def test_send_vad_over_osc(udp_receiver: socket.socket) -> None:
    assert run_cli(["--vad", "0.5", "-0.25", "0", "--osc", _address(udp_receiver)]) == 0
    assert decode_packet(udp_receiver.recv(1024)) == [("/vad", (0.5, -0.25, 0.0))]


def test_send_emotion_to_an_avatar_over_osc(udp_receiver: socket.socket) -> None:
    argv = ["--emotion", " Happy ", "--intensity", "0.5", "--avatar", "bob"]
    assert run_cli([*argv, "--osc", _address(udp_receiver)]) == 0
    assert decode_packet(udp_receiver.recv(1024)) == [("/avatar/bob/emotion", ("Happy", 0.5))]


def test_send_sweep_over_osc_streams_the_schedule_in_order(udp_receiver: socket.socket) -> None:
    expected = sweep_schedule()
    received: list[bytes] = []

    def drain() -> None:  # keep the socket buffer empty while the sweep streams
        while len(received) < len(expected):
            received.append(udp_receiver.recv(1024))

    thread = threading.Thread(target=drain)
    thread.start()
    try:
        assert run_cli(["--sweep", "--speed", "400", "--osc", _address(udp_receiver)]) == 0
    finally:
        thread.join(TIMEOUT_S)
    assert not thread.is_alive()
    values = []
    for data in received:
        ((address, args),) = decode_packet(data)
        assert address == "/vad"
        values.append(args)
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), [v for _, v in expected])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_an_unknown_emotion_exits_2_with_the_close_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["send", "--emotion", "hapiness"]) == 2
    err = _one_line_error(capsys)
    assert "unknown emotion 'hapiness'" in err and "happiness" in err
    assert "`vadbridge infer --list-emotions` lists them all" in err


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--vad", "0", "0", "0", "--mqtt", "127.0.0.1:1883"], "--mqtt needs --avatar"),
        (["--vad", "0", "0", "0", "--intensity", "0.5"], "--intensity needs --emotion"),
        (["--emotion", "fear", "--intensity", "1.5"], "intensity must be finite and in [0, 1]"),
        (["--vad", "0", "0", "0", "--speed", "2"], "--speed only applies with --sweep"),
    ],
)
def test_inconsistent_arguments_exit_2_with_a_reason(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["send", *argv]) == 2
    assert reason in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--vad", "0", "1.5", "0"], "VAD values must be in [-1, 1]"),
        (["--vad", "0", "0", "0", "--osc", "nowhere"], "expected HOST:PORT"),
        (["--vad", "0", "0", "0", "--avatar", "a b"], "invalid avatar id"),
        (["--vad", "0", "0", "0", "--emotion", "fear"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["send", *argv])
    assert exit_info.value.code == 2
    assert reason in _one_line_error(capsys)


# --- the CLI over a real mosquitto ------------------------------------------------------------


async def _collect(broker: Mosquitto, argv: list[str], count: int) -> tuple[int, list[Any]]:
    """Subscribe to vadbridge/#, run ``send`` in a thread, return its status and messages."""
    received: list[Any] = []
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe("vadbridge/#", qos=1)
        status = await asyncio.to_thread(run_cli, argv)

        async def gather() -> None:
            async for message in client.messages:
                received.append((str(message.topic), message.payload))
                if len(received) == count:
                    return

        await asyncio.wait_for(gather(), TIMEOUT_S)
    return status, received


def test_send_vad_over_mqtt(mosquitto: Mosquitto) -> None:
    argv = [
        "--vad",
        "0.5",
        "0.25",
        "-1",
        "--mqtt",
        f"127.0.0.1:{mosquitto.port}",
        "--avatar",
        "bob",
    ]
    status, received = asyncio.run(_collect(mosquitto, argv, 1))
    assert status == 0
    ((topic, payload),) = received
    assert topic == "vadbridge/bob/vad"
    assert json.loads(payload) == {"valence": 0.5, "arousal": 0.25, "dominance": -1.0}


def test_send_emotion_over_mqtt(mosquitto: Mosquitto) -> None:
    argv = ["--emotion", "anger", "--intensity", "0.3", "--avatar", "bob"]
    status, received = asyncio.run(
        _collect(mosquitto, [*argv, "--mqtt", f"127.0.0.1:{mosquitto.port}"], 1)
    )
    assert status == 0
    assert received == [("vadbridge/bob/emotion", b'{"emotion": "anger", "intensity": 0.3}')]


def test_send_sweep_over_mqtt_publishes_the_whole_schedule(mosquitto: Mosquitto) -> None:
    expected = sweep_schedule()
    argv = ["--sweep", "--speed", "400", "--avatar", "bob", "--mqtt", f"127.0.0.1:{mosquitto.port}"]
    status, received = asyncio.run(_collect(mosquitto, argv, len(expected)))
    assert status == 0
    assert {topic for topic, _ in received} == {"vadbridge/bob/vad"}
    values = [list(json.loads(payload).values()) for _, payload in received]
    np.testing.assert_allclose(values, [v for _, v in expected], rtol=1e-7)


def test_an_unreachable_broker_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert run_cli(["--vad", "0", "0", "0", "--avatar", "bob", "--mqtt", f"127.0.0.1:{port}"]) == 1
    err = _one_line_error(capsys)
    assert err.startswith(f"vadbridge send: cannot send to MQTT broker 127.0.0.1:{port}")
