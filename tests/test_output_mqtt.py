"""MqttSink: pure topic/payload helpers, then publishing to a real mosquitto (conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import aiomqtt
import numpy as np
import pytest
from conftest import Mosquitto

from vadbridge.config import ConfigError, MqttOutputConfig, parse_config
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.outputs.mqtt import MqttSink, format_payload, resolve_topic

TIMEOUT_S = 10.0  # only bounds a failing test; nothing here asserts on time
WEIGHTS = np.random.default_rng(5).random(52, dtype=np.float32)


def rounded(weights: np.ndarray) -> list[float]:
    return [round(float(x), 4) for x in weights]


# --- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template", ["vadbridge/<avatar>/blendshapes", "vadbridge/{avatar}/blendshapes"]
)
def test_the_topic_names_the_avatar(template: str) -> None:
    assert resolve_topic(template, "bob") == "vadbridge/bob/blendshapes"


def test_a_topic_without_placeholder_is_used_as_is() -> None:
    assert resolve_topic("studio/face", "bob") == "studio/face"


@pytest.mark.parametrize(
    ("template", "avatar", "match"),
    [
        ("vadbridge/+/blendshapes", "bob", "wildcards"),
        ("vadbridge/#", "bob", "wildcards"),
        ("", "bob", "non-empty"),
        ("vadbridge/<avatar>", "bad avatar", "invalid avatar id"),
    ],
)
def test_unusable_topics_are_rejected(template: str, avatar: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_topic(template, avatar)


def test_payload_holds_time_frame_and_the_52_rounded_values_in_model_order() -> None:
    data = json.loads(format_payload(WEIGHTS, 42, 1.25))
    assert list(data) == ["t", "frame", "blendshapes"]
    assert data["t"] == 1.25 and data["frame"] == 42
    assert list(data["blendshapes"]) == list(ARKIT_NAMES)
    assert list(data["blendshapes"].values()) == rounded(WEIGHTS)


def test_payload_stays_valid_json_for_non_finite_values() -> None:
    weights = np.zeros(52, dtype=np.float32)
    weights[3] = np.nan
    data = json.loads(format_payload(weights, 0, 0.0))
    assert data["blendshapes"][ARKIT_NAMES[3]] == 0.0


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("rate_hz: 0", "rate_hz"),
        ("protocol: 3", "protocol"),
        ("password: secret", "password"),
        ("port: 0", "port"),
    ],
)
def test_bad_settings_are_refused_when_the_config_loads(entry: str, key: str) -> None:
    """The sink takes its settings from a validated config: the checks live there, once."""
    with pytest.raises(ConfigError) as caught:
        parse_config(f"outputs: [{{type: mqtt, {entry}}}]\n", "bridge.yaml")
    assert caught.value.key_path == f"outputs[0].{key}"


# --- against a real broker --------------------------------------------------------------------


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 60.0))


class Subscriber:
    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client

    async def next(self) -> dict[str, Any]:
        async def _next() -> dict[str, Any]:
            async for message in self.client.messages:
                assert isinstance(message.payload, bytes)
                data: dict[str, Any] = json.loads(message.payload)
                data["_topic"] = str(message.topic)
                return data
            raise AssertionError("subscription ended")

        return await asyncio.wait_for(_next(), TIMEOUT_S)


@asynccontextmanager
async def subscriber(broker: Mosquitto, topic: str) -> AsyncIterator[Subscriber]:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic)
        yield Subscriber(client)


@asynccontextmanager
async def running(sink: MqttSink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sink.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # an exception other than the cancellation fails the test


def sink_for(broker: Mosquitto, *, name: str = "mqtt-out", **options: Any) -> MqttSink:
    """A sink for ``broker``; ``options`` are its config entry's keys, as in a config file."""
    options.setdefault("avatar", "bob")
    return MqttSink(MqttOutputConfig(host=broker.host, port=broker.port, **options), name=name)


async def until(predicate: Callable[[], bool]) -> None:
    async def _poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(_poll(), TIMEOUT_S)


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_subscriber_receives_the_frame_as_json(
    mosquitto: Mosquitto, protocol: Literal[4, 5]
) -> None:
    async def scenario() -> None:
        sink = sink_for(mosquitto, protocol=protocol)
        async with subscriber(mosquitto, "vadbridge/+/blendshapes") as sub, running(sink):
            await asyncio.wait_for(sink.wait_connected(), TIMEOUT_S)
            sink.send(Frame(WEIGHTS, 7, 0.5))
            data = await sub.next()
        assert data["_topic"] == "vadbridge/bob/blendshapes"
        assert data["frame"] == 7 and data["t"] == 0.5
        assert list(data["blendshapes"]) == list(ARKIT_NAMES)
        assert list(data["blendshapes"].values()) == rounded(WEIGHTS)
        assert sink.frames_published == 1 and sink.send_errors == 0

    run(scenario())


def test_send_keeps_only_the_newest_frame(mosquitto: Mosquitto) -> None:
    async def scenario() -> None:
        sink = sink_for(mosquitto)
        async with subscriber(mosquitto, "vadbridge/#") as sub, running(sink):
            await asyncio.wait_for(sink.wait_connected(), TIMEOUT_S)
            row = np.zeros(52, dtype=np.float32)
            for frame in range(50):  # no await in between: the publisher cannot run
                row[:] = frame / 100
                sink.send(Frame(row, frame, frame / 60))
            row[:] = 0.9  # the caller reuses its buffer: the sink must have copied
            first = await sub.next()
            sink.send(Frame(WEIGHTS, 100, 2.0))
            second = await sub.next()
        assert first["frame"] == 49
        assert set(first["blendshapes"].values()) == {0.49}
        assert second["frame"] == 100

    run(scenario())


def test_frames_within_one_rate_period_are_coalesced_and_close_flushes_the_last(
    mosquitto: Mosquitto,
) -> None:
    async def scenario() -> None:
        sink = sink_for(mosquitto, rate_hz=0.1)  # one publish per 10 s
        async with subscriber(mosquitto, "vadbridge/#") as sub, running(sink) as task:
            await asyncio.wait_for(sink.wait_connected(), TIMEOUT_S)
            sink.send(Frame(WEIGHTS, 1, 0.0))
            first = await sub.next()
            sink.send(Frame(WEIGHTS, 2, 0.1))
            await asyncio.sleep(0.05)  # the publisher is now waiting out the rate period
            sink.send(Frame(np.zeros(52, dtype=np.float32), 3, 0.2))  # the daemon's neutral frame
            sink.close()
            second = await sub.next()
            await asyncio.wait_for(task, TIMEOUT_S)  # run() returns by itself after close()
        assert (first["frame"], second["frame"]) == (1, 3)
        assert set(second["blendshapes"].values()) == {0.0}
        assert sink.frames_published == 2 and not sink.connected

    run(scenario())


def test_the_sink_connects_once_the_broker_comes_up_and_counts_the_failures(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    mosquitto.stop()

    async def scenario() -> None:
        sink = sink_for(mosquitto, reconnect_max_s=0.1)
        with caplog.at_level(logging.WARNING, logger="vadbridge.outputs"):
            async with running(sink):
                await until(lambda: sink.send_errors >= 3)
                sink.send(Frame(WEIGHTS, 5, 1.0))  # stored while the broker is away
                await asyncio.to_thread(mosquitto.start)
                await asyncio.wait_for(sink.wait_connected(), TIMEOUT_S)
                async with subscriber(mosquitto, "vadbridge/#") as sub:
                    sink.send(Frame(WEIGHTS, 6, 1.1))
                    data = await sub.next()
        assert data["frame"] == 6
        unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(unavailable) == 1  # logged once per outage, then only counted

    run(scenario())


def test_the_sink_reconnects_after_a_broker_restart(mosquitto: Mosquitto) -> None:
    async def scenario() -> None:
        sink = sink_for(mosquitto, reconnect_max_s=0.1)
        async with running(sink):
            await asyncio.wait_for(sink.wait_connected(), TIMEOUT_S)
            await asyncio.to_thread(mosquitto.stop)
            await until(lambda: not sink.connected)
            await asyncio.to_thread(mosquitto.start)
            await asyncio.wait_for(sink.wait_connected(), TIMEOUT_S)
            async with subscriber(mosquitto, "vadbridge/#") as sub:
                sink.send(Frame(WEIGHTS, 9, 3.0))
                data = await sub.next()
        assert data["frame"] == 9
        assert sink.send_errors >= 1

    run(scenario())
