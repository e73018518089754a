"""The MQTT source lets go of a message once it is handled (issue 12, item 3): nothing refers to
the last payload while the source waits for the next message, so a huge rejected payload does
not stay in memory until more input arrives. No broker: a fake iterator stands for aiomqtt's."""

from __future__ import annotations

import asyncio
import gc
import weakref
from dataclasses import dataclass

from vadbridge.config import MqttInputConfig
from vadbridge.core.stats import InputStats
from vadbridge.core.types import VadSample
from vadbridge.inputs.mqtt import MqttSource


@dataclass
class FakeTopic:
    value: str


class FakeMessage:
    """What the source reads of an aiomqtt message; unlike bytes, it can be weakly referenced."""

    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic = FakeTopic(topic)
        self.payload = payload
        self.retain = False


class OneThenWait:
    """Yields one message, then records whether it is still alive while "waiting" for the next
    (as aiomqtt's iterator waits on its queue), then ends."""

    def __init__(self, topic: str, payload: bytes) -> None:
        message = FakeMessage(topic, payload)  # the iterator holds the only reference
        self._pending: FakeMessage | None = message
        self.taken: weakref.ref[FakeMessage] = weakref.ref(message)
        self.alive_while_waiting: bool | None = None

    def __aiter__(self) -> OneThenWait:
        return self

    async def __anext__(self) -> FakeMessage:
        if self._pending is not None:
            message, self._pending = self._pending, None
            return message
        await asyncio.sleep(0)  # the wait for the next message
        gc.collect()  # a cycle would not count as released
        self.alive_while_waiting = self.taken() is not None
        raise StopAsyncIteration


def receive(topic: str, payload: bytes, max_payload_bytes: int) -> tuple[OneThenWait, InputStats]:
    stats = InputStats()
    source = MqttSource(MqttInputConfig(), stats=stats, max_payload_bytes=max_payload_bytes)
    messages = OneThenWait(topic, payload)
    samples: list[VadSample] = []
    asyncio.run(source._receive(messages, samples.append))  # type: ignore[arg-type]
    return messages, stats


def test_an_oversize_message_is_released_before_the_source_waits_for_the_next() -> None:
    messages, stats = receive("vadbridge/default/vad", b"x" * 10_000, 4096)
    assert stats.snapshot()["rejected"] == {"oversize": 1}
    assert messages.alive_while_waiting is False


def test_an_accepted_message_is_released_before_the_source_waits_for_the_next() -> None:
    messages, stats = receive("vadbridge/default/vad", b"[0.1, 0.2, 0.3]", 4096)
    assert stats.snapshot()["accepted"] == {"mqtt": 1}
    assert messages.alive_while_waiting is False
