"""MqttSource against a real mosquitto (fixture in conftest.py), MQTT 3.1.1 and 5."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
from conftest import Mosquitto
from source_harness import TIMEOUT_S, Collector, run, running, until

from vadbridge.config import ConfigError, MqttInputConfig, TlsConfig, parse_config
from vadbridge.core.stats import InputStats
from vadbridge.core.types import VadSample
from vadbridge.inputs import mqtt as mqtt_module
from vadbridge.inputs.mqtt import MqttSource
from vadbridge.model.emotions import emotion_to_vad, mix_to_vad

PROTOCOLS: list[Literal[4, 5]] = [4, 5]  # MQTT 3.1.1 and 5, as the config names them


def vad_of(array: Any) -> tuple[float, float, float]:
    return (float(array[0]), float(array[1]), float(array[2]))


@asynccontextmanager
async def connected(source: MqttSource) -> AsyncIterator[Collector]:
    """The source running and connected, its samples collected; disconnected on exit."""
    collector = Collector()
    async with running(source, collector):
        await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
        yield collector
    assert not source.connected


SOURCE_OPTIONS = (
    "stats", "avatars", "max_payload_bytes", "max_queued_messages", "rate_limiter", "admits",
)


def source_for(broker: Mosquitto, **options: Any) -> MqttSource:
    """A source for ``broker``: connection and topic settings go into its ``MqttInputConfig``
    (as the config file would set them), the rest to the source."""
    own = {key: options.pop(key) for key in SOURCE_OPTIONS if key in options}
    own.setdefault("stats", InputStats())
    own.setdefault("max_payload_bytes", 4096)
    return MqttSource(MqttInputConfig(host=broker.host, port=broker.port, **options), **own)


HAPPY = vad_of(emotion_to_vad("happiness", 0.9))
ACCEPTED: list[tuple[str, bytes, VadSample]] = [
    ("vadbridge/default/vad", b'{"valence": 0.1, "arousal": 0.2, "dominance": 0.3}',
     VadSample("default", (0.1, 0.2, 0.3))),
    ("vadbridge/a/vad", b'{"v": -0.1, "a": 0, "d": 1}', VadSample("a", (-0.1, 0.0, 1.0))),
    ("vadbridge/a/vad", b'{"arousal": 0.4}', VadSample("a", (None, 0.4, None))),
    ("vadbridge/b/vad", b"[0.5, -0.5, 0.25]", VadSample("b", (0.5, -0.5, 0.25))),
    ("vadbridge/b/vad", b"0.1 0.2 0.3", VadSample("b", (0.1, 0.2, 0.3))),
    ("vadbridge/b/vad", b"0.1,0.2,0.3", VadSample("b", (0.1, 0.2, 0.3))),
    ("vadbridge/c/vad", b"[3, 0, -3]", VadSample("c", (1.0, 0.0, -1.0))),  # clipped
    ("vadbridge/c/emotion", b'{"emotion": "happiness", "intensity": 0.9}',
     VadSample("c", HAPPY)),
    ("vadbridge/c/emotion", b"happiness+surprise",
     VadSample("c", vad_of(emotion_to_vad("happiness+surprise")))),
    ("vadbridge/c/emotion", b"happiness:0.7+surprise:0.3",
     VadSample("c", vad_of(emotion_to_vad("happiness:0.7+surprise:0.3")))),
    ("vadbridge/d/emotion",
     json.dumps([{"label": "joy", "score": 0.91}, {"label": "sadness", "score": 0.09}]).encode(),
     VadSample("d", vad_of(mix_to_vad({"joy": 0.91, "sadness": 0.09})))),
    ("vadbridge/d/emotion",
     json.dumps([[{"label": "anger", "score": 0.6}, {"label": "fear", "score": 0.4}]]).encode(),
     VadSample("d", vad_of(mix_to_vad({"anger": 0.6, "fear": 0.4})))),
]  # fmt: skip


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_accepted_payload_form_arrives(mosquitto: Mosquitto, protocol: str) -> None:
    stats = InputStats()

    async def main() -> None:
        source = source_for(mosquitto, stats=stats, protocol=protocol)
        async with connected(source) as collector:
            await mosquitto.publish([(t, p) for t, p, _ in ACCEPTED], protocol=protocol)  # type: ignore[arg-type]
            assert await collector.wait_for(len(ACCEPTED)) == [s for _, _, s in ACCEPTED]

    run(main())
    assert stats.snapshot() == {
        "accepted": {"mqtt": len(ACCEPTED)},
        "rejected": {}, "rejected_by_source": {},
        "clipped": {"mqtt": 1}, "ignored": {},
    }


BAD: list[tuple[str, bytes]] = [
    ("vadbridge/a/vad", b"{not json"),
    ("vadbridge/a/vad", b"\xff\xfe\xfd"),
    ("vadbridge/a/vad", b"[1, 2]"),
    ("vadbridge/a/vad", b'{"valance": 0.1}'),
    ("vadbridge/a/vad", b"[" * 3000 + b"]" * 3000),
    ("vadbridge/a/vad", b""),
    ("vadbridge/a/vad", b"[NaN, 0, 0]"),
    ("vadbridge/a/vad", b"0 inf 0"),
    ("vadbridge/a/vad", b"0.1 " * 3000),  # 12,000 bytes > max_payload_bytes
    ("vadbridge/a/emotion", b"glee"),
    ("vadbridge/a/emotion", b'[{"label": "LABEL_1", "score": 1.0}]'),
    ("vadbridge/a/emotion", b'{"emotion": "joy", "intensity": 7}'),
    ("vadbridge/a/emotion", b'[{"label": "joy"}]'),
    ("vadbridge/bad id/vad", b"0 0 0"),
]
BAD_COUNTS = {
    "mqtt.json": 2,
    "mqtt.shape": 5,
    "nonfinite": 2,
    "oversize": 1,
    "emotion.unknown": 2,
    "emotion.invalid": 1,
    "mqtt.topic": 1,
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_batch_is_counted_exactly_and_good_messages_still_flow(
    mosquitto: Mosquitto, protocol: str
) -> None:
    stats = InputStats()

    async def main() -> None:
        source = source_for(mosquitto, stats=stats, protocol=protocol, max_payload_bytes=8192)
        async with connected(source) as collector:
            batch = [("vadbridge/a/vad", b"0.5 0.5 0.5"), *BAD, ("vadbridge/z/vad", b"[0, 0, 0]")]
            await mosquitto.publish(batch, protocol=protocol)  # type: ignore[arg-type]
            assert await collector.wait_for(2) == [
                VadSample("a", (0.5, 0.5, 0.5)),
                VadSample("z", (0.0, 0.0, 0.0)),
            ]

    run(main())
    assert stats.snapshot() == {"accepted": {"mqtt": 2}, "rejected": BAD_COUNTS,
                                "rejected_by_source": {"mqtt": len(BAD)}, "clipped": {},
                                "ignored": {}}


def test_avatar_shard_subscribes_only_to_its_avatars(mosquitto: Mosquitto) -> None:
    async def main() -> None:
        source = source_for(mosquitto, avatars=frozenset({"a", "c"}))
        assert source.topics == (
            "vadbridge/a/vad", "vadbridge/a/emotion", "vadbridge/c/vad", "vadbridge/c/emotion",
        )  # fmt: skip
        async with connected(source) as collector:
            await mosquitto.publish(
                [
                    ("vadbridge/b/vad", b"0.9 0.9 0.9"),
                    ("vadbridge/a/vad", b"0.1 0.1 0.1"),
                    ("vadbridge/b/emotion", b"joy"),
                    ("vadbridge/c/emotion", b"neutral"),
                ]
            )
            assert await collector.wait_for(2) == [
                VadSample("a", (0.1, 0.1, 0.1)),
                VadSample("c", (0.0, 0.0, 0.0)),
            ]
        assert source.stats.snapshot()["rejected"] == {}

    run(main())


def test_refused_avatars_are_counted_once_and_never_parsed(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_topics: list[str] = []
    real_parse = mqtt_module.parse_mqtt

    def spy(topic: str, payload: bytes, **options: Any) -> Any:
        parsed_topics.append(topic)
        return real_parse(topic, payload, **options)

    monkeypatch.setattr(mqtt_module, "parse_mqtt", spy)
    stats = InputStats()
    source = source_for(mosquitto, stats=stats, admits=lambda avatar: avatar == "known")
    strangers = [(f"vadbridge/stranger{index}/vad", b"0.5 0 0") for index in range(20)]

    async def main() -> None:
        async with connected(source) as collector:
            await mosquitto.publish(
                [*strangers[:10], ("vadbridge/known/vad", b"0.1 0.2 0.3"), *strangers[10:]]
            )
            await until(lambda: stats.accepted_total + stats.rejected_total == 21)
            assert collector.samples == [VadSample("known", (0.1, 0.2, 0.3))]

    run(main())
    assert parsed_topics == ["vadbridge/known/vad"]
    snapshot = stats.snapshot()
    assert snapshot["rejected"] == {"avatar.limit": 20}
    assert snapshot["accepted"] == {"mqtt": 1}


def test_custom_topic_prefix(mosquitto: Mosquitto) -> None:
    async def main() -> None:
        source = source_for(mosquitto, topic_prefix="studio/faces")
        async with connected(source) as collector:
            await mosquitto.publish(
                [("vadbridge/a/vad", b"0.9 0.9 0.9"), ("studio/faces/alice/vad", b"0 0.5 0")]
            )
            assert await collector.wait_for(1) == [VadSample("alice", (0.0, 0.5, 0.0))]

    run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reconnects_after_a_broker_restart_and_new_messages_take_effect(
    mosquitto: Mosquitto, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        source = source_for(mosquitto, protocol=protocol)
        async with connected(source) as collector:
            await mosquitto.publish([("vadbridge/a/vad", b"0.1 0.1 0.1")], protocol=protocol)  # type: ignore[arg-type]
            await collector.wait_for(1)
            mosquitto.stop()
            await until(lambda: not source.connected)
            mosquitto.start()
            await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
            await mosquitto.publish([("vadbridge/a/vad", b"0.2 0.2 0.2")], protocol=protocol)  # type: ignore[arg-type]
            assert await collector.wait_for(2) == [
                VadSample("a", (0.1, 0.1, 0.1)),
                VadSample("a", (0.2, 0.2, 0.2)),
            ]

    with caplog.at_level(logging.INFO, logger="vadbridge.inputs.mqtt"):
        run(main())
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    lost = [m for level, m in messages if level == logging.WARNING and "lost" in m]
    assert len(lost) == 1 and f"{mosquitto.host}:{mosquitto.port}" in lost[0]
    assert (logging.INFO, f"MQTT reconnected to {mosquitto.host}:{mosquitto.port}") in messages
    assert all(r.exc_info is None for r in caplog.records)  # a clear line, no traceback


def test_connects_once_the_broker_comes_up(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    mosquitto.stop()

    async def main() -> None:
        source = source_for(mosquitto)
        collector = Collector()
        async with running(source, collector):
            await until(lambda: any("unavailable" in r.getMessage() for r in caplog.records))
            assert not source.connected
            mosquitto.start()
            await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
            await mosquitto.publish([("vadbridge/a/emotion", b"neutral")])
            assert await collector.wait_for(1) == [VadSample("a", (0.0, 0.0, 0.0))]

    with caplog.at_level(logging.DEBUG, logger="vadbridge.inputs.mqtt"):
        run(main())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # retries after the first failure are quiet
    assert f"MQTT broker {mosquitto.host}:{mosquitto.port} unavailable" in warnings[0]


def test_password_is_never_logged(mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-Passw0rd"

    async def main() -> None:
        source = source_for(mosquitto, username="bridge", password=secret, client_id="vb-test")
        async with connected(source) as collector:
            await mosquitto.publish([("vadbridge/a/vad", b"0 0 0")])
            await collector.wait_for(1)
        assert secret not in repr(source)

    with caplog.at_level(logging.DEBUG):
        run(main())
    assert caplog.records  # something was logged, and none of it holds the password
    assert all(secret not in r.getMessage() for r in caplog.records)


def test_an_exception_in_on_sample_ends_run_with_it(mosquitto: Mosquitto) -> None:
    def broken(sample: VadSample) -> None:
        raise RuntimeError(f"downstream bug on {sample.avatar}")

    async def main() -> None:
        source = source_for(mosquitto)
        task = asyncio.create_task(source.run(broken))
        await asyncio.wait_for(source.wait_connected(), TIMEOUT_S)
        await mosquitto.publish([("vadbridge/x/vad", b"0 0 0")])
        with pytest.raises(RuntimeError, match="downstream bug on x"):
            await asyncio.wait_for(task, TIMEOUT_S)
        assert not source.connected

    run(main())


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("protocol: 3", "protocol"),
        ("port: 0", "port"),
        ("topic_prefix: 'a/+'", "topic_prefix"),
        ("topic_prefix: 'a/'", "topic_prefix"),
        ("topic_prefix: ''", "topic_prefix"),
        ("password: x", "password"),
        ("reconnect_max_s: 0", "reconnect_max_s"),
        ("tls: {key_file: client.key}", "tls.key_file"),
    ],
)
def test_invalid_connection_settings_are_refused_when_the_config_loads(entry: str,
                                                                        key: str) -> None:
    """The source takes its settings from a validated config: the checks live there, once."""
    with pytest.raises(ConfigError) as caught:
        parse_config(f"inputs: [{{type: mqtt, {entry}}}]\n", "bridge.yaml")
    assert caught.value.key_path == f"inputs[0].{key}"


def test_an_empty_avatar_subscription_is_refused() -> None:
    with pytest.raises(ValueError, match="avatars"):
        MqttSource(MqttInputConfig(), stats=InputStats(), max_payload_bytes=4096,
                   avatars=frozenset())


def test_tls_with_a_missing_ca_file_fails_at_construction(tmp_path: Any) -> None:
    with pytest.raises(OSError):
        MqttSource(MqttInputConfig(port=8883, tls=TlsConfig(ca_file=str(tmp_path / "no-ca.pem"))),
                   stats=InputStats(), max_payload_bytes=4096)
