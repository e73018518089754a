"""A measured experiment: many UDP outputs of one packet layout, encoded by one numpy write.

Measured in the benchmarks (benchmarks/frame_cost.py, the *batched outputs* rows), not used by the
daemon: using it there needs a frame-level output in ``Bridge`` and grouping in the wiring
(docs/performance.md).

Per avatar, ``UdpSink.send`` spends about as long in ``encode`` (a 52-element fancy-index write,
~1 µs hot, ~3 µs when 1,000 encoders thrash the cache) as in the kernel's ``send``. Here every
output's packet is a row of one ``(outputs, packet_bytes)`` buffer, so a frame writes all the
weights with ``floats[:, weight_words] = weights[rows]`` (~0.1 µs per avatar) and then sends each
row. Bytes on the wire are exactly the single encoder's (tests/test_outputs_batch.py); errors are
counted per output and logged once per kind, with ``UdpSink``'s logging.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import numpy as np

from vadbridge.model.arkit import NUM_BLENDSHAPES
from vadbridge.outputs.layout import PacketLayout
from vadbridge.outputs.udp import log_send_failure_once, open_udp_socket

__all__ = ["BatchedUdpOutputs"]


class BatchedUdpOutputs:
    """``len(rows)`` outputs: output i streams ``weights[rows[i]]`` to ``destinations[i]``."""

    def __init__(
        self,
        layout: PacketLayout,
        rows: Sequence[int],
        destinations: Sequence[tuple[str, int]],
        *,
        name: str,
    ) -> None:
        if len(rows) != len(destinations) or not rows:
            raise ValueError(
                f"{name}: need one destination per row, got {len(rows)} rows and "
                f"{len(destinations)} destinations"
            )
        offsets = np.asarray(layout.weight_offsets, dtype=np.intp)
        if offsets.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"{name}: a layout has 52 weight offsets, got {offsets.shape}")
        shift = int(offsets[0]) % 4
        word_offsets = [*offsets.tolist(), *([layout.time_offset] if layout.time_offset else [])]
        if any(offset % 4 != shift for offset in word_offsets):
            raise ValueError(f"{name}: float offsets must share one 4-byte alignment")
        count = len(rows)
        row_bytes = -(-len(layout.template) // 4) * 4
        self.buffer = bytearray(layout.template.ljust(row_bytes, b"\x00") * count)
        # Strided views over the rows: numbers of every output with one numpy write each.
        self._floats = np.ndarray(
            (count, (row_bytes - shift) // 4), ">f4", self.buffer, shift, (row_bytes, 4)
        )
        self._weight_words = (offsets - shift) // 4
        self._time_word = None if layout.time_offset is None else (layout.time_offset - shift) // 4
        self._frames = None
        if layout.frame_offset is not None:
            self._frames = np.ndarray(
                (count,), ">i4", self.buffer, layout.frame_offset, (row_bytes,)
            )
        self._rows = np.asarray(rows, dtype=np.intp)
        view = memoryview(self.buffer)
        self._sockets: list[socket.socket] = []
        try:
            for index, (host, port) in enumerate(destinations):
                self._sockets.append(open_udp_socket(host, port, f"{name}[{index}]"))
        except OSError:
            self.close()
            raise
        self._datagrams = [
            tuple(view[i * row_bytes + a : i * row_bytes + b] for a, b in layout.bounds)
            for i in range(count)
        ]
        self._sends = [sock.send for sock in self._sockets]
        self.name = name
        self.destinations = list(destinations)
        self.frames_sent = 0  # output-frames whose datagrams all went out
        self.send_errors = [0] * count
        self._logged_errnos: set[int | None] = set()

    def send_rows(self, weights: np.ndarray, frame_number: int, time_s: float) -> None:
        """Encode every output's frame from ``weights`` ((avatars, 52)) and send it."""
        self._floats[:, self._weight_words] = weights[self._rows]
        if self._time_word is not None:
            self._floats[:, self._time_word] = time_s
        if self._frames is not None:
            self._frames[:] = frame_number % 2**31
        sent = 0
        for index, (send, datagrams) in enumerate(zip(self._sends, self._datagrams, strict=True)):
            try:
                for datagram in datagrams:
                    send(datagram)
            except OSError as error:
                self.send_errors[index] += 1
                host, port = self.destinations[index]
                log_send_failure_once(
                    self._logged_errnos, error, f"{self.name}[{index}]", host, port
                )
                continue
            sent += 1
        self.frames_sent += sent

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
