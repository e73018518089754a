"""Shared fixtures: a real mosquitto broker on a free loopback port, and the ``--run-slow`` switch.

Mosquitto 2.0 with a ``listener`` line refuses anonymous clients unless told otherwise
(../shared/reference/protocols.md, "MQTT"), hence ``allow_anonymous true`` in the config.
"""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import aiomqtt
import pytest

_MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
_BROKER_START_TIMEOUT_S = 10.0
_BROKER_STOP_TIMEOUT_S = 5.0


# --- --run-slow -------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="run tests marked @pytest.mark.slow (long fuzz/soak/benchmark runs)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


# --- ports ------------------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free on 127.0.0.1 a moment ago (TCP by default, UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- mosquitto --------------------------------------------------------------------------------


def _mosquitto_binary() -> str:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in _MOSQUITTO_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    # A skipped broker test is not a pass: fail loudly instead.
    pytest.fail(
        "mosquitto is not installed: the MQTT tests need a real broker. "
        "Install it with `apt-get install mosquitto` (Debian/Ubuntu) and re-run.",
        pytrace=False,
    )


class Mosquitto:
    """A mosquitto subprocess on ``host:port``; ``stop()`` and ``start()`` keep the same port."""

    host = "127.0.0.1"

    def __init__(self, directory: Path) -> None:
        self.binary = _mosquitto_binary()
        self.port = free_port()
        self.directory = directory
        self.log_path = directory / "mosquitto.log"
        self.config_path = directory / "mosquitto.conf"
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # As root mosquitto drops to user 'mosquitto', which could not write our log file.
            f"user {getpass.getuser()}\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + _BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                raise RuntimeError(
                    f"mosquitto exited with {self._process.returncode} at start: {stderr.strip()} "
                    f"{self.log_text()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"mosquitto did not accept connections on port {self.port}: {self.log_text()}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_BROKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no mosquitto log)"

    async def publish(
        self,
        messages: Iterable[tuple[str, bytes | str]],
        *,
        protocol: Literal["3.1.1", "5"] = "3.1.1",
        qos: int = 1,
    ) -> None:
        """Publish ``(topic, payload)`` pairs in order over one connection (QoS 1: acknowledged)."""
        version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
        async with aiomqtt.Client(self.host, self.port, protocol=version) as client:
            for topic, payload in messages:
                await client.publish(topic, payload, qos=qos)

    def publish_sync(self, messages: Iterable[tuple[str, bytes | str]], **kwargs: object) -> None:
        """``publish`` from synchronous code (runs its own event loop)."""
        asyncio.run(self.publish(messages, **kwargs))  # type: ignore[arg-type]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running mosquitto on a free 127.0.0.1 port, always terminated after the test."""
    broker = Mosquitto(tmp_path)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
