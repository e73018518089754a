"""UDP sink: sends an encoder's datagrams to one receiver, never raising on a send.

The socket is non-blocking and ``connect()``ed: the kernel then reports an ICMP port-unreachable
from the receiver as ``ConnectionRefusedError`` on a later send, which we count like any other
send failure (receiver down, buffer full) and log once per kind (docs/DESIGN.md, "Sources and
sinks"). ``sock.send`` on a non-blocking UDP socket never waits, so calling ``send`` from the
event loop is fine.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Iterable

from vadbridge.config import PORT_RANGE, is_port
from vadbridge.core.types import Frame
from vadbridge.outputs.layout import Encoder, PacketLayout

__all__ = ["UdpOpenError", "UdpSink", "log_send_failure_once", "open_udp_socket"]

logger = logging.getLogger("vadbridge.outputs")


class UdpOpenError(OSError):
    """An output's socket could not be opened: ``name`` is the output, ``reason`` why (without
    the name, for callers that name the output their own way)."""

    def __init__(self, name: str, reason: str, error_number: int | None = None) -> None:
        super().__init__(f"output {name!r}: {reason}")
        self.name = name
        self.reason = reason
        self.errno = error_number


def open_udp_socket(host: str, port: int, name: str) -> socket.socket:
    """A non-blocking UDP socket ``connect()``ed to ``host:port`` (resolved once, here).

    Raises ValueError for a bad port and UdpOpenError (an OSError naming the output) for a host
    that does not resolve or that the kernel will not send to (a broadcast address, an unscoped
    link-local IPv6 address): ``connect()`` checks what every later ``send`` would.
    """
    if not is_port(port):
        low, high = PORT_RANGE
        raise ValueError(f"output {name!r}: port must be an integer in {low}..{high}, got {port!r}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as error:
        raise UdpOpenError(name, f"cannot resolve {host!r}: {error}", error.errno) from error
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.connect(address)
    except OSError as error:
        sock.close()
        raise UdpOpenError(name, _connect_failure(error, host), error.errno) from error
    return sock


def _connect_failure(error: OSError, host: str) -> str:
    """``error``'s text plus what to do about the two refusals a valid-looking host can meet."""
    text = error.strerror or str(error)
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:  # a name: the hint would have to guess what it resolved to
        return text
    if error.errno == errno.EACCES and address.version == 4 and (
        address == ipaddress.IPv4Address("255.255.255.255") or address.packed[-1] == 255
    ):
        return (f"{text} (broadcast needs SO_BROADCAST, which outputs do not set: "
                "send to the receiver's own address)")
    if error.errno == errno.EINVAL and address.version == 6 and address.is_link_local:
        return f"{text} (a link-local IPv6 address needs a scope: {address}%<interface>)"
    return text


def log_send_failure_once(
    logged_errnos: set[int | None], error: OSError, name: str, host: str, port: int
) -> None:
    """Warn about ``error`` unless its errno is already in ``logged_errnos`` (then add it).

    One warning per kind of failure per output: a dead receiver fails every frame, and the
    counters, not the log, carry the rate (docs/DESIGN.md, "Sources and sinks").
    """
    if error.errno in logged_errnos:
        return
    logged_errnos.add(error.errno)
    kind = errno.errorcode.get(error.errno, "?") if error.errno is not None else "?"
    address = f"{host}:{port}"
    where = name if address in name else f"{name} ({address})"  # the address once
    logger.warning(
        "output %s: send failed with %s (%s); further %s failures are only counted",
        where, kind, error.strerror or error, kind,
    )  # fmt: skip


class UdpSink:
    """One output: ``encoder`` + a connected non-blocking UDP socket to ``host:port``.

    ``send`` counts ``frames_sent`` (every datagram of the frame went out) and ``send_errors``
    (a frame stopped at its first failed datagram). Resolving ``host`` happens here, once;
    an unresolvable host or an unroutable address raises ``OSError`` at construction.
    """

    def __init__(self, encoder: Encoder, host: str, port: int, *, name: str) -> None:
        sock = open_udp_socket(host, port, name)
        self.encoder = encoder
        self.name = name
        self.host = host
        self.port = port
        self.frames_sent = 0
        self.send_errors = 0
        self._sock = sock
        self._logged_errnos: set[int | None] = set()
        # The re-send rate of an unchanged face under ``idle_refresh_hz: auto`` (0 = every
        # frame): what the encoder's receivers need (core/refresh.py).
        self.auto_refresh_hz: float = getattr(encoder, "AUTO_REFRESH_HZ", 0.0)

    def send(self, frame: Frame) -> None:
        """Encode and send one frame; a failure is counted and logged once per kind."""
        self.send_datagrams(self.encoder.encode(frame))

    def send_datagrams(self, datagrams: Iterable[memoryview | bytes]) -> None:
        """Send one frame's encoded datagrams (``send``, or a ``UdpBatch`` that encoded them);
        a failure is counted and logged once per kind."""
        try:
            for datagram in datagrams:
                self._sock.send(datagram)
        except OSError as error:
            self.send_errors += 1
            log_send_failure_once(self._logged_errnos, error, self.name, self.host, self.port)
            return
        self.frames_sent += 1

    def layout(self) -> PacketLayout | None:
        """The encoder's packet layout, when it has one (then a ``UdpBatch`` can encode for it)."""
        layout = getattr(self.encoder, "layout", None)
        return layout() if layout is not None else None

    def close(self) -> None:
        """Close the socket (idempotent). Sends nothing: the daemon sends the neutral frame."""
        self._sock.close()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def __repr__(self) -> str:
        return f"UdpSink({self.name!r}, {self.host}:{self.port}, {type(self.encoder).__name__})"
