"""The receiver side of iFacialMocap, written from the protocol description (docs/references.md,
"iFacialMocap"), not from the encoder: what VSeeFace or VRCFaceTracking's module does with the
phone. A handshake from a real socket, frames parsed strictly.

The parser follows the published grammar: ``name<sep>INT|`` fields (``-`` in v1, ``&`` in v2),
then ``=head#`` with six floats, ``rightEye#`` and ``leftEye#`` with three each, and a final
``|``. Every frame must carry each of the app's 52 names exactly once, with an integer 0-100,
and no key but those and the app's ``trackingStatus`` and ``hapihapi``. The 52 names are typed
here from the app's own frames, not derived from ARKit's.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

HANDSHAKE_V1 = b"iFacialMocap_sahuasouryya9218sauhuiayeta91555dy3719"
HANDSHAKE_V2 = b"iFacialMocap_sahuasouryya9218sauhuiayeta91555dy3719|sendDataVersion=v2"

APP_BLENDSHAPES = frozenset({
    "eyeBlink_L", "eyeLookDown_L", "eyeLookIn_L", "eyeLookOut_L", "eyeLookUp_L", "eyeSquint_L",
    "eyeWide_L", "eyeBlink_R", "eyeLookDown_R", "eyeLookIn_R", "eyeLookOut_R", "eyeLookUp_R",
    "eyeSquint_R", "eyeWide_R", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmile_L", "mouthSmile_R",
    "mouthFrown_L", "mouthFrown_R", "mouthDimple_L", "mouthDimple_R", "mouthStretch_L",
    "mouthStretch_R", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPress_L", "mouthPress_R", "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L",
    "mouthUpperUp_R", "browDown_L", "browDown_R", "browInnerUp", "browOuterUp_L",
    "browOuterUp_R", "cheekPuff", "cheekSquint_L", "cheekSquint_R", "noseSneer_L",
    "noseSneer_R", "tongueOut",
})
assert len(APP_BLENDSHAPES) == 52

# Keys real frames carry besides the 52 blendshapes (trackingStatus first, hapihapi last).
APP_EXTRA_KEYS = frozenset({"trackingStatus", "hapihapi"})


@dataclass
class ParsedFrame:
    keys: list[str]  # every name=value key in order (extras included), to check duplicates
    blendshapes: dict[str, int]
    extras: dict[str, int]
    head: tuple[float, ...]
    right_eye: tuple[float, ...]
    left_eye: tuple[float, ...]


def parse_frame(datagram: bytes, version: str) -> ParsedFrame:
    """One frame as a strict receiver reads it; AssertionError names what is wrong."""
    separator = {"v1": "-", "v2": "&"}[version]
    text = datagram.decode("ascii")
    assert text.endswith("|"), "a frame ends with '|'"
    fields = text[:-1].split("|")
    head_at = next(i for i, field in enumerate(fields) if field.startswith("=head#"))
    assert head_at == len(fields) - 3, "=head#, rightEye#, leftEye# are the last three fields"
    keys: list[str] = []
    values: dict[str, int] = {}
    for field in fields[:head_at]:
        parts = field.split(separator)
        assert len(parts) == 2, f"{field!r}: one {separator!r} between name and value"
        name, value = parts
        assert name in APP_BLENDSHAPES or name in APP_EXTRA_KEYS, f"{name!r}: a key of the app"
        assert name not in values, f"{name!r}: each key once"
        assert value.isdigit() and int(value) <= 100, f"{field!r}: the value is an integer 0-100"
        keys.append(name)
        values[name] = int(value)
    missing = APP_BLENDSHAPES - values.keys()
    assert not missing, f"all 52 names, missing {sorted(missing)}"
    head = _floats(fields[head_at], "=head#", 6)
    right_eye = _floats(fields[head_at + 1], "rightEye#", 3)
    left_eye = _floats(fields[head_at + 2], "leftEye#", 3)
    return ParsedFrame(
        keys=keys,
        blendshapes={k: v for k, v in values.items() if k not in APP_EXTRA_KEYS},
        extras={k: v for k, v in values.items() if k in APP_EXTRA_KEYS},
        head=head, right_eye=right_eye, left_eye=left_eye,
    )


def _floats(field: str, prefix: str, count: int) -> tuple[float, ...]:
    assert field.startswith(prefix), f"{field!r} starts with {prefix!r}"
    numbers = tuple(float(x) for x in field[len(prefix):].split(","))
    assert len(numbers) == count, f"{field!r}: {count} numbers"
    return numbers


def vrcft_blendshapes(datagram: bytes) -> dict[str, int]:
    """What VRCFaceTracking's module keeps: ``Split('|')[1..^1]`` drops the first field and the
    empty one after the last ``|``; either separator; ``int.Parse`` of the value."""
    kept: dict[str, int] = {}
    for field in datagram.decode("ascii").split("|")[1:-1]:
        if field.startswith(("=head", "rightEye", "leftEye")):
            continue
        separator = "&" if "&" in field else "-"
        name, value = field.split(separator)
        kept[name] = int(value)
    return kept


class PhoneReceiver:
    """A receiver on a free loopback port: sends the handshake and reads the frames.

    ``from_own_port`` sends the handshake from the receiving socket itself (the output then
    needs ``reply_port: source`` or this port); otherwise from a throwaway socket, as the
    official example and talking-head-anime do, so the frames must come to the fixed port.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.host = host
        self.port: int = self.sock.getsockname()[1]

    def handshake(self, listen_port: int, version: str = "v1", *,
                  from_own_port: bool = True, data: bytes | None = None) -> None:
        message = data if data is not None else {"v1": HANDSHAKE_V1, "v2": HANDSHAKE_V2}[version]
        if from_own_port:
            self.sock.sendto(message, ("127.0.0.1", listen_port))
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as throwaway:
            throwaway.sendto(message, ("127.0.0.1", listen_port))

    def receive(self, seconds: float) -> list[bytes]:
        datagrams = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                datagrams.append(self.sock.recv(65536))
            except TimeoutError:
                continue
        return datagrams

    def receive_one(self, timeout_s: float = 5.0) -> bytes:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                return self.sock.recv(65536)
            except TimeoutError:
                continue
        raise AssertionError(f"no frame within {timeout_s} s")

    def drain(self) -> int:
        count = 0
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65536)
                count += 1
        except BlockingIOError:
            return count
        finally:
            self.sock.settimeout(0.05)

    def close(self) -> None:
        self.sock.close()
