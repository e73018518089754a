"""Generic OSC encoder for Unity/Unreal OSC plugins (OscJack, uOSC, Unreal's OSC plugin).

There is no standard address (docs/references.md, "Unity and Unreal OSC"), so two
common styles: ``per_shape`` = one bundle of ``<prefix>/<name> ,f`` (VRCFaceTracking style),
``array`` = one bare message ``<prefix>`` with 52 ``f`` arguments in model order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar, Final, Literal

from vadbridge.core.osc_codec import SLOT, MessageSpec, PacketTemplate
from vadbridge.core.types import Frame
from vadbridge.model.arkit import NUM_BLENDSHAPES
from vadbridge.outputs.layout import PacketLayout
from vadbridge.outputs.vmc import blendshape_names

__all__ = ["OscEncoder", "OscMode", "OscNaming"]

OscMode = Literal["per_shape", "array"]
OscNaming = Literal["arkit", "perfect_sync"]

# OSC 1.0 reserves ' # * , / ? [ ] { }' inside address parts; a prefix is one or more parts.
_PREFIX_PATTERN: Final = re.compile(r"(/[^\s#*,/?\[\]{}\x00]+)+")


class OscEncoder:
    """Encodes one frame of 52 weights (model order) into one OSC datagram."""

    # Re-send rate of an unchanged face under ``idle_refresh_hz: auto``: OSC receivers (Unity
    # scripts, TouchDesigner) hold the last values.
    AUTO_REFRESH_HZ: ClassVar[float] = 2.0

    def __init__(
        self, mode: OscMode = "per_shape", prefix: str = "/blendshape", naming: OscNaming = "arkit"
    ) -> None:
        if not isinstance(prefix, str) or not _PREFIX_PATTERN.fullmatch(prefix):
            raise ValueError(
                f"OSC prefix must look like '/name' or '/a/b' (no trailing '/', spaces or "
                f"any of #*,?[]{{}}), got {prefix!r}"
            )
        self.names = blendshape_names(naming)
        if mode == "per_shape":
            messages: list[MessageSpec] = [
                (f"{prefix}/{name}", "f", (SLOT,)) for name in self.names
            ]
            self._template = PacketTemplate([messages], bundle=True)
        elif mode == "array":
            array: MessageSpec = (prefix, "f" * NUM_BLENDSHAPES, (SLOT,) * NUM_BLENDSHAPES)
            self._template = PacketTemplate([[array]], bundle=False)
        else:
            raise ValueError(f"OSC mode must be 'per_shape' or 'array', got {mode!r}")
        self._floats = self._template.floats
        self._slots = self._template.float_slots
        self._datagrams = self._template.datagrams()

    @property
    def datagram_sizes(self) -> tuple[int, ...]:
        return self._template.sizes

    def layout(self) -> PacketLayout:
        """Where the numbers go, for ``UdpBatch`` (many OSC outputs encoded at once)."""
        return PacketLayout(
            template=bytes(self._template.buffer),
            bounds=self._template.bounds,
            weight_offsets=self._slots * 4,
        )

    def encode(self, frame: Frame) -> Sequence[memoryview | bytes]:
        """The frame's datagram; a view of one reused buffer, valid until the next call."""
        weights = frame.weights
        if weights.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected weights of shape (52,), got {weights.shape}")
        self._floats[self._slots] = weights
        return self._datagrams
