"""MQTT output: the newest frame as JSON, published at most ``rate_hz`` times a second (QoS 0).

Payload: ``{"t": time_s, "frame": n, "blendshapes": {name: value, ...}}`` with the 52 ARKit
names in model order and values rounded to 4 decimals, for web and pipeline consumers.

The sink contract is synchronous (docs/DESIGN.md, "Sources and sinks"): ``send`` is called from
the frame loop, so it only copies the newest frame into a buffer and wakes the publisher.
``run()`` (an async task the bridge starts and supervises) connects with aiomqtt, publishes
the newest frame at most ``rate_hz`` times a second and reconnects through
``vadbridge.mqtt_session`` (jittered exponential backoff: aiomqtt 2.5 does not reconnect by
itself, docs/references.md, "MQTT"). Frames sent while the broker is away are
coalesced, never queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import aiomqtt
import numpy as np

from vadbridge.config import (
    AVATAR_ID_PATTERN,
    AVATAR_ID_RULE,
    MQTT_MAX_STRING_BYTES,
    MqttOutputConfig,
)
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES
from vadbridge.mqtt_session import MqttSession

__all__ = ["AVATAR_PLACEHOLDERS", "MqttSink", "format_payload", "resolve_topic"]

log = logging.getLogger("vadbridge.outputs")

AVATAR_PLACEHOLDERS: Final = ("<avatar>", "{avatar}")
_MAX_TOPIC_BYTES: Final = MQTT_MAX_STRING_BYTES

# Built once: the payload is one %-format over 54 numbers.
_PAYLOAD_FORMAT: Final = (
    '{"t": %.6f, "frame": %d, "blendshapes": {'
    + ", ".join(f'"{name}": %.4f' for name in ARKIT_NAMES)
    + "}}"
)


def resolve_topic(template: str, avatar: str) -> str:
    """``template`` with ``<avatar>``/``{avatar}`` replaced; raises ``ValueError`` if unusable."""
    if AVATAR_ID_PATTERN.fullmatch(avatar) is None:
        raise ValueError(f"invalid avatar id {avatar!r}: expected {AVATAR_ID_RULE}")
    topic = template
    for placeholder in AVATAR_PLACEHOLDERS:
        topic = topic.replace(placeholder, avatar)
    if not topic or any(c in topic for c in "+#\0"):
        raise ValueError(
            f"MQTT topic must be non-empty, without the wildcards + and # (publish topics "
            f"cannot hold them): {template!r}"
        )
    if len(topic.encode("utf-8")) > _MAX_TOPIC_BYTES:
        raise ValueError(f"MQTT topic is longer than {_MAX_TOPIC_BYTES} bytes")
    return topic


def format_payload(weights: np.ndarray, frame_number: int, time_s: float) -> bytes:
    """The JSON payload of one frame (UTF-8), values rounded to 4 decimals."""
    if weights.shape != (NUM_BLENDSHAPES,):
        raise ValueError(f"expected weights of shape (52,), got {weights.shape}")
    values: list[float] = weights.tolist()
    # JSON has no NaN/Infinity; the frame loop never sends them, but a payload must stay valid.
    if not np.isfinite(weights).all():
        values = [v if np.isfinite(v) else 0.0 for v in values]
    return (_PAYLOAD_FORMAT % (time_s, frame_number, *values)).encode()


class MqttSink:
    """One MQTT output bound to one avatar. ``send`` stores; ``run`` publishes.

    ``send_errors`` counts failed connection attempts, lost connections and failed publishes
    (logged once per outage; a broker refusing the credentials is logged as an error).
    ``frames_published`` counts publishes. ``close()`` sends nothing itself: it asks a running
    ``run()`` to publish the frame still pending (the daemon's neutral frame) and to disconnect,
    so ``send(neutral); close(); await run_task`` ends with a neutral face. The password is kept
    private and never logged.
    """

    def __init__(self, config: MqttOutputConfig, *, name: str) -> None:
        """``config`` (validated at load) is the broker connection, the topic, the avatar and
        the publish rate."""
        self.topic = resolve_topic(config.topic, config.avatar)
        self.host = config.host
        self.port = config.port
        self.avatar = config.avatar
        self.name = name
        self.rate_hz = float(config.rate_hz)
        self.send_errors = 0
        self.frames_published = 0
        self._latest = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
        self._frame_number = 0
        self._time_s = 0.0
        self._pending = False
        self._closing = False
        # Created lazily inside the running loop (asyncio objects bind to it on first use).
        self._wake: asyncio.Event | None = None
        self._closed_event: asyncio.Event | None = None
        self._session = MqttSession(
            config, log=log, log_prefix=f"output {name}: ",
            outage_note="; frames meanwhile are dropped",
        )

    # --- the synchronous side (frame loop) ----------------------------------------------------

    def send(self, frame: Frame) -> None:
        """Keep the frame's weights as the newest; publishing happens in ``run``."""
        weights = frame.weights
        if weights.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected weights of shape (52,), got {weights.shape}")
        np.copyto(self._latest, weights)  # the caller's row changes on the next frame
        self._frame_number = frame.number
        self._time_s = frame.time_s
        self._pending = True
        if self._wake is not None:
            self._wake.set()

    def close(self) -> None:
        """Ask ``run`` to publish the pending frame and return; sends nothing itself."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._closed_event is not None:
            self._closed_event.set()

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def connected(self) -> bool:
        return self._session.connected

    # --- the async side -----------------------------------------------------------------------

    async def wait_connected(self) -> None:
        """Return once connected to the broker."""
        await self._session.wait_connected()

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._wake is None or self._closed_event is None:
            self._wake = asyncio.Event()
            self._closed_event = asyncio.Event()
            if self._pending or self._closing:
                self._wake.set()
            if self._closing:
                self._closed_event.set()
        return self._wake, self._closed_event

    async def run(self) -> None:
        """Publish until cancelled (or until ``close()``), reconnecting with backoff."""

        async def serve(client: aiomqtt.Client) -> None:
            reconnected = self._session.mark_connected()
            log.info(
                "output %s: MQTT %s to %s:%d, publishing to %s at <= %g Hz",
                self.name, "reconnected" if reconnected else "connected",
                self.host, self.port, self.topic, self.rate_hz,
            )  # fmt: skip
            await self._serve(client)  # returns once closed: the pending frame went out

        await self._session.run(serve, stop=self._events()[1], on_failure=self._count_failure)

    def _count_failure(self) -> None:
        self.send_errors += 1

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Publish until closed; raise ``MqttError`` as soon as the connection drops.

        The publisher alone would only notice a dead broker at its next publish, which may be
        long (or never, if no frames come); aiomqtt's message iterator raises on disconnect.
        """
        publisher = asyncio.create_task(self._publish_loop(client), name=f"{self.name} publish")
        watcher = asyncio.create_task(_until_disconnected(client), name=f"{self.name} watch")
        try:
            done, _ = await asyncio.wait((publisher, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (publisher, watcher):
                task.cancel()
            await asyncio.gather(publisher, watcher, return_exceptions=True)
        for task in done:
            task.result()  # re-raises the MqttError of a lost connection

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        wake, closed = self._events()
        loop = asyncio.get_running_loop()
        period_s = 1.0 / self.rate_hz
        next_allowed_s = loop.time()
        while True:
            await wake.wait()
            delay_s = next_allowed_s - loop.time()
            if delay_s > 0 and not self._closing:
                # Frames arriving meanwhile replace this one; close() ends the wait at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), delay_s)
            wake.clear()
            if self._pending:
                self._pending = False
                payload = format_payload(self._latest, self._frame_number, self._time_s)
                next_allowed_s = loop.time() + period_s
                await client.publish(self.topic, payload, qos=0)
                self.frames_published += 1
            if self._closing:
                return

    def __repr__(self) -> str:
        return f"MqttSink({self.name!r}, {self.host}:{self.port}, topic={self.topic!r})"


async def _until_disconnected(client: aiomqtt.Client) -> None:
    async for _message in client.messages:  # nothing is subscribed: this only ends on disconnect
        pass
