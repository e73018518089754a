"""Cancelling an ``MqttSession`` while its connect is in flight, against a real mosquitto, with a
proxy in between that holds the broker's bytes so the cancellation lands exactly where wanted:
while aiomqtt waits for the CONNACK, or while paho's connect() is still in the TLS handshake in
aiomqtt's executor thread.

Cancelling aiomqtt 2.5's connect cancelled its CONNACK future but left its socket reader
registered: the refusal read later raised ``CancelledError`` inside an event-loop callback
(asyncio logs "Exception in callback"); a cancellation landing together with the CONNACK was
lost (the session retried on); and a connect cancelled inside the executor thread left its
socket and housekeeping task behind when the loop closed. All three were seen as flaky failures
of the wrong-password test in test_security.py, which stops the bridge at a random moment of
its retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from conftest import Mosquitto, SecureMosquitto, _mosquitto_passwd_binary

from vadbridge.config import MqttConnectionConfig, TlsConfig
from vadbridge.mqtt_session import MqttSession

TIMEOUT_S = 10.0  # only bounds a failing test
WRONG_PASSWORD = "Wr0ng-Passw0rd-for-test"


class PasswordMosquitto(Mosquitto):
    """Mosquitto on one plain listener that wants ``username``/``password`` (a password file)."""

    username = "bridge"
    password = "c0rrect-h0rse-Battery"

    def __init__(self, directory: Path) -> None:
        self.password_file = directory / "passwd"
        subprocess.run(
            [_mosquitto_passwd_binary(), "-b", "-c", str(self.password_file), self.username,
             self.password],
            check=True, capture_output=True,
        )  # fmt: skip
        super().__init__(directory)

    def _config_text(self) -> str:
        return super()._config_text().replace(
            "allow_anonymous true\n", f"allow_anonymous false\npassword_file {self.password_file}\n"
        )  # fmt: skip


@pytest.fixture
def password_mosquitto(tmp_path: Path) -> Iterator[PasswordMosquitto]:
    broker = PasswordMosquitto(tmp_path)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


class HoldingProxy:
    """A TCP proxy to the broker for one client, in threads of its own (it outlives the test's
    event loop): the client's bytes go through at once, the broker's are held until
    ``release()``, then forwarded as they come, the broker's hang-up included."""

    def __init__(self, broker_port: int) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.broker_answered = threading.Event()
        self.client_hung_up = threading.Event()
        self._lock = threading.Lock()
        self._held = bytearray()
        self._released = False
        self._broker_hung_up = False
        self._client: socket.socket | None = None
        self._sockets = [self._listener]
        self._threads = [threading.Thread(target=self._accept, args=(broker_port,), daemon=True)]
        self._threads[0].start()

    def __enter__(self) -> HoldingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(TIMEOUT_S)

    def _accept(self, broker_port: int) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return  # closed before a client came
        broker = socket.create_connection(("127.0.0.1", broker_port))
        self._sockets += [client, broker]
        self._client = client
        for relay in (self._upstream, self._downstream):
            thread = threading.Thread(target=relay, args=(client, broker), daemon=True)
            self._threads.append(thread)
            thread.start()
        # Anyone else connecting is a second attempt: refused by the closed listener.
        self._listener.close()

    def _upstream(self, client: socket.socket, broker: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                broker.sendall(data)
        self.client_hung_up.set()
        with contextlib.suppress(OSError):
            broker.shutdown(socket.SHUT_WR)

    def _downstream(self, client: socket.socket, broker: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := broker.recv(65536):
                with self._lock:
                    if self._released:
                        client.sendall(data)
                    else:
                        self._held += data
                        self.broker_answered.set()
        with self._lock:
            self._broker_hung_up = True
            if self._released:
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_WR)

    def release(self) -> None:
        """Forward what the broker said so far (and its hang-up): it is in the client's socket
        when this returns."""
        with self._lock:
            self._released = True
            assert self._client is not None
            with contextlib.suppress(OSError):  # the client may have hung up
                self._client.sendall(self._held)
                if self._broker_hung_up:
                    self._client.shutdown(socket.SHUT_WR)


async def until(event: threading.Event, timeout_s: float = TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not event.is_set():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def session_to(port: int, username: str, password: str,
               tls: TlsConfig | None = None) -> MqttSession:
    connection = MqttConnectionConfig(
        host="127.0.0.1", port=port, protocol=4, username=username, password=password, tls=tls,
        reconnect_max_s=0.05,
    )
    return MqttSession(connection, log=logging.getLogger("test.mqtt_session"))


async def never_served(client: aiomqtt.Client) -> None:
    raise AssertionError("served a connection the test cancelled or the broker refused")


async def cancel_while_connecting(broker: PasswordMosquitto, *, answer_first: bool) -> bool:
    """Cancel a session whose CONNACK (a refusal) is held by the proxy; True if the abandoned
    connection was closed before the broker's answer came through."""
    with HoldingProxy(broker.port) as proxy:
        session = session_to(proxy.port, broker.username, WRONG_PASSWORD)
        run = asyncio.create_task(session.run(never_served))
        assert await until(proxy.broker_answered)
        # The CONNECT went out, so paho's connect() has returned in aiomqtt's executor thread
        # (or is about to): give the session a moment to be waiting for the CONNACK.
        await asyncio.sleep(0.2)
        assert not run.done()
        if answer_first:  # the refusal is already readable when the cancellation lands
            proxy.release()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, TIMEOUT_S)
        closed_first = await until(proxy.client_hung_up, 1.0) if not answer_first else True
        proxy.release()
        # Whatever the client left registered on the loop runs now.
        await asyncio.sleep(0.3)
        return closed_first


def loop_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()  # "... was never retrieved", "Task was destroyed ..." are logged at collection
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info is not None
    ]


def test_cancelling_a_refused_connect_leaves_no_callback_behind(
    password_mosquitto: PasswordMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    closed_first = asyncio.run(cancel_while_connecting(password_mosquitto, answer_first=False))
    assert loop_errors(caplog) == []
    assert closed_first, "the cancelled connect kept its connection open"
    assert "not authorised" in password_mosquitto.log_text()


def test_cancelling_a_connect_whose_refusal_is_already_readable_leaves_no_callback_behind(
    password_mosquitto: PasswordMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    asyncio.run(cancel_while_connecting(password_mosquitto, answer_first=True))
    assert loop_errors(caplog) == []
    assert "not authorised" in password_mosquitto.log_text()


def test_a_cancellation_arriving_with_the_refusal_stops_the_session(
    password_mosquitto: PasswordMosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's ``asyncio.wait_for`` (inside aiomqtt's connect) returns the CONNACK's result
    instead of a cancellation that lands in the same loop step: the session must stop anyway."""
    attempts = 0

    async def scenario() -> None:
        session = session_to(password_mosquitto.port, password_mosquitto.username, WRONG_PASSWORD)
        run = asyncio.create_task(session.run(never_served))
        handle_connack = aiomqtt.Client._on_connect

        def cancel_on_first_connack(client: aiomqtt.Client, *args: Any) -> None:
            nonlocal attempts
            handle_connack(client, *args)
            attempts += 1
            if attempts == 1:
                run.cancel()

        monkeypatch.setattr(aiomqtt.Client, "_on_connect", cancel_on_first_connack)
        done, _ = await asyncio.wait([run], timeout=TIMEOUT_S)
        assert done, f"the session ignored its cancellation: {attempts} attempts"
        assert run.cancelled()

    asyncio.run(scenario())
    assert attempts == 1


def test_a_connect_cancelled_in_the_tls_handshake_leaves_nothing_when_the_loop_ends(
    secure_mosquitto: SecureMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The cancellation lands while paho's connect() is in aiomqtt's executor thread; the loop
    ends right after the session does, the handshake and the CONNECT (right password: accepted)
    going on in that thread meanwhile."""
    broker = secure_mosquitto
    caplog.set_level(logging.DEBUG)
    with HoldingProxy(broker.tls_port) as proxy:

        async def scenario() -> None:
            tls = TlsConfig(ca_file=str(broker.pki.ca_cert))
            session = session_to(proxy.port, broker.username, broker.password, tls)
            run = asyncio.create_task(session.run(never_served))
            assert await until(proxy.broker_answered)  # the ServerHello, held
            await asyncio.sleep(0.2)  # the client waits for it in the executor thread
            threading.Timer(0.05, proxy.release).start()
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(run, TIMEOUT_S)

        asyncio.run(scenario())
        hung_up = proxy.client_hung_up.wait(1.0)
    assert loop_errors(caplog) == []  # collects the client: what it left behind shows now
    assert hung_up, "the cancelled connect stayed connected"
