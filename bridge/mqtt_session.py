"""One MQTT broker connection kept up, shared by the MQTT source and the MQTT sink.

aiomqtt 2.5 does not reconnect by itself (docs/references.md, "MQTT"):
``MqttSession.run(serve)`` connects, hands the client to ``serve`` and, when the connection
fails or drops, retries with jittered exponential backoff. A broker refusing the credentials
and a broker that cannot be reached are told apart; each kind of problem is logged once when it
starts and its repeats are debug lines, so a long outage costs one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final

import aiomqtt

from vadbridge.config import MQTT_PROTOCOL_NAMES, MqttConnectionConfig, TlsConfig

__all__ = ["PROTOCOLS", "MqttSession", "is_auth_refusal", "reason", "tls_context"]

# The config's protocol numbers (the CONNECT packet's protocol level) -> aiomqtt's enum.
PROTOCOLS: Final = {4: aiomqtt.ProtocolVersion.V311, 5: aiomqtt.ProtocolVersion.V5}
# CONNACK codes meaning "your credentials": 3.1.1 (4 bad user name or password, 5 not
# authorised) and 5 (134 bad user name or password, 135 not authorized; mosquitto 2 answers a
# wrong password with 135). Retrying cannot fix these, so they get their own error line.
_AUTH_REFUSED_CODES: Final = frozenset({4, 5, 134, 135})


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """TLS to the broker: ``ca_file`` verifies it (system CAs if None); cert+key for client
    auth. Raises ``OSError``/``ssl.SSLError`` for unreadable or invalid files (fail at start)."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
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


class MqttSession:
    """Connects to one broker, and again after every failure, for ``run(serve)``.

    Everything about the connection comes from ``connection`` (validated at config load; its
    defaults are stated there once): address, protocol, credentials, TLS, keep-alive and the
    reconnect backoff. ``serve(client)`` calls ``mark_connected()`` once the connection is
    usable (the source after subscribing); ``connected`` stays True until the connection ends
    and ``wait_connected()`` waits for it. Log lines start with ``log_prefix``; ``outage_note``
    ends the line that reports a new outage. The password is never logged. Raises
    ``OSError``/``ssl.SSLError`` for unusable TLS files.
    """

    def __init__(
        self,
        connection: MqttConnectionConfig,
        *,
        log: logging.Logger,
        max_queued_messages: int | None = None,
        queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
        log_prefix: str = "",
        outage_note: str = "",
    ) -> None:
        self.connection = connection
        self.host = connection.host
        self.port = connection.port
        self.protocol_name = MQTT_PROTOCOL_NAMES[connection.protocol]
        self._tls_context = tls_context(connection.tls) if connection.tls is not None else None
        self.max_queued_messages = max_queued_messages
        self._queue_type = queue_type  # aiomqtt's incoming queue class (None: asyncio.Queue)
        self.reconnect_initial_s = connection.reconnect_initial_s
        self.reconnect_max_s = connection.reconnect_max_s
        self._log = log
        self._prefix = log_prefix
        self._outage_note = outage_note
        self.connected = False
        self._connected_event = asyncio.Event()
        # Per run(): the kind of problem last logged ("auth" or "unavailable"; None while
        # connected), whether a connection ever succeeded, the next backoff.
        self._logged_problem: str | None = None
        self._ever_connected = False
        self._backoff_s = self.reconnect_initial_s

    async def wait_connected(self) -> None:
        """Return once ``serve`` has marked the connection usable."""
        await self._connected_event.wait()

    def mark_connected(self) -> bool:
        """Called by ``serve`` once connected: resets the backoff; True if this is a reconnect."""
        reconnected = self._ever_connected
        self._set_connected(True)
        self._ever_connected = True
        self._logged_problem = None
        self._backoff_s = self.reconnect_initial_s
        return reconnected

    async def run(
        self,
        serve: Callable[[aiomqtt.Client], Awaitable[None]],
        *,
        stop: asyncio.Event | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """Connect and ``serve`` until it returns, reconnecting on ``aiomqtt.MqttError``.

        ``on_failure`` is called for each failed attempt and each lost connection. A set
        ``stop`` ends the wait between attempts at once and then the loop. Any other exception
        from ``serve`` propagates (a bug must tear the daemon down).
        """
        self._backoff_s = self.reconnect_initial_s
        self._ever_connected = False
        self._logged_problem = None
        while stop is None or not stop.is_set():
            try:
                async with _Connection(self._client()) as client:
                    await serve(client)
                    return
            except aiomqtt.MqttError as error:
                if on_failure is not None:
                    on_failure()
                self._log_failure(error)
            finally:
                self._set_connected(False)
            await self._pause(stop)

    def _client(self) -> aiomqtt.Client:
        connection = self.connection
        return aiomqtt.Client(
            connection.host,
            connection.port,
            username=connection.username,
            password=connection.password,
            identifier=connection.client_id,
            protocol=PROTOCOLS[connection.protocol],
            keepalive=connection.keepalive_s,
            tls_context=self._tls_context,
            max_queued_incoming_messages=self.max_queued_messages,
            queue_type=self._queue_type,
        )

    def _log_failure(self, error: aiomqtt.MqttError) -> None:
        problem = "auth" if is_auth_refusal(error) else "unavailable"
        where = f"{self.host}:{self.port}"
        if self.connected:
            self._log.warning(
                "%sMQTT connection to %s lost (%s); reconnecting",
                self._prefix, where, reason(error),
            )  # fmt: skip
        elif problem == self._logged_problem:
            self._log.debug("%sMQTT connect to %s failed again: %s", self._prefix, where, error)
        elif problem == "auth":
            self._log.error(
                "%sMQTT broker %s refused the credentials of user %r (%s): check "
                "username and password/password_env; retrying with backoff up to %.1f s%s",
                self._prefix, where, self.connection.username, error, self.reconnect_max_s,
                self._outage_note,
            )  # fmt: skip
        else:
            self._log.warning(
                "%sMQTT broker %s unavailable (%s); retrying with backoff (%.1f s up to %.1f s)%s",
                self._prefix, where, reason(error), self.reconnect_initial_s, self.reconnect_max_s,
                self._outage_note,
            )  # fmt: skip
        # A lost connection was logged as such: the failed reconnects after it are its repeats.
        self._logged_problem = "unavailable" if self.connected else problem

    async def _pause(self, stop: asyncio.Event | None) -> None:
        # Full-ish jitter keeps many bridges from reconnecting to a restarted broker in step.
        delay_s = self._backoff_s * random.uniform(0.5, 1.0)
        if stop is None:
            await asyncio.sleep(delay_s)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay_s)
        self._backoff_s = min(self._backoff_s * 2.0, self.reconnect_max_s)

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        if connected:
            self._connected_event.set()
        else:
            self._connected_event.clear()


class _Connection:
    """``async with _Connection(client)`` is ``async with client``, but safe to cancel mid-connect.

    aiomqtt 2.5's ``Client.__aenter__`` waits for the CONNACK with ``asyncio.wait_for`` on its
    ``_connected`` future, so a cancellation there cancels that future while paho's socket stays
    open with aiomqtt's reader on the loop. When that reader then reads the broker's refusal,
    paho reports a disconnect and aiomqtt's ``_on_disconnect`` calls ``_connected.exception()``,
    which raises ``CancelledError`` inside the loop callback (asyncio logs "Exception in
    callback"); an accepted CONNACK leaves the connection open instead. Python 3.11's
    ``wait_for`` also loses a cancellation that lands in the step that handled the CONNACK: the
    session would retry on. Closing the socket after the cancellation is too late, because
    ``wait_for`` yields to the loop between cancelling ``_connected`` and raising.

    So the connect runs shielded. On cancellation its CONNACK future gets an error of ours (a
    finished future cannot be cancelled, and aiomqtt's callbacks take an error), which ends the
    attempt at once; ``_close_abandoned`` then closes the socket once ``__aenter__`` is over, that
    is once paho's ``connect()`` has returned in aiomqtt's executor thread (touching the socket
    earlier would race that thread). Paho's close has aiomqtt remove its reader and writer.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client

    async def __aenter__(self) -> aiomqtt.Client:
        client = self._client
        connecting = asyncio.ensure_future(client.__aenter__())
        try:
            await asyncio.shield(connecting)
        except asyncio.CancelledError:
            waiting = client._connected  # aiomqtt's CONNACK future (see the class docstring)
            if not waiting.done():
                waiting.set_exception(aiomqtt.MqttError("connect cancelled"))
                waiting.exception()  # marked as read: unread if the loop ends first, not an error
            connecting.add_done_callback(functools.partial(_close_abandoned, client))
            # Over at once, unless paho's connect() still runs in its thread (TCP, TLS): left
            # running, asyncio.run() would cancel it while the thread goes on opening a socket.
            await asyncio.wait([connecting])
            raise
        return client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)


def _close_abandoned(client: aiomqtt.Client, connecting: asyncio.Future[aiomqtt.Client]) -> None:
    """Close the socket of a connect given up on, once aiomqtt's ``__aenter__`` has ended."""
    if connecting.cancelled():
        # Cancelled by the loop's shutdown (a second cancellation cut the wait short), maybe
        # while paho's connect() still runs in its thread: leave the socket to paho (the
        # answered future keeps aiomqtt's callbacks quiet).
        return
    try:
        with contextlib.suppress(aiomqtt.MqttError):  # a refusal, or our "connect cancelled"
            connecting.result()
    finally:
        client._client._sock_close()  # paho's socket close, with its on_socket_close callback


def is_auth_refusal(error: aiomqtt.MqttError) -> bool:
    """True if the broker refused the client's credentials (no retry can fix that)."""
    if not isinstance(error, aiomqtt.MqttCodeError):
        return False
    code = error.rc
    value = getattr(code, "value", code)  # paho's ReasonCode carries the number in .value
    return isinstance(value, int) and value in _AUTH_REFUSED_CODES


def reason(error: aiomqtt.MqttError) -> str:
    """The error with its cause (aiomqtt wraps the socket or TLS error that explains it)."""
    cause = error.__cause__
    return f"{error}: {cause}" if cause is not None else str(error)
