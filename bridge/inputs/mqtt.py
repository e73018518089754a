"""MQTT in (aiomqtt 2.5, MQTT 3.1.1 or 5): ``<prefix>/<avatar>/{vad,emotion}`` -> ``parse_mqtt``.

aiomqtt does not reconnect by itself: ``run`` keeps the connection up through
``bridge.mqtt_session`` (jittered exponential backoff, ../shared/reference/protocols.md,
"MQTT"). Payloads are parsed inline as they are taken from aiomqtt's queue, which is bounded so
a flood cannot grow memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import aiomqtt

from vadbridge.config import AVATAR_ID_PATTERN, AVATAR_ID_RULE
from vadbridge.core.stats import InputStats
from vadbridge.core.types import InputError, VadSample
from vadbridge.inputs.admission import RateLimiter
from vadbridge.inputs.parse_mqtt import parse_mqtt
from vadbridge.mqtt_session import MqttProtocol, MqttSession, MqttTls

__all__ = ["MqttSource", "MqttTls"]

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
        host: str,
        port: int = 1883,
        *,
        stats: InputStats,
        topic_prefix: str = "vadbridge",
        avatars: frozenset[str] | None = None,
        protocol: MqttProtocol = "3.1.1",
        username: str | None = None,
        password: str | None = None,
        tls: MqttTls | None = None,
        client_id: str | None = None,
        keepalive_s: int = 60,
        max_payload_bytes: int = 4096,
        max_queued_messages: int = 1000,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 5.0,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if not 1 <= port <= 65535:
            raise ValueError(f"MQTT port must be 1..65535, got {port}")
        if not topic_prefix or any(c in topic_prefix for c in "+#\0") or topic_prefix[-1] == "/":
            raise ValueError(
                f"MQTT topic_prefix must be non-empty, without +, # or a trailing /: "
                f"{topic_prefix!r}"
            )
        if avatars is not None:
            if not avatars:
                raise ValueError("MQTT avatars must not be empty (None subscribes to all)")
            bad = sorted(a for a in avatars if AVATAR_ID_PATTERN.fullmatch(a) is None)
            if bad:
                raise ValueError(f"invalid avatar ids {bad[:5]}: expected {AVATAR_ID_RULE}")
        if password is not None and username is None:
            raise ValueError("MQTT password given without username")
        self.host = host
        self.port = port
        self.name = f"mqtt {host}:{port}"
        self.stats = stats
        self.topic_prefix = topic_prefix
        self.protocol = protocol
        self.max_payload_bytes = max_payload_bytes
        self.rate_limiter = rate_limiter
        leaves = ("vad", "emotion")
        self.topics: tuple[str, ...] = (
            tuple(f"{topic_prefix}/+/{leaf}" for leaf in leaves)
            if avatars is None
            else tuple(f"{topic_prefix}/{a}/{leaf}" for a in sorted(avatars) for leaf in leaves)
        )
        self._session = MqttSession(
            host, port, log=log, protocol=protocol, username=username, password=password,
            tls=tls, client_id=client_id, keepalive_s=keepalive_s,
            max_queued_messages=max_queued_messages, reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
        )  # fmt: skip

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
                    self.host, self.port, self.protocol, _summary(self.topics),
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
        self.stats.accept(SOURCE)
        if clipped:
            self.stats.clipped(SOURCE)
        on_sample(sample)


def _summary(topics: Sequence[str]) -> str:
    if len(topics) <= 4:
        return ", ".join(topics)
    return f"{len(topics)} topics ({topics[0]}, ... {topics[-1]})"
