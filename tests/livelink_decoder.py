"""An independent Live Link Face (version 6) decoder for tests.

Written from the format description in docs/references.md ("Live Link Face"), not
from bridge/outputs/livelink.py: its own name list, typed from that description, and its own
struct reads. Raises ValueError on anything that Unreal would drop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Value order as printed in docs/references.md (Apple's ARFaceAnchor order as Unreal uses it).
VALUE_NAMES = [
    # 0-6, then 7-13 the same seven for Right
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft",
    "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight",
    # 14-17
    "JawForward", "JawLeft", "JawRight", "JawOpen",
    # 18-22
    "MouthClose", "MouthFunnel", "MouthPucker", "MouthLeft", "MouthRight",
    # 23-30
    "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    # 31-34
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    # 35-40
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight",
    "MouthUpperUpLeft", "MouthUpperUpRight",
    # 41-45
    "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    # 46-51
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight",
    "TongueOut",
    # 52-60
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
]  # fmt: skip
assert len(VALUE_NAMES) == 61 and len(set(VALUE_NAMES)) == 61


@dataclass(frozen=True)
class LiveLinkFrame:
    version: int
    device_id: str
    subject: str
    frame_number: int
    subframe: float
    rate: tuple[int, int]
    values: dict[str, float]


def _read_string(packet: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">i", packet, offset)
    offset += 4
    if length < 0 or offset + length > len(packet):
        raise ValueError(f"string length {length} does not fit the packet")
    return packet[offset : offset + length].decode("utf-8"), offset + length


def decode_livelink(packet: bytes) -> LiveLinkFrame:
    (version,) = struct.unpack_from(">B", packet, 0)
    if version != 6:
        raise ValueError(f"version {version}, expected 6")
    device_id, offset = _read_string(packet, 1)
    subject, offset = _read_string(packet, offset)
    frame_number, subframe, numerator, denominator, count = struct.unpack_from(
        ">ifiiB", packet, offset
    )
    offset += 17
    if count != 61:
        raise ValueError(f"count {count}, expected 61")
    if denominator == 0:
        raise ValueError("rate denominator 0")
    if len(packet) != offset + 4 * count:
        raise ValueError(f"{len(packet) - offset - 4 * count} stray bytes after the values")
    values = struct.unpack_from(f">{count}f", packet, offset)
    return LiveLinkFrame(
        version=version,
        device_id=device_id,
        subject=subject,
        frame_number=frame_number,
        subframe=subframe,
        rate=(numerator, denominator),
        values=dict(zip(VALUE_NAMES, values, strict=True)),
    )


@dataclass(frozen=True)
class PyLiveLinkFaceView:
    """What PyLiveLinkFace's decoder makes of a packet (see ``decode_like_pylivelinkface``)."""

    version: int
    uuid: str
    name: str
    frame_number: int
    sub_frame: float
    fps: int
    denominator: int
    blend_shapes: tuple[float, ...]


def decode_like_pylivelinkface(packet: bytes) -> PyLiveLinkFaceView:
    """Reads a packet the way PyLiveLinkFace does, fixed offsets and all.

    Written from the reading pattern of ``PyLiveLinkFace.decode`` in JimWest/PyLiveLinkFace
    (``pylivelinkface/pylivelinkface.py``), which the NeuroSync player copies: the version is a
    little-endian int32 over bytes 0-3 (the u8 version plus the top three bytes of the device
    id's length, zero for a short id); the device id is bytes 4-40 read as UTF-8 (the length's
    low byte, ``$`` for 36, then exactly 36 id bytes); the subject's length is a big-endian
    int32 at 41; then ``!if2ib`` (frame number, subframe, rate, count) and ``!61f`` over the
    rest, which must be exactly 244 bytes. Any id not 36 bytes long shifts every later read.
    """
    (version,) = struct.unpack("<i", packet[0:4])
    uuid = packet[4:41].decode("utf-8")
    (name_length,) = struct.unpack("!i", packet[41:45])
    name_end = 45 + name_length
    name = packet[45:name_end].decode("utf-8")
    frame_number, sub_frame, fps, denominator, count = struct.unpack(
        "!if2ib", packet[name_end : name_end + 17]
    )
    if count != 61:
        raise ValueError(f"blend shape count {count}, PyLiveLinkFace expects 61")
    blend_shapes = struct.unpack("!61f", packet[name_end + 17 :])
    return PyLiveLinkFaceView(
        version, uuid, name, frame_number, sub_frame, fps, denominator, blend_shapes
    )
