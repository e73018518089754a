"""``PacketLayout``: where an encoder's per-frame numbers live in its packet.

Each encoder's ``layout()`` returns one, so code outside the encoder (benchmarks/batched_outputs.py
writes many outputs' packets with one numpy assignment) can fill the packet without re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PacketLayout"]


@dataclass(frozen=True)
class PacketLayout:
    """Where an encoder's per-frame numbers live in its packet (byte offsets, big-endian)."""

    template: bytes  # one frame's datagrams back to back, numbers zeroed
    bounds: tuple[tuple[int, int], ...]  # each datagram's [start, end) in ``template``
    weight_offsets: npt.NDArray[np.intp]  # (52,) f32 offsets, model order
    time_offset: int | None = None  # f32 time_s
    frame_offset: int | None = None  # i32 frame number, wrapped to 0..2**31-1
