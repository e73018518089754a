"""MQTT in (aiomqtt 2.5, MQTT 3.1.1 or 5): ``<prefix>/<avatar>/{vad,emotion}`` -> ``parse_mqtt``.

aiomqtt does not reconnect by itself: ``run`` keeps the connection up through
``vadbridge.mqtt_session`` (jittered exponential backoff, docs/references.md, "MQTT"). Payloads
are parsed inline as they are taken from aiomqtt's incoming queue, a ``_NewestWinsQueue``: bounded
so a flood cannot grow memory, and when full it drops older values, not newer ones
(docs/reliability.md, "MQTT bursts").
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Sequence

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from vadbridge.config import MqttInputConfig
from vadbridge.core.stats import InputStats, show
from vadbridge.core.types import InputError, VadSample
from vadbridge.inputs.admission import RateLimiter
from vadbridge.inputs.parse_mqtt import parse_mqtt, topic_avatar
from vadbridge.mqtt_session import MqttSession

__all__ = ["MqttSource"]

log = logging.getLogger("vadbridge.inputs.mqtt")

SOURCE = "mqtt"
_TOPICS_PER_SUBSCRIBE = 100  # one SUBSCRIBE packet per chunk when sharding by avatar
SUPERSEDED = "mqtt.superseded"  # an unread message replaced by a newer one of its topic
OVERFLOW = "mqtt.overflow"  # the queue full of distinct topics: the new message is dropped
CLEARED = "mqtt.cleared"  # an empty retained message: the topic's retained value was cleared
_DROP_REASONS = {
    SUPERSEDED: "an unread message was replaced by a newer one of its topic (newest value wins)",
    OVERFLOW: "dropped: the incoming queue is full of messages of as many distinct topics",
}


class _NewestWinsQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue (its ``queue_type``): first in, first out while there is room.

    When full, a new message takes the place of the oldest unread one of its own topic, or else
    of a topic that has a newer message waiting, so a burst loses old values and keeps the
    newest one of every topic (a VAD stream is a state, not a log), while a reader that keeps
    up still gets every message (partial updates such as ``{"v": 0.5}`` stay whole). Only when
    every waiting message is its topic's only one (``maxsize`` distinct topics) is the new
    message dropped. Every loss goes to ``_dropped(kind, topic)``; ``put_nowait`` never raises
    ``QueueFull``, so aiomqtt's per-message "Message queue is full" warning cannot happen.
    """

    _queue: OrderedDict[int, aiomqtt.Message]  # by arrival number: O(1) removal anywhere

    def _init(self, maxsize: int) -> None:
        self._queue = OrderedDict()
        self._numbers_by_topic: dict[str, deque[int]] = {}
        self._crowded: dict[str, None] = {}  # topics with 2+ waiting messages (an ordered set)
        self._next_number = 0

    def _put(self, item: aiomqtt.Message) -> None:
        number = self._next_number
        self._next_number += 1
        self._queue[number] = item
        topic = item.topic.value
        numbers = self._numbers_by_topic.setdefault(topic, deque())
        numbers.append(number)
        if len(numbers) == 2:
            self._crowded[topic] = None

    def _get(self) -> aiomqtt.Message:
        _number, item = self._queue.popitem(last=False)
        self._forget_oldest(item.topic.value)  # the oldest of all is the oldest of its topic
        return item

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if self.full():
            topic = item.topic.value
            victim = topic if topic in self._numbers_by_topic else next(iter(self._crowded), None)
            if victim is None:
                self._dropped(OVERFLOW, topic)
                return
            del self._queue[self._forget_oldest(victim)]
            self._dropped(SUPERSEDED, victim)
        super().put_nowait(item)

    def _forget_oldest(self, topic: str) -> int:
        numbers = self._numbers_by_topic[topic]
        number = numbers.popleft()
        if not numbers:
            del self._numbers_by_topic[topic]
        elif len(numbers) == 1:
            self._crowded.pop(topic, None)
        return number

    def _dropped(self, kind: str, topic: str) -> None:
        """Told of each lost message; a source's subclass counts it."""


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

    ``admits``: if given, asked with a message's avatar before anything else (the rate limit,
    the payload); a refused avatar's message is counted once as ``avatar.limit`` and never
    parsed, so a flood on many new avatar topics costs a dict lookup each (the daemon passes
    its avatar table's check).
    """

    kind = SOURCE

    def __init__(
        self,
        config: MqttInputConfig,
        *,
        stats: InputStats,
        avatars: frozenset[str] | None = None,
        max_payload_bytes: int,
        max_queued_messages: int = 1000,
        rate_limiter: RateLimiter | None = None,
        admits: Callable[[str], bool] | None = None,
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
        self.admits = admits
        # MQTT 5 can keep the retain flag on live messages: it tells a cleared value (item 14).
        self._retain_as_published = config.protocol == 5
        leaves = ("vad", "emotion")
        prefix = config.topic_prefix
        self.topics: tuple[str, ...] = (
            tuple(f"{prefix}/+/{leaf}" for leaf in leaves)
            if avatars is None
            else tuple(f"{prefix}/{a}/{leaf}" for a in sorted(avatars) for leaf in leaves)
        )
        mqtt_source = self

        class Queue(_NewestWinsQueue):
            def _dropped(self, kind: str, topic: str) -> None:
                mqtt_source.stats.reject(kind, f"MQTT {show(topic)}: {_DROP_REASONS[kind]}",
                                         source=SOURCE)

        self._session = MqttSession(
            config, log=log, max_queued_messages=max_queued_messages, queue_type=Queue
        )

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
            await self._receive(client.messages, on_sample)

        await self._session.run(serve)

    async def _receive(
        self, messages: AsyncIterator[aiomqtt.Message], on_sample: Callable[[VadSample], None]
    ) -> None:
        """Handle ``messages`` until the iterator ends or raises.

        Not ``async for message in messages``: its loop variable would keep the last message,
        payload and all, alive while waiting for the next one (a 100 MB payload rejected as
        oversize held 100 MB of RSS until the next message; issue 12, item 3). Each message
        lives in ``_handle_next``'s frame only, which is gone before the next wait begins.
        """
        while await self._handle_next(messages, on_sample):
            pass

    async def _handle_next(
        self, messages: AsyncIterator[aiomqtt.Message], on_sample: Callable[[VadSample], None]
    ) -> bool:
        """Take and handle one message; False when the iterator has ended."""
        try:
            message = await anext(messages)
        except StopAsyncIteration:
            return False
        self._message(message.topic.value, message.payload, on_sample, retained=message.retain)
        return True

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        for start in range(0, len(self.topics), _TOPICS_PER_SUBSCRIBE):
            chunk = self.topics[start : start + _TOPICS_PER_SUBSCRIBE]
            granted = await client.subscribe(
                [(topic, SubscribeOptions(qos=0, retainAsPublished=True)) for topic in chunk]
                if self._retain_as_published
                else [(topic, 0) for topic in chunk]
            )
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
        *,
        retained: bool = False,
    ) -> None:
        if retained and not payload:
            # How MQTT clears a topic's retained value: not input, and nothing to warn about.
            self.stats.ignore(CLEARED)
            return
        admits = self.admits
        if admits is not None:
            avatar = topic_avatar(topic, self.topic_prefix)
            if avatar is not None and not admits(avatar):
                self.stats.reject(
                    "avatar.limit", f"MQTT {show(topic)}: avatar not admitted "
                    "(unknown, another shard's, or the table is full)", source=SOURCE,
                )
                return
        limiter = self.rate_limiter
        if limiter is not None and not limiter.allow(topic.rpartition("/")[0]):
            self.stats.reject(
                "rate_limit", f"MQTT {topic}: over {limiter.rate_per_s:g} messages/s per avatar",
                source=SOURCE,
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
            self.stats.reject(error.kind, error.reason, source=SOURCE)
            return
        self.stats.accept(SOURCE, sample)
        if clipped:
            self.stats.clipped(SOURCE)
        on_sample(sample)


def _summary(topics: Sequence[str]) -> str:
    if len(topics) <= 4:
        return ", ".join(topics)
    return f"{len(topics)} topics ({topics[0]}, ... {topics[-1]})"
