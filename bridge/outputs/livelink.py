"""Live Link Face encoder (Epic's iPhone app format, packet version 6) for Unreal's Live Link.

Layout from docs/references.md, "Live Link Face": big-endian; u8 version 6; device id and
subject as int32 byte length + UTF-8 (no NUL); i32 frame number; f32 subframe; i32 rate
numerator and denominator; u8 count 61; 61 f32 values in Apple's ARFaceAnchor order (52
blendshapes, then head and eye rotations). Size 270 + len(device_id) + len(subject). The values
are mapped from the model's order by name, never by index.

Like the app, the default device id is a 36-character UUID (decoders such as PyLiveLinkFace
read exactly 36 bytes there) and the frame number and subframe are timecode: the local time of
day in frames at the packet's rate (outputs/timecode.py, shared with the CSV recordings).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import ClassVar, Final

import numpy as np

from vadbridge.config import LiveLinkOutputConfig
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES, upper_camel
from vadbridge.outputs.layout import PacketLayout
from vadbridge.outputs.timecode import TimeOfDayAnchor, frame_time, local_time_of_day_s

__all__ = ["LIVE_LINK_NAMES", "LiveLinkEncoder"]

PACKET_VERSION: Final = 6
MAX_NAME_BYTES: Final = 255

# The 61 values of a packet in order (also the column order of Live Link Face CSV recordings).
LIVE_LINK_NAMES: Final[tuple[str, ...]] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft",
    "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight",
    "JawForward", "JawLeft", "JawRight", "JawOpen",
    "MouthClose", "MouthFunnel", "MouthPucker", "MouthLeft", "MouthRight",
    "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight",
    "MouthUpperUpLeft", "MouthUpperUpRight",
    "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight",
    "TongueOut",
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
VALUE_COUNT: Final = len(LIVE_LINK_NAMES)

# _DESTINATION[i] is where the model's i-th blendshape goes in the packet's value list.
_DESTINATION: Final = np.array(
    [LIVE_LINK_NAMES.index(upper_camel(name)) for name in ARKIT_NAMES], dtype=np.intp
)
if sorted(_DESTINATION.tolist()) != list(range(NUM_BLENDSHAPES)):
    raise AssertionError("LIVE_LINK_NAMES' first 52 entries must be the 52 ARKit blendshapes")


def _length_prefixed(value: str, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"Live Link {what} must be a non-empty string, got {value!r}")
    data = value.encode("utf-8")
    if len(data) > MAX_NAME_BYTES:
        raise ValueError(
            f"Live Link {what} is {len(data)} UTF-8 bytes; keep it at most {MAX_NAME_BYTES}"
        )
    return struct.pack(">i", len(data)) + data


class LiveLinkEncoder:
    """Encodes one frame of 52 weights (model order) into one Live Link Face datagram.

    Head and eye rotations stay 0. ``device_id`` defaults to the config's UUID derived from
    ``subject`` (``LiveLinkOutputConfig.default_device_id``); any other non-empty id of at most
    255 bytes is encoded as given (the config is what insists on 36 characters). The frame
    number and subframe are the frame's time of day (``TimeOfDayAnchor``: the wall clock
    ``time_of_day`` read once, at the first frame, then advanced by ``Frame.time_s``) in frames
    at ``fps``; the frame rate is ``fps``/1 (a zero denominator would break Unreal:
    docs/references.md, "Live Link Face").
    """

    # Re-send rate of an unchanged face under ``idle_refresh_hz: auto``: Unreal marks a Live
    # Link subject that gets no frames unresponsive, so frames stay well under 0.5 s apart.
    AUTO_REFRESH_HZ: ClassVar[float] = 5.0

    def __init__(
        self,
        subject: str = "vadbridge",
        device_id: str | None = None,
        fps: int = 60,
        *,
        time_of_day: Callable[[], float] = local_time_of_day_s,
    ) -> None:
        if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps < 2**31:
            raise ValueError(f"Live Link fps must be a positive integer, got {fps!r}")
        subject_field = _length_prefixed(subject, "subject")
        if device_id is None:
            device_id = LiveLinkOutputConfig.default_device_id(subject)
        header = (
            struct.pack(">B", PACKET_VERSION)
            + _length_prefixed(device_id, "device_id")
            + subject_field
        )
        self._frame_offset = len(header)
        body = struct.pack(">ifiiB", 0, 0.0, fps, 1, VALUE_COUNT)
        self._buffer = bytearray(header + body + bytes(4 * VALUE_COUNT))
        self._values = np.frombuffer(
            self._buffer, dtype=">f4", count=VALUE_COUNT, offset=len(header) + len(body)
        )
        self._datagrams = (memoryview(self._buffer),)
        self._anchor = TimeOfDayAnchor(time_of_day)
        self.subject = subject
        self.device_id = device_id
        self.fps = fps

    @property
    def datagram_sizes(self) -> tuple[int, ...]:
        return (len(self._buffer),)

    def layout(self) -> PacketLayout:
        """Where the numbers go, for ``UdpBatch`` (many Live Link outputs encoded at once);
        the batch stamps the timecode with this encoder's own ``timecode``."""
        values_offset = len(self._buffer) - 4 * VALUE_COUNT
        buffer = bytearray(self._buffer)
        buffer[values_offset:] = bytes(4 * VALUE_COUNT)  # rotations stay 0; weights are rewritten
        return PacketLayout(
            template=bytes(buffer),
            bounds=((0, len(buffer)),),
            weight_offsets=values_offset + 4 * _DESTINATION,
            timecode_offset=self._frame_offset,
            timecode=self.timecode,
        )

    @property
    def anchor(self) -> TimeOfDayAnchor:
        return self._anchor

    def use_anchor(self, anchor: TimeOfDayAnchor) -> None:
        """Stamp from ``anchor`` from now on: the Live Link outputs of one ``UdpBatch`` share
        one, so its stamps do not jump when a reload changes which output comes first."""
        self._anchor = anchor

    def timecode(self, time_s: float) -> tuple[int, float]:
        """(frame, subframe) of the time of day at ``time_s`` (anchored at the first call)."""
        return frame_time(self._anchor.seconds(time_s), self.fps)

    def encode(self, frame: Frame) -> Sequence[memoryview | bytes]:
        """The frame's datagram; a view of one reused buffer, valid until the next call."""
        weights = frame.weights
        if weights.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected weights of shape (52,), got {weights.shape}")
        self._values[_DESTINATION] = weights
        number, subframe = self.timecode(frame.time_s)
        struct.pack_into(">if", self._buffer, self._frame_offset, number, subframe)
        return self._datagrams
