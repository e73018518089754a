"""OSC over UDP in: datagrams -> ``core.osc_codec.decode_datagram`` -> ``parse_osc_message``.

Deliberately not python-osc's server: its dispatcher is called synchronously, sleeps on bundles
time-tagged in the future (blocking the event loop) and swallows parse errors
(docs/references.md, "OSC in Python"). We decode ourselves and count every drop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from vadbridge.config import PORT_RANGE, is_loopback
from vadbridge.core.osc_codec import OscDecodeError, decode_datagram
from vadbridge.core.stats import InputStats, show
from vadbridge.core.types import InputError, VadSample
from vadbridge.inputs.admission import IpNetwork, RateLimiter, SenderAllowList
from vadbridge.inputs.parse_osc import address_avatar, parse_osc_message

__all__ = ["MAX_UDP_PAYLOAD_BYTES", "OscSource"]

log = logging.getLogger("vadbridge.inputs.osc")

MAX_UDP_PAYLOAD_BYTES = 65507  # IPv4: 65535 - 20 (IP header) - 8 (UDP header)
SOURCE = "osc"


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, source: OscSource) -> None:
        self._source = source

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._source._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # A receiving socket only sees these for ICMP errors about datagrams it never sent.
        log.debug("OSC input socket error (ignored): %s", exc)


class OscSource:
    """Receives OSC datagrams on ``host:port`` and hands accepted samples to ``on_sample``.

    ``await start()`` binds (raising ``OSError`` at once if the port is taken, so the daemon fails
    fast); ``port`` is then the bound port (useful with port 0). ``run(on_sample)`` binds if
    needed, delivers samples until cancelled and closes the socket on the way out. Datagrams
    arriving between ``start()`` and ``run()`` are dropped (there is nobody to hand them to).
    Also usable as ``async with OscSource(...) as source:`` (start/close).

    ``allow_hosts``: IP addresses or networks (strings like ``"10.0.0.0/8"`` or parsed
    ``ipaddress`` networks); if given, datagrams from other sender addresses are rejected
    (``osc.sender``). ``rate_limiter``: if given, a token bucket per sender *IP address* (not
    ip:port: a client opening a new socket per message must not get a new budget each time),
    one token per message: a bundle of N messages takes N tokens. A datagram arriving with no
    token left is dropped before it is decoded (counted once as ``rate_limit``: its messages are
    never looked at); of a decoded one, the messages beyond the sender's tokens are dropped and
    each counted as ``rate_limit``, and they put the sender in debt (``RateLimiter.take``). Both
    checks run before the size check and the decoder (docs/security.md).

    ``admits``: if given, asked with the avatar of each message (``default`` for addresses
    without ``/avatar/<id>``) before its arguments are parsed; a refused avatar's message is
    counted once as ``avatar.limit`` (the daemon passes its avatar table's check).
    """

    kind = SOURCE

    def __init__(
        self,
        host: str,
        port: int,
        *,
        stats: InputStats,
        max_datagram_bytes: int = MAX_UDP_PAYLOAD_BYTES,
        allow_hosts: Iterable[str | IpNetwork] | None = None,
        rate_limiter: RateLimiter | None = None,
        admits: Callable[[str], bool] | None = None,
    ) -> None:
        if not 0 <= port <= PORT_RANGE[1]:  # 0 = any free port (tests bind that way)
            raise ValueError(f"OSC input port must be 0..{PORT_RANGE[1]}, got {port}")
        if not 1 <= max_datagram_bytes <= MAX_UDP_PAYLOAD_BYTES:
            raise ValueError(
                f"max_datagram_bytes must be 1..{MAX_UDP_PAYLOAD_BYTES}, got {max_datagram_bytes}"
            )
        self.host = host
        self.port = port
        self.name = f"osc {host}:{port}"
        self.stats = stats
        self.max_datagram_bytes = max_datagram_bytes
        self.allow_list = SenderAllowList(allow_hosts) if allow_hosts is not None else None
        self.rate_limiter = rate_limiter
        self.admits = admits
        self._transport: asyncio.DatagramTransport | None = None
        self._on_sample: Callable[[VadSample], None] | None = None
        self._failure: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Bind the socket; raises ``OSError`` if the address is unusable or the port taken."""
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self.host, self.port)
            )
        except OSError as error:  # say which listener: "Address already in use" alone names none
            raise OSError(error.errno, f"OSC input {self.host}:{self.port}: "
                                       f"{error.strerror or error}") from error
        self._transport = transport
        self._failure = loop.create_future()
        self.port = transport.get_extra_info("sockname")[1]
        self.name = f"osc {self.host}:{self.port}"
        if is_loopback(self.host):  # `vadbridge run` says it in its banner: no line of its own
            log.debug("OSC input listening on %s:%d", self.host, self.port)
        elif self.allow_list is None:
            log.warning(
                "OSC input listening on %s:%d, not a loopback address: anyone who can reach "
                "this port can drive the avatars (restrict it with allow_hosts or a firewall)",
                self.host,
                self.port,
            )
        else:
            # Still a warning: UDP source addresses are easy to forge on a shared network.
            log.warning(
                "OSC input listening on %s:%d, not a loopback address; accepting datagrams "
                "only from %s (UDP senders can be spoofed: firewall the port as well)",
                self.host,
                self.port,
                ", ".join(str(network) for network in self.allow_list.networks),
            )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._on_sample = None

    async def __aenter__(self) -> OscSource:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def run(self, on_sample: Callable[[VadSample], None]) -> None:
        """Deliver samples until cancelled; re-raises an exception from ``on_sample``."""
        await self.start()
        assert self._failure is not None
        self._on_sample = on_sample
        try:
            await self._failure  # only ever completes with on_sample's exception
        finally:
            self.close()

    def _datagram(self, data: bytes, addr: Any) -> None:
        on_sample = self._on_sample
        if on_sample is None:
            return
        stats = self.stats
        sender = addr[0]
        if self.allow_list is not None and not self.allow_list.allows(sender):
            stats.reject("osc.sender", f"datagram from {sender} (not in allow_hosts)",
                         source=SOURCE)
            return
        limiter = self.rate_limiter
        if limiter is not None and not limiter.ready(sender):
            stats.reject(
                "rate_limit",
                # Wording pinned by tests/test_security.py (a one-message datagram's line).
                f"OSC from {sender}: over {limiter.rate_per_s:g} datagrams/s",
                source=SOURCE,
            )
            return
        if len(data) > self.max_datagram_bytes:
            stats.reject(
                "oversize", f"OSC datagram of {len(data)} bytes > {self.max_datagram_bytes}",
                source=SOURCE,
            )
            return
        try:
            messages = decode_datagram(data)
        except OscDecodeError as error:
            stats.reject("osc.decode", f"datagram from {sender}: {error.reason}", source=SOURCE)
            return
        if limiter is not None:
            granted = limiter.take(sender, len(messages))
            if granted < len(messages):
                reason = (
                    f"OSC from {sender}: {len(messages) - granted} of {len(messages)} messages "
                    f"of a datagram over {limiter.rate_per_s:g} messages/s"
                )
                for _ in range(len(messages) - granted):
                    stats.reject("rate_limit", reason, source=SOURCE)
                del messages[granted:]
        admits = self.admits
        for message in messages:
            if isinstance(message, OscDecodeError):  # this message only: a bundle goes on
                stats.reject("osc.decode", f"message from {sender}: {message.reason}",
                             source=SOURCE)
                continue
            if admits is not None:
                avatar = address_avatar(message[0])
                if avatar is not None and not admits(avatar):
                    stats.reject(
                        "avatar.limit", f"OSC {show(message[0])}: avatar {show(avatar)} "
                        "not admitted (unknown, another shard's, or the table is full)",
                        source=SOURCE,
                    )
                    continue
            try:
                sample, clipped = parse_osc_message(*message)
            except InputError as error:
                stats.reject(error.kind, error.reason, source=SOURCE)
                continue
            stats.accept(SOURCE, sample)
            if clipped:
                stats.clipped(SOURCE)
            try:
                on_sample(sample)
            except Exception as error:
                # A bug downstream must tear the daemon's task group down, not be logged by
                # asyncio and leave a dead input behind.
                self._fail(error)
                return

    def _fail(self, error: Exception) -> None:
        self._on_sample = None
        if self._failure is not None and not self._failure.done():
            self._failure.set_exception(error)
