"""MQTT in (aiomqtt 2.5, MQTT 3.1.1 or 5): ``<prefix>/<avatar>/{vad,emotion}`` -> ``parse_mqtt``.

aiomqtt does not reconnect by itself: ``run`` wraps the client in a loop with jittered
exponential backoff (../shared/reference/protocols.md, "MQTT"). Payloads are parsed inline as
they are taken from aiomqtt's queue, which is bounded so a flood cannot grow memory.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import aiomqtt

from bridge.avatars import AVATAR_ID_PATTERN
from bridge.inputs.admission import RateLimiter
from bridge.inputs.parse import parse_mqtt
from bridge.stats import InputStats
from bridge.types import InputError, VadSample

__all__ = ["MqttSource", "MqttTls"]

log = logging.getLogger("vadbridge.inputs.mqtt")

SOURCE = "mqtt"
_PROTOCOLS = {
    "3.1.1": aiomqtt.ProtocolVersion.V311,
    "5": aiomqtt.ProtocolVersion.V5,
}
_TOPICS_PER_SUBSCRIBE = 100  # one SUBSCRIBE packet per chunk when sharding by avatar
# CONNACK codes meaning "your credentials": 3.1.1 (4 bad user name or password, 5 not
# authorised) and 5 (134 bad user name or password, 135 not authorized; mosquitto 2 answers a
# wrong password with 135). Retrying cannot fix these, so they get their own error line.
_AUTH_REFUSED_CODES = frozenset({4, 5, 134, 135})


@dataclass(frozen=True)
class MqttTls:
    """TLS to the broker: ``ca_file`` verifies it (system CAs if None); cert+key for client auth."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def context(self) -> ssl.SSLContext:
        """Raises ``OSError``/``ssl.SSLError`` for unreadable or invalid files (fail at start)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.key_file is not None:
            raise ValueError("MQTT TLS key_file given without cert_file")
        context.sslsocket_class = _HandshakeClosingSocket  # documented per-instance override
        return context


class _HandshakeClosingSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails.

    paho-mqtt 2.2 (``Client._ssl_wrap_socket``) leaves the socket of a failed handshake (an
    untrusted broker certificate, a missing client certificate) to the garbage collector, so
    every reconnect attempt would hold a descriptor open until some later collection.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


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
        protocol: Literal["3.1.1", "5"] = "3.1.1",
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
        if protocol not in _PROTOCOLS:
            raise ValueError(f"MQTT protocol must be one of {sorted(_PROTOCOLS)}, got {protocol!r}")
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
                raise ValueError(f"invalid avatar ids {bad[:5]}: expected 1-64 of [A-Za-z0-9_.-]")
        if password is not None and username is None:
            raise ValueError("MQTT password given without username")
        if not 0 < reconnect_initial_s <= reconnect_max_s:
            raise ValueError("need 0 < reconnect_initial_s <= reconnect_max_s")
        self.host = host
        self.port = port
        self.name = f"mqtt {host}:{port}"
        self.stats = stats
        self.topic_prefix = topic_prefix
        self.protocol = protocol
        self.username = username
        self._password = password
        self._tls_context = tls.context() if tls is not None else None
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.max_payload_bytes = max_payload_bytes
        self.max_queued_messages = max_queued_messages
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.rate_limiter = rate_limiter
        leaves = ("vad", "emotion")
        self.topics: tuple[str, ...] = (
            tuple(f"{topic_prefix}/+/{leaf}" for leaf in leaves)
            if avatars is None
            else tuple(f"{topic_prefix}/{a}/{leaf}" for a in sorted(avatars) for leaf in leaves)
        )
        self.connected = False
        self._connected_event = asyncio.Event()

    async def wait_connected(self) -> None:
        """Return once connected and subscribed."""
        await self._connected_event.wait()

    def _client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self._password,
            identifier=self.client_id,
            protocol=_PROTOCOLS[self.protocol],
            keepalive=self.keepalive_s,
            tls_context=self._tls_context,
            max_queued_incoming_messages=self.max_queued_messages,
        )

    async def run(self, on_sample: Callable[[VadSample], None]) -> None:
        """Receive until cancelled, reconnecting with jittered exponential backoff.

        Exceptions from ``on_sample`` propagate (a bug must tear the daemon down).
        """
        backoff_s = self.reconnect_initial_s
        ever_connected = False
        # The kind of connection problem last logged ("auth" or "unavailable"): each kind is
        # logged when it starts, repeats are debug lines, so a long outage costs one line.
        logged_problem: str | None = None
        while True:
            try:
                async with self._client() as client:
                    await self._subscribe(client)
                    self._set_connected(True)
                    if ever_connected:
                        log.info("MQTT reconnected to %s:%d", self.host, self.port)
                    else:
                        log.info(
                            "MQTT connected to %s:%d (MQTT %s), subscribed to %s",
                            self.host,
                            self.port,
                            self.protocol,
                            _summary(self.topics),
                        )
                    ever_connected = True
                    logged_problem = None
                    backoff_s = self.reconnect_initial_s
                    async for message in client.messages:
                        self._message(str(message.topic), message.payload, on_sample)
            except aiomqtt.MqttError as error:
                problem = "auth" if _is_auth_refusal(error) else "unavailable"
                if self.connected:
                    log.warning(
                        "MQTT connection to %s:%d lost (%s); reconnecting", self.host, self.port,
                        _reason(error),
                    )  # fmt: skip
                elif problem == logged_problem:
                    log.debug("MQTT connect to %s:%d failed again: %s", self.host, self.port, error)
                elif problem == "auth":
                    log.error(
                        "MQTT broker %s:%d refused the credentials of user %r (%s): check "
                        "username and password/password_env; retrying with backoff up to %.1f s",
                        self.host, self.port, self.username, error, self.reconnect_max_s,
                    )  # fmt: skip
                else:
                    log.warning(
                        "MQTT broker %s:%d unavailable (%s); "
                        "retrying with backoff (%.1f s up to %.1f s)",
                        self.host, self.port, _reason(error), self.reconnect_initial_s,
                        self.reconnect_max_s,
                    )  # fmt: skip
                logged_problem = "unavailable" if self.connected else problem
            finally:
                self._set_connected(False)
            # Full-ish jitter keeps many bridges from reconnecting to a restarted broker in step.
            await asyncio.sleep(backoff_s * random.uniform(0.5, 1.0))
            backoff_s = min(backoff_s * 2.0, self.reconnect_max_s)

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        if connected:
            self._connected_event.set()
        else:
            self._connected_event.clear()

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


def _is_auth_refusal(error: aiomqtt.MqttError) -> bool:
    if not isinstance(error, aiomqtt.MqttCodeError):
        return False
    code = error.rc
    value = getattr(code, "value", code)  # paho's ReasonCode carries the number in .value
    return isinstance(value, int) and value in _AUTH_REFUSED_CODES


def _reason(error: aiomqtt.MqttError) -> str:
    cause = error.__cause__
    return f"{error}: {cause}" if cause is not None else str(error)


def _summary(topics: Sequence[str]) -> str:
    if len(topics) <= 4:
        return ", ".join(topics)
    return f"{len(topics)} topics ({topics[0]}, ... {topics[-1]})"
