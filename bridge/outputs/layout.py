"""What every UDP encoder shares: the ``Encoder`` interface, and ``PacketLayout``, where an
encoder's per-frame numbers live in its packet.

Each encoder's ``layout()`` returns one, so code outside the encoder (``outputs.batch.UdpBatch``,
which the daemon uses to write many outputs' packets with one numpy assignment) can fill the
packet without re-encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    """Where an encoder's per-frame numbers live in its packet (byte offsets, big-endian).

    Two layouts with the same ``shape_key`` differ only in their templates' constant bytes
    (names, subjects, prefixes of equal length): one buffer of rows holds both.
    """

    template: bytes  # one frame's datagrams back to back, numbers zeroed
    bounds: tuple[tuple[int, int], ...]  # each datagram's [start, end) in ``template``
    weight_offsets: npt.NDArray[np.intp]  # (52,) f32 offsets, model order
    time_offset: int | None = None  # f32 time_s
    # i32 frame + f32 subframe from ``timecode(time_s)`` (Live Link's time of day); the encoder's
    # own method, so a batch stamps what the encoder would.
    timecode_offset: int | None = None
    timecode: Callable[[float], tuple[int, float]] | None = field(default=None, compare=False)

    @property
    def shape_key(self) -> tuple[object, ...]:
        """Everything but the constant bytes: where the numbers go, and the packet's size."""
        return (len(self.template), self.bounds, self.weight_offsets.tobytes(),
                self.time_offset, self.timecode_offset)
