"""systemd's sd_notify protocol (``vadbridge.service_notify``) on real AF_UNIX sockets, and the
daemon telling a listening socket when it is ready, reloading and stopping."""

from __future__ import annotations

import configparser
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_harness import UdpReceiver
from conftest import kill_if_running
from test_run_signals import REPO, vmc_config

from vadbridge.service_notify import ServiceNotifier


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A listening datagram socket in a short /tmp folder (AF_UNIX paths stop at 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="vbn", dir="/tmp")
    path = os.path.join(folder, "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(60)  # the daemon's start-up on a loaded CI machine comes before READY
    yield listener, path
    listener.close()
    os.unlink(path)
    os.rmdir(folder)


def fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n"))


def test_each_state_is_one_datagram_of_newline_separated_assignments(
        notify_socket: tuple[socket.socket, str]) -> None:
    listener, path = notify_socket
    notifier = ServiceNotifier(address=path)
    assert notifier.enabled
    notifier.ready()
    before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.stopping()
    notifier.close()
    ready, reloading, stopping = (fields(listener.recv(4096)) for _ in range(3))
    assert ready == {"READY": "1", "STATUS": "streaming"}
    assert reloading["RELOADING"] == "1"
    # systemd pairs the reload with its request by this CLOCK_MONOTONIC stamp in µs.
    assert before_us <= int(reloading["MONOTONIC_USEC"]) <= after_us
    assert stopping["STOPPING"] == "1"


def test_overlapping_reloads_are_one_reloading_and_one_ready(
        notify_socket: tuple[socket.socket, str]) -> None:
    """Two quick SIGHUPs queue two reloads: the manager must not hear READY=1 while the second
    still waits, nor a second RELOADING=1 it has no request for."""
    listener, path = notify_socket
    listener.settimeout(0.2)
    notifier = ServiceNotifier(address=path)
    notifier.reloading()
    notifier.reloading()
    notifier.reloaded()
    assert fields(listener.recv(4096))["RELOADING"] == "1"
    with pytest.raises(TimeoutError):  # one reload still pending: nothing yet
        listener.recv(4096)
    notifier.reloaded()
    assert fields(listener.recv(4096)) == {"READY": "1", "STATUS": "streaming"}
    notifier.close()


def test_nothing_is_said_after_stopping(notify_socket: tuple[socket.socket, str]) -> None:
    """A reload that ends during the shutdown must not tell the manager it is ready again."""
    listener, path = notify_socket
    listener.settimeout(0.2)
    notifier = ServiceNotifier(address=path)
    notifier.reloading()
    notifier.stopping()
    notifier.reloaded()
    notifier.stopping()
    notifier.close()
    states = [fields(listener.recv(4096)) for _ in range(2)]
    assert [next(iter(state)) for state in states] == ["RELOADING", "STOPPING"]
    with pytest.raises(TimeoutError):
        listener.recv(4096)


def test_an_at_sign_names_an_abstract_socket() -> None:
    name = f"vadbridge-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(5)
        notifier = ServiceNotifier(address="@" + name)
        notifier.ready()
        notifier.close()
        assert fields(listener.recv(4096))["READY"] == "1"


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = ServiceNotifier()
    assert not notifier.enabled
    notifier.ready()
    assert notifier._socket is None  # no socket was even opened


def test_a_form_we_do_not_speak_is_named_once_and_ignored(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "vadbridge.service_notify"):
        notifier = ServiceNotifier(address="vsock:2:1234")
        notifier.ready()
    assert not notifier.enabled
    assert [r.getMessage() for r in caplog.records] == [
        "NOTIFY_SOCKET='vsock:2:1234' is not a socket path; not notifying the service manager"]


def test_a_manager_that_went_away_is_logged_once_and_never_raises(
        caplog: pytest.LogCaptureFixture) -> None:
    notifier = ServiceNotifier(address="/tmp/vadbridge-no-such-notify-socket")
    with caplog.at_level(logging.WARNING, "vadbridge.service_notify"):
        notifier.ready()
        notifier.reloading()
        notifier.stopping()
    notifier.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages
    assert messages[0].startswith("could not notify the service manager (READY=1): ")


def test_the_daemon_says_ready_reloading_and_stopping(
        tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    """What ``Type=notify`` in config/vadbridge.service relies on: READY=1 once the bridge
    streams, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM."""
    listener, path = notify_socket
    vmc = UdpReceiver()
    config = vmc_config(tmp_path / "bridge.yaml", vmc.port)
    log = tmp_path / "bridge.log"
    with log.open("wb") as stderr:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "vadbridge", "run", "--config", str(config)], cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "NOTIFY_SOCKET": path})
    try:
        assert fields(listener.recv(4096)) == {"READY": "1", "STATUS": "streaming"}
        assert b"streaming at" in log.read_bytes()  # logged before READY=1 was sent
        assert vmc.receive(5), "ready, but no frames"
        daemon.send_signal(signal.SIGHUP)
        assert fields(listener.recv(4096))["RELOADING"] == "1"
        assert fields(listener.recv(4096))["READY"] == "1"
        assert b"config reloaded" in log.read_bytes()  # READY=1 came after the reload
        daemon.send_signal(signal.SIGTERM)
        assert fields(listener.recv(4096))["STOPPING"] == "1"
        assert daemon.wait(timeout=10) == 0
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):  # said once, and nothing after it
            listener.recv(4096)
    finally:
        kill_if_running(daemon)
        vmc.close()


def test_the_shipped_unit_waits_for_ready_and_reloads_by_sighup() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((REPO / "config" / "vadbridge.service").read_text())
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].split()[1:3] == ["run", "--config"]
    assert service["ExecStart"].split()[0].endswith("/vadbridge")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # `vadbridge run` exits 2 on a bad config (tests/test_config_hostile.py): no restart loop.
    assert service["RestartPreventExitStatus"] == "2"
