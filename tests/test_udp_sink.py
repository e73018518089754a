"""UdpSink over real loopback sockets: exact bytes out, receiver outages counted, never raised."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import free_port

from vadbridge.core.types import Frame
from vadbridge.outputs import LiveLinkEncoder, VmcEncoder
from vadbridge.outputs.udp import UdpSink

WEIGHTS = np.linspace(0.0, 1.0, 52, dtype=np.float32)


def _receiver(family: socket.AddressFamily, host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.settimeout(2.0)
    return sock


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = _receiver(socket.AF_INET, "127.0.0.1")
    yield sock
    sock.close()


@pytest.fixture
def dead_port() -> int:
    """A loopback port that was just free: nothing listens there."""
    return free_port(socket.SOCK_DGRAM)


def _port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def test_receiver_gets_the_encoders_exact_bytes(receiver: socket.socket) -> None:
    encoder = VmcEncoder()
    sink = UdpSink(encoder, "127.0.0.1", _port(receiver), name="vmc")
    try:
        sink.send(Frame(WEIGHTS, 1, 0.5))
        expected = bytes(VmcEncoder().encode(Frame(WEIGHTS, 1, 0.5))[0])
        assert receiver.recv(65536) == expected
        assert (sink.frames_sent, sink.send_errors) == (1, 0)
    finally:
        sink.close()


def test_every_datagram_of_a_frame_arrives_in_order(receiver: socket.socket) -> None:
    sink = UdpSink(VmcEncoder(bundle=False), "127.0.0.1", _port(receiver), name="vmc")
    try:
        sink.send(Frame(WEIGHTS, 1, 0.5))
        expected = [bytes(d) for d in VmcEncoder(bundle=False).encode(Frame(WEIGHTS, 1, 0.5))]
        assert [receiver.recv(65536) for _ in expected] == expected
        assert sink.frames_sent == 1
    finally:
        sink.close()


def test_hostname_is_resolved_once(receiver: socket.socket) -> None:
    sink = UdpSink(LiveLinkEncoder(), "localhost", _port(receiver), name="livelink")
    try:
        sink.send(Frame(WEIGHTS, 9, 0.0))
        assert len(receiver.recv(65536)) == 270 + 36 + len("vadbridge")  # 36: the device id
    finally:
        sink.close()


def test_ipv6_receiver() -> None:
    try:
        receiver = _receiver(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    def encoder() -> LiveLinkEncoder:  # one fixed clock: both stamp the same timecode
        return LiveLinkEncoder(time_of_day=lambda: 1000.0)

    sink = UdpSink(encoder(), "::1", _port(receiver), name="livelink6")
    try:
        sink.send(Frame(WEIGHTS, 3, 0.0))
        assert receiver.recv(65536) == bytes(encoder().encode(Frame(WEIGHTS, 3, 0.0))[0])
    finally:
        sink.close()
        receiver.close()


def test_receiver_down_is_counted_not_raised(dead_port: int) -> None:
    sink = UdpSink(VmcEncoder(), "127.0.0.1", dead_port, name="vmc")
    try:
        # Loopback delivers the ICMP port-unreachable at once; the next send reports it.
        for frame in range(50):
            sink.send(Frame(WEIGHTS, frame, frame / 60))
        assert sink.send_errors > 0
        assert sink.frames_sent + sink.send_errors == 50
    finally:
        sink.close()


def test_send_failures_are_logged_once_per_kind(
    dead_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    sink = UdpSink(VmcEncoder(), "127.0.0.1", dead_port, name="vmc-dead")
    try:
        with caplog.at_level(logging.WARNING, logger="vadbridge.outputs"):
            for frame in range(50):
                sink.send(Frame(WEIGHTS, frame, 0.0))
        warnings = [r for r in caplog.records if r.name == "vadbridge.outputs"]
        assert sink.send_errors > 1
        assert len(warnings) == 1
        assert warnings[0].getMessage().startswith(
            f"output vmc-dead (127.0.0.1:{dead_port}): send failed with ECONNREFUSED")
    finally:
        sink.close()


def test_a_send_failure_names_the_address_once(
    dead_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon names its outputs ``<type> <host>:<port>`` already."""
    sink = UdpSink(VmcEncoder(), "127.0.0.1", dead_port, name=f"vmc 127.0.0.1:{dead_port}")
    try:
        with caplog.at_level(logging.WARNING, logger="vadbridge.outputs"):
            for frame in range(5):
                sink.send(Frame(WEIGHTS, frame, 0.0))
        (warning,) = [r.getMessage() for r in caplog.records if r.name == "vadbridge.outputs"]
        assert warning.startswith(f"output vmc 127.0.0.1:{dead_port}: send failed with ")
        assert warning.count(str(dead_port)) == 1
    finally:
        sink.close()


def test_frames_arrive_again_once_a_receiver_binds(dead_port: int) -> None:
    sink = UdpSink(VmcEncoder(), "127.0.0.1", dead_port, name="vmc")
    try:
        for frame in range(5):
            sink.send(Frame(WEIGHTS, frame, 0.0))
        assert sink.send_errors > 0
        receiver = _receiver(socket.AF_INET, "127.0.0.1", dead_port)
        try:
            sent_before = sink.frames_sent
            for frame in range(5):
                sink.send(Frame(WEIGHTS, frame, 0.0))
            assert sink.frames_sent > sent_before
            assert receiver.recv(65536) == bytes(VmcEncoder().encode(Frame(WEIGHTS, 0, 0.0))[0])
        finally:
            receiver.close()
    finally:
        sink.close()


def test_send_after_close_is_counted_not_raised(receiver: socket.socket) -> None:
    sink = UdpSink(VmcEncoder(), "127.0.0.1", _port(receiver), name="vmc")
    sink.close()
    sink.close()
    assert sink.closed
    sink.send(Frame(WEIGHTS, 0, 0.0))
    assert (sink.frames_sent, sink.send_errors) == (0, 1)


@pytest.mark.parametrize("port", [0, 65536, -1, True])
def test_bad_port_is_rejected(port: int) -> None:
    with pytest.raises(ValueError, match=r"port must be an integer in 1\.\.65535"):
        UdpSink(VmcEncoder(), "127.0.0.1", port, name="vmc")
