"""What every UDP encoder shares: the ``Encoder`` interface, and ``PacketLayout``, where an
encoder's per-frame numbers live in its packet.

Each encoder's ``layout()`` returns one, so code outside the encoder (benchmarks/batched_outputs.py
writes many outputs' packets with one numpy assignment) can fill the packet without re-encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vadbridge.core.types import Frame

__all__ = ["Encoder", "PacketLayout"]


class Encoder(Protocol):
    """Pure: a frame in, its UDP datagrams out (views valid until the next call)."""

    def encode(self, frame: Frame) -> Sequence[memoryview | bytes]: ...


@dataclass(frozen=True)
class PacketLayout:
    """Where an encoder's per-frame numbers live in its packet (byte offsets, big-endian)."""

    template: bytes  # one frame's datagrams back to back, numbers zeroed
    bounds: tuple[tuple[int, int], ...]  # each datagram's [start, end) in ``template``
    weight_offsets: npt.NDArray[np.intp]  # (52,) f32 offsets, model order
    time_offset: int | None = None  # f32 time_s
    frame_offset: int | None = None  # i32 frame number, wrapped to 0..2**31-1
