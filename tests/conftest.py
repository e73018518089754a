"""Shared fixtures: a real mosquitto broker on a free loopback port (also one with TLS and a
password file), a test PKI made with the ``openssl`` CLI, a random model checkpoint, a UDP
receiver for the bridge's VMC output, and the ``--run-slow`` switch.

Mosquitto 2.0 with a ``listener`` line refuses anonymous clients unless told otherwise
(docs/references.md, "MQTT"), hence ``allow_anonymous true`` in the config.
"""

from __future__ import annotations

import asyncio
import getpass
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aiomqtt
import pytest

if TYPE_CHECKING:
    from bridge_harness import UdpReceiver

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


def kill_if_running(process: subprocess.Popen[Any]) -> None:
    """SIGKILL ``process`` if it still runs, and reap it (a test's cleanup after its checks)."""
    if process.poll() is None:
        process.kill()
        process.wait()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def unassigned_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A free loopback port outside the kernel's ephemeral range, for a test that leaves a port
    unbound for a while and binds it later: the kernel never hands such a port to another
    socket that binds port 0 (other tests, other processes) in between, as it can a
    ``free_port`` one."""
    low, _high = _ephemeral_range()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10_000, min(low, 32_768))
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@pytest.fixture
def vmc() -> Iterator[UdpReceiver]:
    """A UDP receiver on a free loopback port for the bridge's VMC output, closed after."""
    from bridge_harness import UdpReceiver  # imports the bridge: only for tests that use it

    receiver = UdpReceiver()
    yield receiver
    receiver.close()


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
        self.config_path.write_text(self._config_text())
        self._process: subprocess.Popen[bytes] | None = None

    def _config_text(self) -> str:
        return (
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # As root mosquitto drops to user 'mosquitto', which could not write our log file.
            f"user {getpass.getuser()}\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        )

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
        from vadbridge.benchmarks.harness import stop_process  # numpy: not for every test

        stop_process(process, timeout_s=_BROKER_STOP_TIMEOUT_S)
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
        protocol: Literal["3.1.1", "5", 4, 5] = "3.1.1",
        qos: int = 1,
    ) -> None:
        """Publish ``(topic, payload)`` pairs in order over one connection (QoS 1: acknowledged).
        ``protocol``: "3.1.1" or "5", or the config's numbers 4 and 5."""
        v5 = protocol in ("5", 5)
        version = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
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


# --- TLS certificates and a secured mosquitto --------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A throw-away CA, a server certificate for 127.0.0.1/localhost and a client certificate
    (PEM files; EC P-256 keys, unencrypted)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


_LEAF_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
)


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("the TLS tests need the openssl command (Debian package `openssl`)",
                    pytrace=False)
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def make_test_pki(directory: Path) -> Pki:
    """Generate the PKI in ``directory`` with the openssl CLI (about 0.2 s).

    Leaf certificates carry the extensions strict X.509 verification wants (key usage, subject
    and authority key ids); the server's names its address in the SAN, which is what TLS
    hostname checking matches when connecting to ``127.0.0.1``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_cert, ca_key = directory / "ca.crt", directory / "ca.key"
    _openssl("req", "-x509", *new_key, "-keyout", str(ca_key), "-out", str(ca_cert),
             "-days", "2", "-subj", "/CN=vadbridge test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    extensions = {
        "server": _LEAF_EXTENSIONS + "extendedKeyUsage=serverAuth\n"
                  "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        "client": _LEAF_EXTENSIONS + "extendedKeyUsage=clientAuth\n",
    }
    for serial, (name, extension_text) in enumerate(extensions.items(), start=2):
        key, request, cert = (directory / f"{name}.{suffix}" for suffix in ("key", "csr", "crt"))
        extension_file = directory / f"{name}.ext"
        extension_file.write_text(extension_text)
        _openssl("req", "-new", *new_key, "-keyout", str(key), "-out", str(request),
                 "-subj", f"/CN=vadbridge test {name}")
        _openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
                 "-set_serial", str(serial), "-days", "2", "-out", str(cert),
                 "-extfile", str(extension_file))
    return Pki(ca_cert, directory / "server.crt", directory / "server.key",
                   directory / "client.crt", directory / "client.key")


def _mosquitto_passwd_binary() -> str:
    found = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").is_file() else None
    )
    if found is None:
        pytest.fail("mosquitto_passwd is missing: it ships in the Debian package `mosquitto`",
                    pytrace=False)
    return found


class SecureMosquitto(Mosquitto):
    """Mosquitto with three loopback listeners (``per_listener_settings``):

    - ``port``: plain and anonymous, for the test's own publisher (``publish`` works unchanged);
    - ``tls_port``: TLS (server certificate from ``pki``) + the password file holding
      ``username``/``password``; anonymous clients refused;
    - ``mtls_port``: TLS with ``require_certificate true``: a client certificate signed by the
      test CA is required.
    """

    username = "bridge"
    password = "c0rrect-h0rse-Battery"

    def __init__(self, directory: Path, pki: Pki) -> None:
        self.pki = pki
        self.tls_port = free_port()
        self.mtls_port = free_port()
        self.password_file = directory / "passwd"
        subprocess.run(
            [_mosquitto_passwd_binary(), "-b", "-c", str(self.password_file), self.username,
             self.password],
            check=True, capture_output=True,
        )
        super().__init__(directory)

    def _config_text(self) -> str:
        tls = (f"cafile {self.pki.ca_cert}\ncertfile {self.pki.server_cert}\n"
               f"keyfile {self.pki.server_key}\n")
        return (
            "per_listener_settings true\n"
            + super()._config_text()
            + f"listener {self.tls_port} {self.host}\n"
            "allow_anonymous false\n"
            f"password_file {self.password_file}\n"
            + tls
            + f"listener {self.mtls_port} {self.host}\n"
            "allow_anonymous true\n"
            "require_certificate true\n"
            + tls
        )


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secure_mosquitto(tmp_path: Path, test_pki: Pki) -> Iterator[SecureMosquitto]:
    """A running ``SecureMosquitto`` on free 127.0.0.1 ports, always terminated after the test."""
    broker = SecureMosquitto(tmp_path, test_pki)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


# --- a model checkpoint -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch-free ``.npz`` checkpoint of the default architecture with seeded random weights,
    for daemon tests that need some model but not a trained one."""
    from models import random_arrays

    from vadbridge.model.checkpoint import export_npz, make_meta
    from vadbridge.model.config import MLPConfig

    arrays = random_arrays(MLPConfig(), seed=0)
    return export_npz(tmp_path_factory.mktemp("model") / "random.npz", arrays, make_meta())
