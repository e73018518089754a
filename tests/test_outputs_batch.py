"""UdpBatch: many UDP outputs encoded with one numpy write send their own encoders' bytes, and
the daemon groups its outputs into batches (at start and on every change of outputs)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from bridge_harness import (
    UdpReceiver,
    config_from_yaml,
    expected_vmc_frame,
    on_loop,
    osc,
    running_bridge,
    send_osc,
    wait_for_frame,
)
from conftest import free_port

from vadbridge.core.types import Frame
from vadbridge.outputs import LiveLinkEncoder, OscEncoder, PacketLayout, VmcEncoder
from vadbridge.outputs.batch import UdpBatch, batch_bindings
from vadbridge.outputs.udp import UdpSink

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


def _fixed_time_of_day() -> float:
    return 3600.0 + 0.25


def _batch(encoders: list[VmcEncoder | OscEncoder | LiveLinkEncoder], rows: list[int],
           receivers: list[socket.socket]) -> UdpBatch:
    sinks = [UdpSink(encoder, *receiver.getsockname(), name=f"out{i}")
             for i, (encoder, receiver) in enumerate(zip(encoders, receivers, strict=True))]
    layouts = [sink.layout() for sink in sinks]
    assert all(layout is not None for layout in layouts)
    return UdpBatch([(sink, layout, row) for sink, layout, row in zip(sinks, layouts, rows,
                                                                        strict=True) if layout])


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
def test_each_output_receives_exactly_its_own_encoders_datagrams(
    kind: str, receivers: list[socket.socket]
) -> None:
    """Byte for byte: the batch writes the same float32 values into the same template bytes
    (Live Link's timecode too: the batch calls the first encoder's ``timecode``, anchored to
    the same fixed time of day as the reference encoder)."""
    weights = np.random.default_rng(7).random((5, 52), dtype=np.float32)
    rows = [4, 0, 2]  # outputs need not follow the table's row order
    make = ENCODERS[kind]
    encoders = [make() for _ in rows]
    for encoder in encoders:
        if isinstance(encoder, LiveLinkEncoder):
            encoder._anchor._time_of_day = _fixed_time_of_day
    batch = _batch(encoders, rows, receivers)
    reference = make()
    if isinstance(reference, LiveLinkEncoder):
        reference._anchor._time_of_day = _fixed_time_of_day
    try:
        for frame, time_s in ((0, 0.0), (2**31 + 5, 12.5)):
            batch.send_rows(weights, time_s)
            for receiver, row in zip(receivers, rows, strict=True):
                expected = [bytes(d) for d in reference.encode(Frame(weights[row], frame, time_s))]
                assert _receive(receiver, len(expected)) == expected
        assert [sink.frames_sent for sink in batch.sinks] == [2, 2, 2]
        assert [sink.send_errors for sink in batch.sinks] == [0, 0, 0]
    finally:
        for sink in batch.sinks:
            sink.close()


def test_only_the_due_rows_are_sent(receivers: list[socket.socket]) -> None:
    weights = np.random.default_rng(3).random((3, 52), dtype=np.float32)
    batch = _batch([VmcEncoder() for _ in range(3)], [0, 1, 2], receivers)
    due = np.array([False, True, False])
    try:
        batch.send_rows(weights, 1.0, due)
        expected = VmcEncoder().encode(Frame(weights[1], 0, 1.0))
        assert _receive(receivers[1], 1) == [bytes(d) for d in expected]
        for quiet in (receivers[0], receivers[2]):
            quiet.settimeout(0.05)
            with pytest.raises(TimeoutError):
                quiet.recv(65536)
        assert [sink.frames_sent for sink in batch.sinks] == [0, 1, 0]
    finally:
        for sink in batch.sinks:
            sink.close()


def test_a_dead_receiver_is_counted_for_its_output_only(receivers: list[socket.socket]) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_address = dead.getsockname()
    dead.close()
    live = UdpSink(VmcEncoder(), *receivers[0].getsockname(), name="live")
    gone = UdpSink(VmcEncoder(), *dead_address, name="gone")
    batch = UdpBatch([(live, VmcEncoder().layout(), 0), (gone, VmcEncoder().layout(), 1)])
    weights = np.zeros((2, 52), dtype=np.float32)
    try:
        for _ in range(3):  # the ICMP unreachable surfaces on a later send
            batch.send_rows(weights, 0.0)
        assert live.send_errors == 0
        assert gone.send_errors >= 1
        assert live.frames_sent == 3
        assert len(_receive(receivers[0], 3)) == 3
    finally:
        live.close()
        gone.close()


def test_layouts_of_one_shape_share_a_batch_and_the_rest_are_sent_alone(
    receivers: list[socket.socket],
) -> None:
    """Live Link subjects of equal length share a batch (each row keeps its own subject);
    another length, another encoder kind, or a non-UDP sink does not, and an output without a
    partner is sent alone (through its own encoder)."""
    address = receivers[0].getsockname()
    sinks = [
        UdpSink(LiveLinkEncoder(subject="avatar01"), *address, name="a"),
        UdpSink(LiveLinkEncoder(subject="avatar02"), *address, name="b"),
        UdpSink(LiveLinkEncoder(subject="avatar100"), *address, name="c"),
        UdpSink(VmcEncoder(), *address, name="d"),
        UdpSink(VmcEncoder(), *address, name="e"),
    ]
    other = object()
    try:
        batches, alone = batch_bindings([(sink, row) for row, sink in enumerate(sinks)]
                                        + [(other, 0)])
        groups = sorted([sink.name for sink in batch.sinks] for batch in batches)
        assert groups == [["a", "b"], ["d", "e"]]
        assert alone == [2, 5]
        sinks[2].send(Frame(np.zeros(52, dtype=np.float32)))  # "c" goes out on its own
        weights = np.random.default_rng(1).random((5, 52), dtype=np.float32)
        for batch in batches:
            batch.send_rows(weights, 0.5)
        received = [receivers[0].recv(65536) for _ in range(5)]
        for subject in (b"avatar01", b"avatar02", b"avatar100"):
            assert sum(subject in datagram for datagram in received) == 1, subject
        assert sum(datagram.startswith(b"#bundle") for datagram in received) == 2
    finally:
        for sink in sinks:
            sink.close()


def test_misaligned_float_offsets_are_rejected() -> None:
    layout = VmcEncoder().layout()
    skewed = PacketLayout(
        template=layout.template,
        bounds=layout.bounds,
        weight_offsets=layout.weight_offsets + np.arange(52) % 2,
    )
    sink = UdpSink(VmcEncoder(), "127.0.0.1", 9, name="vmc")
    try:
        with pytest.raises(ValueError, match="4-byte alignment"):
            UdpBatch([(sink, skewed, 0)])
    finally:
        sink.close()


def test_the_daemon_batches_its_outputs_and_each_receiver_gets_its_own_avatars_face() -> None:
    """Three VMC outputs (two avatars) and a Live Link output: one VMC batch of three, Live Link
    sent alone; each VMC receiver decodes (python-osc) its own avatar's converged face. After a
    reload that drops an output, the batches are regrouped and the rest stream on."""
    receivers = [UdpReceiver() for _ in range(4)]
    osc_port = free_port(socket.SOCK_DGRAM)
    vmc = "{type: vmc, host: 127.0.0.1, port: %d, avatar: %s}"
    config = config_from_yaml(f"""
stats_interval_s: 0
avatars: {{ids: [calm, angry]}}
inputs: [{{type: osc, host: 127.0.0.1, port: {osc_port}}}]
outputs:
  - {vmc % (receivers[0].port, "calm")}
  - {vmc % (receivers[1].port, "angry")}
  - {vmc % (receivers[2].port, "calm")}
  - {{type: livelink, host: 127.0.0.1, port: {receivers[3].port}, avatar: angry}}
""")
    faces = {"calm": (0.3, -0.4, 0.1), "angry": (-0.7, 0.8, 0.6)}
    try:
        with running_bridge(config) as bridge:
            assert [len(batch) for batch in bridge._batches] == [3]
            for avatar, vad in faces.items():
                send_osc(osc_port, osc(f"/avatar/{avatar}/vad", *vad))
            engine = bridge.animator.engine
            for receiver, avatar in zip(receivers, ("calm", "angry", "calm"), strict=False):
                assert wait_for_frame(receiver, expected_vmc_frame(engine, faces[avatar]))
            assert receivers[3].receive(0.2)  # Live Link streams too
            kept = [bridge.bindings[0], bridge.bindings[1]]
            on_loop(bridge, lambda: bridge.reconfigure(bridge.settings, kept))
            assert [len(batch) for batch in bridge._batches] == [2]
            receivers[0].drain()
            assert wait_for_frame(receivers[0], expected_vmc_frame(engine, faces["calm"]))
    finally:
        for receiver in receivers:
            receiver.close()


def test_a_regrouped_live_link_batch_goes_on_with_the_stamps_it_sent(
    receivers: list[socket.socket],
) -> None:
    """The members of a Live Link batch share one time-of-day anchor: when a reload removes the
    first member, the next batch stamps the same time as before (the wall clock is not read
    again, which would jump by its drift, an NTP step or a DST change)."""
    readings = iter([3600.0, 7200.0, 10800.0])  # each read of the wall clock differs
    encoders = [LiveLinkEncoder(subject=f"face{i}", time_of_day=lambda: next(readings))
                for i in range(3)]
    sinks = [UdpSink(e, *r.getsockname(), name=f"ll{i}")
             for i, (e, r) in enumerate(zip(encoders, receivers, strict=True))]
    weights = np.zeros((3, 52), dtype=np.float32)
    try:
        first = UdpBatch([(sinks[i], encoders[i].layout(), i) for i in (0, 1)])
        first.send_rows(weights, 1.0)
        before = encoders[1].timecode(1.0)
        regrouped = UdpBatch([(sinks[i], encoders[i].layout(), i) for i in (1, 2)])
        regrouped.send_rows(weights, 1.0)
        # face1's datagram from each batch: byte for byte the same (same time, same anchor).
        from_first, from_regrouped = _receive(receivers[1], 2)
        assert from_first == from_regrouped
        assert encoders[2].timecode(1.0) == before == encoders[0].timecode(1.0)
        assert next(readings) == 7200.0  # the wall clock was read once, at the first frame
    finally:
        for sink in sinks:
            sink.close()
