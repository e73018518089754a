"""Many UDP outputs of one packet shape, encoded by one numpy write: how the daemon sends VMC,
OSC and Live Link.

Per output, ``UdpSink.send`` spends about as long in ``encode`` (a 52-element fancy-index write,
~1 µs hot, ~3 µs when 1,000 encoders thrash the cache) as in the kernel's ``send``. Here every
output's packet is a row of one ``(outputs, packet_bytes)`` buffer, so a frame writes every
output's weights with one ``floats[:, weight_words] = weights[rows]`` and then hands each row to
its sink (``UdpSink.send_datagrams``: the sink's own socket, counters and once-per-kind logging,
as if it had encoded the frame itself). Bytes on the wire are the sink's encoder's
(tests/test_outputs_batch.py). Measured in docs/performance.md, "Round 2".

Outputs join one batch when their layouts have the same ``shape_key``: the same encoder kind
and options, names of the same lengths (each row starts from its own encoder's template, so
subjects ``avatar01`` and ``avatar02`` share a batch). An output with no partner sends through
its own encoder: a batch of one costs 20-40 µs a frame more (measured cold, one avatar with
three outputs). ``batch_bindings`` groups them; the daemon regroups whenever its outputs change
(start, SIGHUP reload, liveliness on or off).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vadbridge.model.arkit import NUM_BLENDSHAPES
from vadbridge.outputs.layout import PacketLayout
from vadbridge.outputs.livelink import LiveLinkEncoder
from vadbridge.outputs.udp import UdpSink

__all__ = ["UdpBatch", "batch_bindings"]


class UdpBatch:
    """UDP outputs with layouts of one shape; output i streams ``weights[rows[i]]``."""

    def __init__(self, members: Sequence[tuple[UdpSink, PacketLayout, int]]) -> None:
        if not members:
            raise ValueError("a batch needs at least one output")
        first = members[0][1]
        if any(layout.shape_key != first.shape_key for _, layout, _ in members):
            raise ValueError("a batch's outputs must share one packet shape")
        offsets = np.asarray(first.weight_offsets, dtype=np.intp)
        if offsets.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"a layout has 52 weight offsets, got {offsets.shape}")
        shift = int(offsets[0]) % 4
        word_offsets = [*offsets.tolist(), *([first.time_offset] if first.time_offset else [])]
        if any(offset % 4 != shift for offset in word_offsets):
            raise ValueError("a layout's float offsets must share one 4-byte alignment")
        count = len(members)
        row_bytes = -(-len(first.template) // 4) * 4
        self.buffer = bytearray(
            b"".join(layout.template.ljust(row_bytes, b"\x00") for _, layout, _ in members)
        )
        # Strided views over the rows: a number of every output with one numpy write.
        self._floats = np.ndarray(
            (count, (row_bytes - shift) // 4), ">f4", self.buffer, shift, (row_bytes, 4)
        )
        self._weight_words = (offsets - shift) // 4
        self._time_word = None if first.time_offset is None else (first.time_offset - shift) // 4
        # Live Link's timecode: the function, and views of their own (not 4-byte aligned with
        # the weights) for the frame and the subframe of every row.
        self._timecode: tuple[Callable[[float], tuple[int, float]], np.ndarray, np.ndarray] | None
        self._timecode = None
        if first.timecode_offset is not None:
            if first.timecode is None:
                raise ValueError("a layout with a timecode offset needs its timecode function")
            offset = first.timecode_offset
            self._timecode = (
                first.timecode,
                np.ndarray((count,), ">i4", self.buffer, offset, (row_bytes,)),
                np.ndarray((count,), ">f4", self.buffer, offset + 4, (row_bytes,)),
            )
        self.sinks = [sink for sink, _, _ in members]
        if self._timecode is not None:
            self._share_timecode_anchor()
        self.rows = np.asarray([row for _, _, row in members], dtype=np.intp)
        view = memoryview(self.buffer)
        self._sends = [
            (sink.send_datagrams, tuple(view[i * row_bytes + a : i * row_bytes + b]
                                        for a, b in first.bounds))
            for i, sink in enumerate(self.sinks)
        ]  # fmt: skip
        self._gathered = np.zeros((count, NUM_BLENDSHAPES), dtype=np.float32)

    def _share_timecode_anchor(self) -> None:
        """One time-of-day anchor for every member (Live Link): the one a member already
        stamped from, if any, so a regrouped batch goes on with the stamps it sent; the batch
        stamps with its first member's ``timecode``, which then reads the shared anchor."""
        encoders = [sink.encoder for sink in self.sinks
                    if isinstance(sink.encoder, LiveLinkEncoder)]
        if not encoders:
            return
        anchor = next((e.anchor for e in encoders if e.anchor.anchored), encoders[0].anchor)
        for encoder in encoders:
            encoder.use_anchor(anchor)

    def __len__(self) -> int:
        return len(self._sends)

    def send_rows(self, weights: np.ndarray, time_s: float, due: np.ndarray | None = None) -> None:
        """Encode and send every output's frame from ``weights`` ((rows, 52)); with ``due`` (a
        bool per output, as ``core.refresh.RefreshSchedule.due`` gives it), only those."""
        picks = None
        if due is not None:
            picks = due.nonzero()[0]
            if picks.size == 0:
                return
            if picks.size == len(self._sends):
                picks = None
        if picks is None:
            gathered = weights.take(self.rows, axis=0, out=self._gathered, mode="clip")
            self._floats[:, self._weight_words] = gathered
        else:
            self._floats[picks[:, np.newaxis], self._weight_words] = weights[self.rows[picks]]
        if self._time_word is not None:
            self._floats[:, self._time_word] = time_s
        if self._timecode is not None:
            timecode, frames, subframes = self._timecode
            frames[:], subframes[:] = timecode(time_s)
        if picks is None:
            for send, datagrams in self._sends:
                send(datagrams)
        else:
            sends = self._sends
            for index in picks.tolist():
                send, datagrams = sends[index]
                send(datagrams)


def batch_bindings(pairs: Sequence[tuple[object, int]]) -> tuple[list[UdpBatch], list[int]]:
    """Group ``(sink, row)`` pairs: two or more ``UdpSink``s whose encoders have layouts of one
    shape become one ``UdpBatch``. Returns the batches and the indices of the pairs left to send
    one by one (other sinks, encoders without a layout, and outputs without a partner)."""
    groups: dict[tuple[object, ...], list[tuple[int, UdpSink, PacketLayout, int]]] = {}
    alone = []
    for index, (sink, row) in enumerate(pairs):
        layout = sink.layout() if isinstance(sink, UdpSink) else None
        if layout is None:
            alone.append(index)
            continue
        assert isinstance(sink, UdpSink)
        groups.setdefault(layout.shape_key, []).append((index, sink, layout, row))
    batches = []
    for members in groups.values():
        if len(members) == 1:
            alone.append(members[0][0])
        else:
            batches.append(UdpBatch([(sink, layout, row) for _, sink, layout, row in members]))
    return batches, sorted(alone)
