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
