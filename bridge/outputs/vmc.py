"""VMC protocol encoder (VSeeFace, VNyan, Warudo, EVMC4U, VMC4B): blendshapes as OSC.

Wire format from docs/references.md, "VMC protocol": every frame all 52
``/VMC/Ext/Blend/Val ,sf <name> <value>`` (zeros included, because VMC4B drops 0.0 and zeroes the
previous frame's keys on Apply), then ``/VMC/Ext/Blend/Apply ,``.

Status and time: with ``send_ok_and_time`` the same bundle ends with ``/VMC/Ext/OK ,i 1`` and
``/VMC/Ext/T ,f <time_s>``. The reference sender (``SampleBonesSendBundle.cs``) sends OK and T as
two bare messages after the Val/Apply bundle; receivers dispatch a bundle's elements in order, so
appending them to the one bundle gives the same sequence in one datagram and one ``send``
(2,572 bytes, the reference size in docs/references.md, "VMC protocol"). ``time_s`` must be
small relative seconds (the frame loop's time since start): float32 Unix time has 128-second steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final, Literal

from vadbridge.core.osc_codec import SLOT, MessageSpec, PacketTemplate
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES, upper_camel
from vadbridge.outputs.layout import PacketLayout

__all__ = ["MAX_LAN_PAYLOAD", "VmcEncoder", "VmcNaming"]

VmcNaming = Literal["perfect_sync", "arkit"]

VAL_ADDRESS: Final = "/VMC/Ext/Blend/Val"
APPLY_ADDRESS: Final = "/VMC/Ext/Blend/Apply"
OK_ADDRESS: Final = "/VMC/Ext/OK"
TIME_ADDRESS: Final = "/VMC/Ext/T"
MAX_LAN_PAYLOAD: Final = 1472  # UDP payload of a 1,500-byte MTU without IP fragmentation


def blendshape_names(naming: str) -> tuple[str, ...]:
    """The 52 names in model order: ``perfect_sync`` = UpperCamelCase, ``arkit`` = as Apple."""
    if naming == "perfect_sync":
        return tuple(upper_camel(name) for name in ARKIT_NAMES)
    if naming == "arkit":
        return ARKIT_NAMES
    raise ValueError(f"naming must be 'perfect_sync' or 'arkit', got {naming!r}")


def packet_template(
    names: Sequence[str], *, bundle: bool, split: bool, send_ok_and_time: bool
) -> PacketTemplate:
    """One ``Val ,sf <name> <slot>`` per name, then ``Apply`` (and ``OK ,i 1``, ``T ,f <slot>``).

    Float slots: one per name in order, then T. ``bundle``/``split`` as for ``VmcEncoder``;
    ``split`` halves the Val messages, Apply (and OK/T) in the second bundle.
    """
    if split and not bundle:
        raise ValueError("VMC split=True divides the bundle in two; it needs bundle=True")
    values: list[MessageSpec] = [(VAL_ADDRESS, "sf", (name, SLOT)) for name in names]
    tail: list[MessageSpec] = [(APPLY_ADDRESS, "", ())]
    if send_ok_and_time:
        tail += [(OK_ADDRESS, "i", (1,)), (TIME_ADDRESS, "f", (SLOT,))]
    if split:
        half = len(values) // 2
        datagrams = [values[:half], values[half:] + tail]
    elif bundle:
        datagrams = [values + tail]
    else:
        datagrams = [[message] for message in values + tail]
    template = PacketTemplate(datagrams, bundle=bundle)
    if split and max(template.sizes) > MAX_LAN_PAYLOAD:
        raise AssertionError(f"VMC split sizes {template.sizes} exceed the LAN MTU")
    return template


class VmcEncoder:
    """Encodes one frame of 52 weights (model order) into VMC datagrams.

    ``bundle=True`` (default): one bundle per frame. ``split=True``: two bundles, each under
    1,472 bytes so neither is IP-fragmented on a LAN, Apply (and OK/T) in the second; receivers
    accumulate values until Apply. ``bundle=False``: every message its own datagram (VNyan's
    "don't bundle" option), Apply after the 52 values.
    """

    # Re-send rate of an unchanged face under ``idle_refresh_hz: auto``: VMC receivers
    # (VSeeFace, VNyan, Warudo, EVMC4U) hold the last values.
    AUTO_REFRESH_HZ: ClassVar[float] = 2.0

    def __init__(
        self,
        naming: VmcNaming = "perfect_sync",
        bundle: bool = True,
        split: bool = False,
        send_ok_and_time: bool = True,
    ) -> None:
        self.names = blendshape_names(naming)
        self._template = packet_template(
            self.names, bundle=bundle, split=split, send_ok_and_time=send_ok_and_time
        )
        self._floats = self._template.floats
        self._value_slots = self._template.float_slots[:NUM_BLENDSHAPES]
        self._time_slot = (
            int(self._template.float_slots[NUM_BLENDSHAPES]) if send_ok_and_time else None
        )
        self._datagrams = self._template.datagrams()

    @property
    def datagram_sizes(self) -> tuple[int, ...]:
        return self._template.sizes

    def layout(self) -> PacketLayout:
        """Where the numbers go, for ``UdpBatch`` (many VMC outputs encoded at once)."""
        slots = self._template.float_slots
        return PacketLayout(
            template=bytes(self._template.buffer),
            bounds=self._template.bounds,
            weight_offsets=slots[:NUM_BLENDSHAPES] * 4,
            time_offset=None if self._time_slot is None else self._time_slot * 4,
        )

    def encode(self, frame: Frame) -> Sequence[memoryview | bytes]:
        """The frame's datagrams; views of one reused buffer, valid until the next call."""
        weights = frame.weights
        if weights.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected weights of shape (52,), got {weights.shape}")
        self._floats[self._value_slots] = weights
        if self._time_slot is not None:
            self._floats[self._time_slot] = frame.time_s
        return self._datagrams
