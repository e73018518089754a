"""Tell a service manager how the daemon is doing: systemd's ``sd_notify`` protocol.

Under ``Type=notify`` (``config/vadbridge.service``) systemd sets ``NOTIFY_SOCKET`` and waits
for ``READY=1`` before it calls the service started; a ``systemctl reload`` asked for earlier
waits for it too, so the SIGHUP it sends never lands in the interpreter's start-up, where no
handler can exist yet (``vadbridge.hangup``). ``RELOADING=1`` with ``MONOTONIC_USEC`` and the
``READY=1`` after it bracket a reload (what ``Type=notify-reload`` expects); ``STOPPING=1``
is sent as soon as SIGTERM or SIGINT arrives, before the neutral frames.

The protocol is one datagram per state on an ``AF_UNIX`` socket whose path is the variable's
value, ``@`` naming an abstract one. Sources: sd_notify(3), "Notes" and "Standalone
implementations" (docs/references.md). Without the variable (not run by systemd, or not on
Linux) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)

__all__ = ["ServiceNotifier"]


def _socket_address(value: str) -> str | None:
    """The ``AF_UNIX`` address ``NOTIFY_SOCKET`` names, or None for forms we do not speak
    (``vsock:``, relative paths)."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


class ServiceNotifier:
    """Sends sd_notify states to ``address`` (default: ``$NOTIFY_SOCKET``); a no-op without one.

    Reloads may overlap (two quick SIGHUPs queue behind one another): ``reloading()`` and
    ``reloaded()`` count them, and the manager hears one ``RELOADING=1`` and, when the last one
    is done, one ``READY=1``. Nothing is sent after ``stopping()``. A failed send is logged once
    and never raised, and a send never blocks the loop (a full queue at the manager drops the
    state): the bridge streams whether or not its supervisor listens.
    """

    def __init__(self, address: str | None = None) -> None:
        value = os.environ.get("NOTIFY_SOCKET", "") if address is None else address
        self._address = _socket_address(value) if value else None
        self._socket: socket.socket | None = None
        self._failed = False
        self._reloads = 0
        if value and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a socket path; not notifying the service "
                        "manager", value[:80])

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self) -> None:
        self._send("READY=1\nSTATUS=streaming")

    def reloading(self) -> None:
        self._reloads += 1
        if self._reloads == 1:
            # systemd matches the reload to its request by this clock (CLOCK_MONOTONIC, µs).
            self._send(f"RELOADING=1\nSTATUS=reloading the config\n"
                       f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def reloaded(self) -> None:
        self._reloads = max(0, self._reloads - 1)
        if self._reloads == 0:
            self.ready()

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=stopping")
        self._address = None  # the last word: a reload finishing now says nothing

    def close(self) -> None:
        self._address = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(message.encode(), self._address)
        except OSError as error:
            if not self._failed:
                self._failed = True
                log.warning("could not notify the service manager (%s): %s",
                            message.split("\n", 1)[0], error.strerror or error)
