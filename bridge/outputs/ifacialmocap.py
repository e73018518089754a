"""iFacialMocap encoder: the text frames the iPhone app streams to VSeeFace, Warudo, VNyan,
SnekStudio and VRCFaceTracking's iFacialMocap module, and the handshake receivers send to ask
for them.

Wire format from docs/references.md, "iFacialMocap": one UDP datagram per frame, ASCII, fields
ending in ``|``; each blendshape as ``name-value`` (v1) or ``name&value`` (v2, asked for with
``|sendDataVersion=v2`` after the handshake string), the value an integer percent 0..100; then
``=head#rx,ry,rz,px,py,pz|rightEye#rx,ry,rz|leftEye#rx,ry,rz|`` (degrees). Names are Apple's with
``Left``/``Right`` shortened to ``_L``/``_R``, except jawLeft/jawRight and mouthLeft/mouthRight,
which are directions, not sides.

Like the app's frames, ours start with ``trackingStatus`` (VRCFaceTracking's module drops the
first field of every frame unread) and carry ``hapihapi`` before the head; nothing else: some
receivers throw on a key they do not know. We have no head pose, so the head and eyes stay 0.

The text has no fixed layout (``37`` is two digits, ``5`` one), so each frame is one ``%`` over a
format prepared at construction; the numbers are scaled, rounded and clipped in a scratch array
made once. About 7-8 µs a frame on the development machine (tests/test_outputs_ifacialmocap.py,
``test_encoding_costs_microseconds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np

from vadbridge.core.stats import show
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES

__all__ = [
    "HANDSHAKE",
    "HANDSHAKE_V2",
    "IFACIALMOCAP_NAMES",
    "HandshakeError",
    "IFacialMocapEncoder",
    "IFacialMocapFormat",
    "handshake_format",
]

IFacialMocapFormat = Literal["v1", "v2"]

HANDSHAKE: Final = b"iFacialMocap_sahuasouryya9218sauhuiayeta91555dy3719"
HANDSHAKE_V2: Final = HANDSHAKE + b"|sendDataVersion=v2"
_SEPARATOR: Final[dict[str, str]] = {"v1": "-", "v2": "&"}
# Requests of the same family that we do not serve (TCP mode, stop, look-forward, recording
# bake; FMV3, the app's newer binary protocol): recognised, so the log can say so.
_OTHER_REQUEST_PREFIXES: Final = (b"iFacialMocap_", b"FMV3")
# Zero head rotation and position, zero eye rotations, written as the app writes floats.
_HEAD_AND_EYES: Final = "=head#0.0,0.0,0.0,0.0,0.0,0.0|rightEye#0.0,0.0,0.0|leftEye#0.0,0.0,0.0|"
_DIRECTIONS: Final = frozenset({"jawLeft", "jawRight", "mouthLeft", "mouthRight"})


def _app_name(arkit_name: str) -> str:
    if arkit_name in _DIRECTIONS:
        return arkit_name
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if arkit_name.endswith(side):
            return arkit_name.removesuffix(side) + suffix
    return arkit_name


IFACIALMOCAP_NAMES: Final[tuple[str, ...]] = tuple(_app_name(name) for name in ARKIT_NAMES)
"""The 52 names as the app sends them, in model order (``eyeBlink_L``, ``jawLeft``, ...)."""


class HandshakeError(ValueError):
    """A datagram on the listening port that is not a handshake we answer. ``kind``:
    ``unsupported`` (another request of the app's protocols: TCP mode, FMV3...) or
    ``malformed`` (anything else); ``reason`` says what it was, with the input escaped."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def handshake_format(datagram: bytes) -> IFacialMocapFormat:
    """The format a receiver's handshake asks for: ``v1`` for the bare string, ``v2`` for the
    string with ``|sendDataVersion=v2``; trailing whitespace and NULs are tolerated. Raises
    ``HandshakeError`` for anything else."""
    text = datagram.rstrip(b"\0\r\n\t ")
    if text == HANDSHAKE:
        return "v1"
    if text == HANDSHAKE_V2:
        return "v2"
    if text.startswith(_OTHER_REQUEST_PREFIXES):
        raise HandshakeError("unsupported", f"a request this output does not serve (it "
                             f"streams v1/v2 frames over UDP only): {show(text)}")
    raise HandshakeError("malformed", f"not an iFacialMocap handshake: {show(text)}")


class IFacialMocapEncoder:
    """Encodes one frame of 52 weights (model order, 0..1) into one iFacialMocap datagram.

    ``version``: ``v1`` (``name-value``, what the app sends when nobody asked for a version) or
    ``v2`` (``name&value``). Values are percent, rounded half to even and clipped to 0..100;
    a NaN is sent as 0.
    """

    def __init__(self, version: IFacialMocapFormat = "v1") -> None:
        separator = _SEPARATOR.get(version)
        if separator is None:
            raise ValueError(f"iFacialMocap version must be 'v1' or 'v2', got {version!r}")
        self.version = version
        fields = (f"trackingStatus{separator}1|"
                  + "".join(f"{name}{separator}%d|" for name in IFACIALMOCAP_NAMES)
                  + f"hapihapi{separator}0|" + _HEAD_AND_EYES)
        self._format = fields.encode("ascii")
        self._percent = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
        # int64, so tolist() gives ints: %d of an int is faster than of a float.
        self._integers = np.zeros(NUM_BLENDSHAPES, dtype=np.int64)

    def encode(self, frame: Frame) -> Sequence[memoryview | bytes]:
        """The frame's datagram (new bytes each call: the text's length varies)."""
        weights = frame.weights
        if weights.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected weights of shape (52,), got {weights.shape}")
        percent = self._percent
        np.multiply(weights, 100.0, out=percent)
        np.rint(percent, out=percent)
        np.fmax(percent, 0.0, out=percent)  # fmax/fmin, unlike clip, turn a NaN into a bound
        np.fmin(percent, 100.0, out=percent)
        np.copyto(self._integers, percent, casting="unsafe")
        return (self._format % tuple(self._integers.tolist()),)
