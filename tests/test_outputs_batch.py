"""BatchedUdpOutputs: many outputs encoded with one numpy write send the single encoders' bytes.

It lives in benchmarks/ (a measured experiment the daemon does not use); the bytes are checked
here so the *batched outputs* benchmark rows time a path that sends what ``UdpSink`` sends.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from vadbridge.benchmarks.batched_outputs import BatchedUdpOutputs
from vadbridge.core.types import Frame
from vadbridge.outputs import LiveLinkEncoder, OscEncoder, PacketLayout, VmcEncoder

EncoderFactory = Callable[[], VmcEncoder | OscEncoder | LiveLinkEncoder]
ENCODERS: dict[str, EncoderFactory] = {
    "vmc bundle": VmcEncoder,
    "vmc split": lambda: VmcEncoder(split=True),
    "vmc unbundled": lambda: VmcEncoder(bundle=False),
    "vmc without OK/T": lambda: VmcEncoder(send_ok_and_time=False),
    "osc per_shape": lambda: OscEncoder("per_shape"),
    "osc array": lambda: OscEncoder("array", prefix="/face"),
    "live link": lambda: LiveLinkEncoder(subject="face-1", device_id="rig"),  # unaligned values
}


def _without_timecode(kind: str, datagram: bytes, layout: PacketLayout) -> bytes:
    """Live Link's encode stamps timecode (frame and subframe) from the wall clock; the
    benchmark writes its own counter there, so those 8 bytes are not compared."""
    if kind != "live link" or layout.frame_offset is None:
        return datagram
    start = layout.frame_offset
    return datagram[:start] + bytes(8) + datagram[start + 8 :]


@pytest.fixture
def receivers() -> Iterator[list[socket.socket]]:
    socks = []
    for _ in range(3):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2.0)
        socks.append(sock)
    yield socks
    for sock in socks:
        sock.close()


def _receive(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(65536) for _ in range(count)]


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_each_output_receives_exactly_the_single_encoders_datagrams(
    kind: str, receivers: list[socket.socket]
) -> None:
    weights = np.random.default_rng(7).random((5, 52), dtype=np.float32)
    rows = [4, 0, 2]  # outputs need not follow the table's row order
    make = ENCODERS[kind]
    layout = make().layout()
    outputs = BatchedUdpOutputs(layout, rows, [r.getsockname() for r in receivers], name=kind)
    try:
        for frame, time_s in ((0, 0.0), (2**31 + 5, 12.5)):
            outputs.send_rows(weights, frame, time_s)
            for receiver, row in zip(receivers, rows, strict=True):
                expected = [bytes(d) for d in make().encode(Frame(weights[row], frame, time_s))]
                got = _receive(receiver, len(expected))
                assert [_without_timecode(kind, d, layout) for d in got] == [
                    _without_timecode(kind, d, layout) for d in expected
                ]
        assert outputs.frames_sent == 6
        assert outputs.send_errors == [0, 0, 0]
    finally:
        outputs.close()


def test_a_dead_receiver_is_counted_for_its_output_only(receivers: list[socket.socket]) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_address = dead.getsockname()
    dead.close()
    outputs = BatchedUdpOutputs(
        VmcEncoder().layout(), [0, 1], [receivers[0].getsockname(), dead_address], name="vmc"
    )
    weights = np.zeros((2, 52), dtype=np.float32)
    try:
        for frame in range(3):  # the ICMP unreachable surfaces on a later send
            outputs.send_rows(weights, frame, 0.0)
        assert outputs.send_errors[0] == 0
        assert outputs.send_errors[1] >= 1
        assert len(_receive(receivers[0], 3)) == 3
    finally:
        outputs.close()


def test_rows_and_destinations_must_pair_up() -> None:
    with pytest.raises(ValueError, match="one destination per row"):
        BatchedUdpOutputs(VmcEncoder().layout(), [0, 1], [("127.0.0.1", 9)], name="vmc")


def test_misaligned_float_offsets_are_rejected() -> None:
    layout = VmcEncoder().layout()
    skewed = PacketLayout(
        template=layout.template,
        bounds=layout.bounds,
        weight_offsets=layout.weight_offsets + np.arange(52) % 2,
    )
    with pytest.raises(ValueError, match="4-byte alignment"):
        BatchedUdpOutputs(skewed, [0], [("127.0.0.1", 9)], name="vmc")
