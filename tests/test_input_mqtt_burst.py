"""MQTT input under a burst (issue 12, item 1) and cleared retained values (item 14).

The incoming queue keeps every message while the reader keeps up; once full, older unread
values give way to newer ones of the same topic, each counted as ``mqtt.superseded``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

import aiomqtt
import pytest
from conftest import Mosquitto
from source_harness import TIMEOUT_S, Collector, run, running, until

from vadbridge.config import MqttInputConfig
from vadbridge.core.stats import InputStats
from vadbridge.core.types import VadSample
from vadbridge.inputs.mqtt import MqttSource, _NewestWinsQueue

BURST = 5000
AIOMQTT_QUEUE_FULL = "Message queue is full"


def message(topic: str, payload: bytes) -> aiomqtt.Message:
    return aiomqtt.Message(topic, payload, qos=0, retain=False, mid=0, properties=None)


class RecordingQueue(_NewestWinsQueue):
    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self.drops: list[tuple[str, str]] = []

    def _dropped(self, kind: str, topic: str) -> None:
        self.drops.append((kind, topic))


def drain(queue: asyncio.Queue[aiomqtt.Message]) -> list[tuple[str, bytes]]:
    out = []
    while not queue.empty():
        item = queue.get_nowait()
        out.append((item.topic.value, bytes(item.payload)))  # type: ignore[arg-type]
    return out


def test_queue_below_its_bound_keeps_every_message_in_order() -> None:
    queue = RecordingQueue(maxsize=4)
    for payload in (b"1", b"2", b"3"):
        queue.put_nowait(message("p/a/vad", payload))
    assert drain(queue) == [("p/a/vad", b"1"), ("p/a/vad", b"2"), ("p/a/vad", b"3")]
    assert queue.drops == []


def test_full_queue_replaces_the_oldest_value_of_the_new_messages_topic() -> None:
    queue = RecordingQueue(maxsize=3)
    for topic, payload in [("p/a/vad", b"a1"), ("p/b/vad", b"b1"), ("p/a/vad", b"a2")]:
        queue.put_nowait(message(topic, payload))
    queue.put_nowait(message("p/b/vad", b"b2"))
    assert queue.drops == [("mqtt.superseded", "p/b/vad")]
    assert drain(queue) == [("p/a/vad", b"a1"), ("p/a/vad", b"a2"), ("p/b/vad", b"b2")]


def test_full_queue_makes_room_for_a_new_topic_from_a_topic_with_a_newer_value() -> None:
    queue = RecordingQueue(maxsize=3)
    for payload in (b"a1", b"a2", b"a3"):
        queue.put_nowait(message("p/a/vad", payload))
    queue.put_nowait(message("p/b/vad", b"b1"))
    assert queue.drops == [("mqtt.superseded", "p/a/vad")]
    assert drain(queue) == [("p/a/vad", b"a2"), ("p/a/vad", b"a3"), ("p/b/vad", b"b1")]


def test_full_queue_of_distinct_topics_drops_a_new_topic_as_overflow() -> None:
    queue = RecordingQueue(maxsize=2)
    queue.put_nowait(message("p/a/vad", b"a1"))
    queue.put_nowait(message("p/b/vad", b"b1"))
    queue.put_nowait(message("p/c/vad", b"c1"))  # never raises QueueFull
    queue.put_nowait(message("p/a/vad", b"a2"))  # a known topic still gets its newest value in
    assert queue.drops == [("mqtt.overflow", "p/c/vad"), ("mqtt.superseded", "p/a/vad")]
    assert drain(queue) == [("p/b/vad", b"b1"), ("p/a/vad", b"a2")]


def source_for(broker: Mosquitto, stats: InputStats, protocol: int = 5) -> MqttSource:
    config = MqttInputConfig(host=broker.host, port=broker.port, protocol=protocol)
    return MqttSource(config, stats=stats, max_payload_bytes=4096)


async def mosquitto_pub(broker: Mosquitto, *args: str, stdin: bytes | None = None) -> None:
    """Publish from another process (``mosquitto_pub``), as fast as it can send."""
    binary = shutil.which("mosquitto_pub")
    assert binary is not None, "mosquitto_pub (package mosquitto-clients) is needed"
    process = await asyncio.create_subprocess_exec(
        binary, "-h", broker.host, "-p", str(broker.port), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.wait_for(process.communicate(stdin), TIMEOUT_S)
    assert process.returncode == 0


def lines(payloads: list[str]) -> bytes:
    """``mosquitto_pub -l`` input: one QoS-0 message per line."""
    return "".join(f"{payload}\n" for payload in payloads).encode()


def counted(stats: InputStats) -> int:
    snapshot = stats.snapshot()
    return sum(snapshot["accepted"].values()) + sum(snapshot["rejected"].values())


def test_a_burst_keeps_the_newest_value_per_avatar_and_counts_every_superseded_message(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    stats = InputStats()
    burst = [f"{i / BURST:.4f} 0 0" for i in range(1, BURST + 1)]
    few = ["0.1 0.1 0.1", "0.2 0.2 0.2", "0.3 0.3 0.3"]

    async def main() -> list[VadSample]:
        source = source_for(mosquitto, stats)
        collector = Collector()
        async with running(source, collector):
            await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
            # QoS 0 from a separate process: faster than the source reads (one packet per
            # loop turn), so aiomqtt's queue of 1000 fills.
            await mosquitto_pub(mosquitto, "-t", "vadbridge/a/vad", "-l", stdin=lines(burst))
            await mosquitto_pub(mosquitto, "-t", "vadbridge/b/vad", "-l", stdin=lines(few))
            await until(lambda: counted(stats) == BURST + len(few))
            await asyncio.sleep(0.2)  # nothing more arrives
        return collector.samples

    with caplog.at_level(logging.DEBUG):
        samples = asyncio.run(asyncio.wait_for(main(), 60.0))
    snapshot = stats.snapshot()
    superseded = snapshot["rejected"].get("mqtt.superseded", 0)
    assert snapshot["rejected"] == ({"mqtt.superseded": superseded} if superseded else {})
    assert snapshot["accepted"]["mqtt"] + superseded == BURST + len(few)
    assert superseded > 0, "the burst did not fill the queue: the test tests nothing"
    last = {sample.avatar: sample.vad for sample in samples}
    assert last == {"a": (1.0, 0.0, 0.0), "b": (0.3, 0.3, 0.3)}
    assert [s.vad for s in samples if s.avatar == "b"][-1] == (0.3, 0.3, 0.3)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if AIOMQTT_QUEUE_FULL in m]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "mqtt.superseded" in warnings[0]  # one line per interval


def test_an_empty_retained_message_is_counted_as_cleared_without_a_warning(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    stats = InputStats()

    async def main() -> None:
        source = source_for(mosquitto, stats)
        collector = Collector()
        async with running(source, collector):
            await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
            await mosquitto_pub(mosquitto, "-t", "vadbridge/a/vad", "-r", "-m", "0.5 0.5 0.5")
            await mosquitto_pub(mosquitto, "-t", "vadbridge/a/vad", "-r", "-n")  # clears it
            await mosquitto_pub(mosquitto, "-t", "vadbridge/z/vad", "-m", "0 0 0")  # a marker
            assert await collector.wait_for(2) == [
                VadSample("a", (0.5, 0.5, 0.5)),
                VadSample("z", (0.0, 0.0, 0.0)),
            ]

    with caplog.at_level(logging.DEBUG):
        run(main())
    assert stats.snapshot()["accepted"] == {"mqtt": 2}
    assert stats.snapshot()["ignored"] == {"mqtt.cleared": 1}
    assert stats.snapshot()["rejected"] == {}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("protocol", [4, 5])
def test_an_empty_message_without_the_retain_flag_stays_malformed(
    mosquitto: Mosquitto, protocol: int
) -> None:
    stats = InputStats()

    async def main() -> None:
        source = source_for(mosquitto, stats, protocol)
        collector = Collector()
        async with running(source, collector):
            await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
            await mosquitto_pub(mosquitto, "-t", "vadbridge/a/vad", "-n")
            await mosquitto_pub(mosquitto, "-t", "vadbridge/z/vad", "-m", "0 0 0")
            await collector.wait_for(1)

    run(main())
    assert stats.snapshot()["rejected"] == {"mqtt.shape": 1}


def test_a_retained_value_still_arrives_when_subscribing(mosquitto: Mosquitto) -> None:
    stats = InputStats()

    async def main() -> None:
        await mosquitto_pub(mosquitto, "-t", "vadbridge/a/vad", "-r", "-m", "0.25 0 0")
        source = source_for(mosquitto, stats)
        collector = Collector()
        async with running(source, collector):
            assert await collector.wait_for(1) == [VadSample("a", (0.25, 0.0, 0.0))]

    run(main())
    assert stats.snapshot()["accepted"] == {"mqtt": 1}
