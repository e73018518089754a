"""MQTT in (aiomqtt 2.5, MQTT 3.1.1 or 5): ``<prefix>/<avatar>/{vad,emotion}`` -> ``parse_mqtt``.

aiomqtt does not reconnect by itself: ``run`` keeps the connection up through
``vadbridge.mqtt_session`` (jittered exponential backoff, docs/references.md, "MQTT"). Payloads
are parsed inline as they are taken from aiomqtt's queue, which is bounded so a flood cannot
grow memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import aiomqtt

from vadbridge.config import MqttInputConfig
from vadbridge.core.stats import InputStats
from vadbridge.core.types import InputError, VadSample
from vadbridge.inputs.admission import RateLimiter
from vadbridge.inputs.parse_mqtt import parse_mqtt
from vadbridge.mqtt_session import MqttSession

__all__ = ["MqttSource"]

log = logging.getLogger("vadbridge.inputs.mqtt")

SOURCE = "mqtt"
_TOPICS_PER_SUBSCRIBE = 100  # one SUBSCRIBE packet per chunk when sharding by avatar


class MqttSource:
    """Subscribes to ``<prefix>/+/vad`` and ``<prefix>/+/emotion`` (or, with ``avatars``, only
    those avatars' topics: a shard) and hands accepted samples to ``on_sample``.

    ``connected`` is True while subscribed; ``wait_connected()`` waits for that. The password is
    kept private and never logged; a broker refusing the credentials is logged once as an error
    (the source keeps retrying: the broker's password file may be fixed while we run).

    ``rate_limiter``: if given, a token bucket per *avatar topic* (``<prefix>/<avatar>``, vad and
    emotion together), checked before parsing. MQTT hides the publishing client from
    subscribers, so the avatar is the finest key we have: a client flooding one avatar cannot
    starve the others' updates (docs/security.md).
    """

    def __init__(
        self,
        config: MqttInputConfig,
        *,
        stats: InputStats,
        avatars: frozenset[str] | None = None,
        max_payload_bytes: int,
        max_queued_messages: int = 1000,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        """``config`` (validated at load) is the broker connection and the topic prefix;
        ``avatars`` (None = every avatar) limits the subscription to a shard's avatars."""
        if avatars is not None and not avatars:
            raise ValueError("MQTT avatars must not be empty (None subscribes to all)")
        self.host = config.host
        self.port = config.port
        self.name = f"mqtt {config.host}:{config.port}"
        self.stats = stats
        self.topic_prefix = config.topic_prefix
        self.max_payload_bytes = max_payload_bytes
        self.rate_limiter = rate_limiter
        leaves = ("vad", "emotion")
        prefix = config.topic_prefix
        self.topics: tuple[str, ...] = (
            tuple(f"{prefix}/+/{leaf}" for leaf in leaves)
            if avatars is None
            else tuple(f"{prefix}/{a}/{leaf}" for a in sorted(avatars) for leaf in leaves)
        )
        self._session = MqttSession(config, log=log, max_queued_messages=max_queued_messages)

    @property
    def topics_summary(self) -> str:
        """The subscribed topics, for a log line (a shard's long list is abbreviated)."""
        return _summary(self.topics)

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        return self._session.connected

    async def wait_connected(self) -> None:
        """Return once connected and subscribed."""
        await self._session.wait_connected()

    async def run(self, on_sample: Callable[[VadSample], None]) -> None:
        """Receive until cancelled, reconnecting with jittered exponential backoff.

        Exceptions from ``on_sample`` propagate (a bug must tear the daemon down).
        """

        async def serve(client: aiomqtt.Client) -> None:
            await self._subscribe(client)
            if self._session.mark_connected():
                log.info("MQTT reconnected to %s:%d", self.host, self.port)
            else:
                log.info(
                    "MQTT connected to %s:%d (MQTT %s), subscribed to %s",
                    self.host, self.port, self._session.protocol_name, self.topics_summary,
                )  # fmt: skip
            # aiomqtt's iterator raises MqttError when the connection drops: never ends by itself.
            async for message in client.messages:
                self._message(str(message.topic), message.payload, on_sample)

        await self._session.run(serve)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        for start in range(0, len(self.topics), _TOPICS_PER_SUBSCRIBE):
            chunk = self.topics[start : start + _TOPICS_PER_SUBSCRIBE]
            granted = await client.subscribe([(topic, 0) for topic in chunk])
            for topic, code in zip(chunk, granted, strict=False):
                # 3.1.1 answers a granted QoS (0x80 = refused), 5 a ReasonCode.
                refused = (
                    code >= 0x80 if isinstance(code, int) else getattr(code, "is_failure", False)
                )
                if refused:
                    log.warning("MQTT broker refused the subscription to %s (%s)", topic, code)

    def _message(
        self,
        topic: str,
        payload: bytes | bytearray | str | int | float | None,
        on_sample: Callable[[VadSample], None],
    ) -> None:
        limiter = self.rate_limiter
        if limiter is not None and not limiter.allow(topic.rpartition("/")[0]):
            self.stats.reject(
                "rate_limit", f"MQTT {topic}: over {limiter.rate_per_s:g} messages/s per avatar"
            )
            return
        if not isinstance(payload, bytes | bytearray):
            payload = b"" if payload is None else str(payload).encode()
        try:
            sample, clipped = parse_mqtt(
                topic,
                bytes(payload),
                topic_prefix=self.topic_prefix,
                max_payload_bytes=self.max_payload_bytes,
            )
        except InputError as error:
            self.stats.reject(error.kind, error.reason)
            return
        self.stats.accept(SOURCE, sample)
        if clipped:
            self.stats.clipped(SOURCE)
        on_sample(sample)


def _summary(topics: Sequence[str]) -> str:
    if len(topics) <= 4:
        return ", ".join(topics)
    return f"{len(topics)} topics ({topics[0]}, ... {topics[-1]})"
