"""iFacialMocap handshake mode: the phone's part, for receivers that ask for frames.

A receiver (VSeeFace, VRCFaceTracking's module, ...) sends the handshake string to the phone's
port 49983; the phone then streams frames to port 49983 on the receiver's address, whatever port
the handshake came from (the official example sends it from a throwaway socket and listens on
49983: docs/references.md, "iFacialMocap"). This sink listens on ``listen_host:listen_port``
(bound in ``run``, so a reload that changes the output frees the port before the new sink binds
it) and streams each frame to every receiver whose handshake arrived, in the format it asked for.

Receivers do not repeat the handshake (the app needs no keep-alive), so a receiver is dropped
when it is evidently gone: each gets its own ``connect()``ed socket, on which the kernel reports
an ICMP port-unreachable (the receiver closed its port) as ``ConnectionRefusedError`` at the next
send. ``handshake_timeout_s`` adds an expiry after the last handshake for receivers that repeat
it. The list is bounded (``max_receivers``); a handshake beyond it is refused, counted and logged
once. Everything else arriving on the port is counted per kind and logged once per kind.

Push mode (a fixed destination) needs none of this: it is ``UdpSink`` with the encoder.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vadbridge.config import IFacialMocapOutputConfig, is_loopback
from vadbridge.core.types import Frame
from vadbridge.outputs.ifacialmocap import (
    HandshakeError,
    IFacialMocapEncoder,
    IFacialMocapFormat,
    handshake_format,
)
from vadbridge.outputs.udp import UdpOpenError, log_send_failure_once, open_udp_socket

__all__ = ["HandshakeSink"]

log = logging.getLogger("vadbridge.outputs")

# A port in use is tried again for a second: the sink a reload replaces lets go of it only when
# its transport's close has run, a loop turn after the new sink's task started. The error then
# names the output ("Address already in use" alone names none).
BIND_ATTEMPTS = 20
BIND_RETRY_S = 0.05


@dataclass(slots=True)
class _Receiver:
    host: str
    port: int  # where its frames go
    version: IFacialMocapFormat
    last_handshake_s: float
    sock: socket.socket


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sink: HandshakeSink) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._sink._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # The listening socket sends nothing: such errors are not about our frames.
        log.debug("iFacialMocap listening socket error (ignored): %s", exc)


class HandshakeSink:
    """One ``ifacialmocap`` output in handshake mode (see the module's docstring).

    Counters: ``frames_sent`` (datagrams that went out, one per receiver per frame),
    ``send_errors`` (sends that failed, a receiver's port closing included), ``rejected``
    (datagrams on the listening port that were not a handshake we take, per kind:
    ``malformed``, ``unsupported``, ``full``, ``self``, ``address``). ``receiver_count`` is the
    number of receivers streamed to now. ``clock`` (monotonic seconds) times the handshakes.
    """

    def __init__(self, config: IFacialMocapOutputConfig, *, name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.listen_host = config.listen_host
        self.listen_port = config.listen_port  # the bound port once listening (0 = any)
        self.reply_port = config.reply_port
        self.max_receivers = config.max_receivers
        self.handshake_timeout_s = config.handshake_timeout_s
        self.frames_sent = 0
        self.send_errors = 0
        self.rejected: dict[str, int] = {}
        self._clock = clock
        self._encoders = {version: IFacialMocapEncoder(version) for version in ("v1", "v2")}
        self._encoded: dict[str, bytes | memoryview] = {}
        self._receivers: dict[tuple[str, int], _Receiver] = {}
        self._sending: tuple[_Receiver, ...] = ()  # the receivers' values, kept with the dict
        self._transport: asyncio.DatagramTransport | None = None
        self._stopped: asyncio.Event | None = None
        self._closing = False
        self._logged_kinds: set[str] = set()
        self._logged_errnos: set[int | None] = set()

    # --- the async side -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listening socket; raises ``OSError`` naming the output if it cannot."""
        if self._transport is not None or self._closing:
            return
        loop = asyncio.get_running_loop()
        attempts = BIND_ATTEMPTS
        while True:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(self.listen_host, self.listen_port))
                break
            except OSError as error:
                attempts -= 1
                if error.errno == errno.EADDRINUSE and attempts > 0 and not self._closing:
                    await asyncio.sleep(BIND_RETRY_S)
                    continue
                hint = (" (a receiver on this machine holds its port itself: use mode: push "
                        "for it)" if error.errno == errno.EADDRINUSE else "")
                raise OSError(error.errno, f"output {self.name}: cannot listen for handshakes: "
                              f"{error.strerror or error}{hint}") from error
        if self._closing:  # closed while binding
            transport.close()
            return
        self._transport = transport
        self.listen_port = transport.get_extra_info("sockname")[1]
        if is_loopback(self.listen_host):
            return
        log.warning(
            "output %s: listening for iFacialMocap handshakes on %s:%d, not a loopback "
            "address: any host that can reach this port can have frames streamed to it (at "
            "most %d at once; firewall the port to choose who may)",
            self.name, self.listen_host, self.listen_port, self.max_receivers)

    async def run(self) -> None:
        """Listen until ``close()``; raises ``OSError`` if the port cannot be bound."""
        self._stopped = asyncio.Event()
        try:
            await self.start()
            if not self._closing:
                await self._stopped.wait()
        finally:
            self._close_sockets()

    # --- the synchronous side (frame loop and datagrams) --------------------------------------

    @property
    def receiver_count(self) -> int:
        return len(self._receivers)

    @property
    def receivers(self) -> list[tuple[str, int, IFacialMocapFormat]]:
        """Each receiver's address and format, in the order they joined."""
        return [(r.host, r.port, r.version) for r in self._sending]

    @property
    def listening(self) -> bool:
        return self._transport is not None

    def send(self, frame: Frame) -> None:
        """Send ``frame`` to every receiver, each frame encoded once per format in use."""
        if not self._sending:
            return
        if self.handshake_timeout_s > 0:
            self._expire(self._clock())
        encoded = self._encoded  # each format encoded once per frame
        encoded.clear()
        for receiver in self._sending:
            datagram = encoded.get(receiver.version)
            if datagram is None:
                datagram = self._encoders[receiver.version].encode(frame)[0]
                encoded[receiver.version] = datagram
            try:
                receiver.sock.send(datagram)
            except ConnectionRefusedError:
                self.send_errors += 1
                self._drop(receiver, "its port is closed (ICMP port unreachable)")
            except OSError as error:
                self.send_errors += 1
                log_send_failure_once(self._logged_errnos, error, self.name, receiver.host,
                                      receiver.port)
            else:
                self.frames_sent += 1

    def close(self) -> None:
        """Stop listening and forget the receivers (idempotent); sends nothing."""
        self._closing = True
        self._close_sockets()
        if self._stopped is not None:
            self._stopped.set()

    @property
    def closed(self) -> bool:
        return self._closing

    def _close_sockets(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for receiver in self._sending:
            receiver.sock.close()
        self._receivers.clear()
        self._sending = ()

    def _datagram(self, data: bytes, addr: Any) -> None:
        if self._closing:
            return
        host, source_port = addr[0], addr[1]
        try:
            version = handshake_format(data)
        except HandshakeError as error:
            self._reject(error.kind, f"from {host}: {error.reason}")
            return
        port = source_port if self.reply_port == "source" else self.reply_port
        now_s = self._clock()
        known = self._receivers.get((host, port))
        if known is not None:  # a receiver that reconnects, or repeats the handshake
            known.last_handshake_s = now_s
            if known.version != version:
                log.info("output %s: %s:%d now asks for %s frames", self.name, host, port,
                         version)
                known.version = version
            return
        self._expire(now_s)
        if len(self._receivers) >= self.max_receivers:
            self._reject("full", f"handshake from {host} refused: already streaming to "
                         f"{self.max_receivers} receivers (max_receivers)")
            return
        try:
            sock = open_udp_socket(host, port, self.name)
        except OSError as error:  # e.g. a forged broadcast source address
            reason = error.reason if isinstance(error, UdpOpenError) else str(error)
            self._reject("address", f"handshake from {host} refused: {reason}")
            return
        self._add(_Receiver(host, port, version, now_s, sock))

    def _add(self, receiver: _Receiver) -> None:
        # Our own listening socket as the destination would feed our frames back to us.
        local_host = receiver.sock.getsockname()[0]
        if receiver.port == self.listen_port and local_host == receiver.host:
            receiver.sock.close()
            self._reject("self", f"handshake from {receiver.host} refused: its frames would go "
                         f"to this output's own port {receiver.port} (reply_port)")
            return
        self._receivers[(receiver.host, receiver.port)] = receiver
        self._sending = tuple(self._receivers.values())
        log.info("output %s: streaming %s frames to %s:%d (%d receiver%s)", self.name,
                 receiver.version, receiver.host, receiver.port, len(self._receivers),
                 "" if len(self._receivers) == 1 else "s")

    def _drop(self, receiver: _Receiver, why: str) -> None:
        if self._receivers.pop((receiver.host, receiver.port), None) is None:
            return
        receiver.sock.close()
        self._sending = tuple(self._receivers.values())
        log.info("output %s: stopped streaming to %s:%d: %s (%d receiver%s left)", self.name,
                 receiver.host, receiver.port, why, len(self._receivers),
                 "" if len(self._receivers) == 1 else "s")

    def _expire(self, now_s: float) -> None:
        timeout_s = self.handshake_timeout_s
        if timeout_s <= 0:
            return
        for receiver in self._sending:
            if now_s - receiver.last_handshake_s > timeout_s:
                self._drop(receiver, f"no handshake for {timeout_s:g} s (handshake_timeout_s)")

    def _reject(self, kind: str, reason: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        if kind in self._logged_kinds:
            return
        self._logged_kinds.add(kind)
        log.warning("output %s: %s; further ones are only counted", self.name, reason)

    def __repr__(self) -> str:
        return (f"HandshakeSink({self.name!r}, {self.listen_host}:{self.listen_port}, "
                f"{len(self._receivers)} receivers)")
