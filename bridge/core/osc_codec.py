"""Pure OSC 1.0 encoding and decoding: bytes in, bytes out, no sockets.

Encoding is byte-identical to python-osc's ``OscMessageBuilder``/``OscBundleBuilder`` for the same
messages (strings get 1-4 NULs, everything is 4-byte aligned, big-endian). ``PacketTemplate``
precompiles a packet whose per-frame numbers are the only thing that changes: addresses and type
tags are written once, a frame writes its floats with one numpy assignment.

Decoding is for the input side. It follows python-osc's internal style — private readers return
``(value, next_index)`` — and raises only ``OscDecodeError``, whatever the bytes. Bundle time tags
are ignored (never sleep on them: docs/references.md, "OSC in Python").
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUNDLE_PREFIX",
    "IMMEDIATELY",
    "SLOT",
    "DecodedMessage",
    "MessageSpec",
    "OscDecodeError",
    "PacketTemplate",
    "decode_packet",
    "encode_bundle",
    "encode_message",
]

BUNDLE_PREFIX: Final = b"#bundle\x00"
IMMEDIATELY: Final = 1  # the OSC time tag meaning "now" (63 zero bits then a one)
_BUNDLE_HEADER_SIZE: Final = len(BUNDLE_PREFIX) + 8
_MAX_NESTING: Final = 64  # far below the recursion limit; real senders nest 1-2 deep

MessageSpec = tuple[str, str, Sequence[Any]]  # (address, type tags, arguments)
DecodedMessage = tuple[str, tuple[Any, ...]]  # (address, arguments)


class OscDecodeError(ValueError):
    """A datagram is not valid OSC 1.0; ``reason`` says what was wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Slot:
    """Placeholder for an ``f`` or ``i`` argument that a ``PacketTemplate`` fills per frame."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SLOT"


SLOT: Final = _Slot()


# ---------------------------------------------------------------------------------------------
# Encoding


def _osc_string(value: str) -> bytes:
    data = value.encode("utf-8")
    if b"\x00" in data:
        raise ValueError(f"OSC strings cannot contain NUL: {value!r}")
    return data + b"\x00" * (4 - len(data) % 4)


def _osc_blob(value: bytes) -> bytes:
    data = bytes(value)
    return struct.pack(">i", len(data)) + data + b"\x00" * (-len(data) % 4)


def _check_address(address: str) -> None:
    if not isinstance(address, str) or not address.startswith("/"):
        raise ValueError(f"OSC address must be a string starting with '/': {address!r}")


def _encode_argument(tag: str, value: Any) -> bytes:
    try:
        if tag == "i":
            return struct.pack(">i", operator.index(value))
        if tag == "h":
            return struct.pack(">q", operator.index(value))
        if tag == "f":
            return struct.pack(">f", float(value))
        if tag == "d":
            return struct.pack(">d", float(value))
    except (struct.error, OverflowError, TypeError) as error:
        raise ValueError(f"argument {value!r} does not fit OSC type {tag!r}: {error}") from None
    if tag == "s":
        if not isinstance(value, str):
            raise ValueError(f"argument for OSC type 's' must be str, got {value!r}")
        return _osc_string(value)
    if tag == "b":
        if not isinstance(value, bytes | bytearray | memoryview):
            raise ValueError(f"argument for OSC type 'b' must be bytes, got {value!r}")
        return _osc_blob(bytes(value))
    expected = {"T": True, "F": False, "N": None}
    if tag in expected:
        if value is not expected[tag]:
            raise ValueError(f"argument for OSC type {tag!r} must be {expected[tag]!r}")
        return b""
    raise ValueError(f"unsupported OSC type tag {tag!r} (supported: i f s b d h T F N)")


def _encode_message_slots(
    address: str, typetags: str, args: Sequence[Any]
) -> tuple[bytes, list[tuple[str, int]]]:
    """Encode one message; SLOT arguments become zeros and are returned as (tag, byte offset)."""
    _check_address(address)
    tags = typetags.removeprefix(",")
    if len(tags) != len(args):
        raise ValueError(
            f"{address}: type tags ',{tags}' name {len(tags)} arguments, got {len(args)}"
        )
    out = bytearray(_osc_string(address) + _osc_string("," + tags))
    slots: list[tuple[str, int]] = []
    for tag, value in zip(tags, args, strict=True):
        if value is SLOT:
            if tag not in "if":
                raise ValueError(f"{address}: SLOT is only for 'f' and 'i' arguments, not {tag!r}")
            slots.append((tag, len(out)))
            value = 0
        out += _encode_argument(tag, value)
    return bytes(out), slots


def encode_message(address: str, typetags: str, args: Sequence[Any]) -> bytes:
    """One OSC message; ``typetags`` with or without the leading comma, one argument per tag.

    ``T``/``F``/``N`` take the argument ``True``/``False``/``None`` (they add no bytes), so
    ``decode_packet``'s output round-trips.
    """
    data, slots = _encode_message_slots(address, typetags, args)
    if slots:
        raise ValueError(f"{address}: SLOT placeholders belong in a PacketTemplate")
    return data


def encode_bundle(elements: Sequence[bytes], timetag: int = IMMEDIATELY) -> bytes:
    """An OSC bundle of already-encoded messages or bundles; ``timetag`` 1 means immediately."""
    if not 0 <= timetag < 2**64:
        raise ValueError(f"OSC time tag must fit 64 unsigned bits, got {timetag}")
    out = bytearray(BUNDLE_PREFIX + struct.pack(">Q", timetag))
    for element in elements:
        if not element or len(element) % 4:
            raise ValueError(f"bundle element must be a non-empty 4-byte multiple: {element!r}")
        out += struct.pack(">i", len(element)) + element
    return bytes(out)


class PacketTemplate:
    """UDP datagrams precompiled once; per frame only the ``SLOT`` numbers are rewritten.

    ``datagrams`` is a list of datagrams, each a list of ``(address, typetags, args)`` messages
    whose per-frame arguments are ``SLOT``. With ``bundle=True`` each datagram is one bundle of
    its messages; with ``bundle=False`` each datagram must be exactly one bare message. All
    datagrams share one buffer, so a frame writes every float with a single numpy assignment:
    ``template.floats[template.float_slots] = values`` (slots in the order they were given).
    ``datagrams()`` views alias that buffer: they are valid until the next write.
    """

    def __init__(
        self,
        datagrams: Sequence[Sequence[MessageSpec]],
        *,
        bundle: bool = True,
        timetag: int = IMMEDIATELY,
    ) -> None:
        if not datagrams:
            raise ValueError("a PacketTemplate needs at least one datagram")
        raw = bytearray()
        bounds: list[tuple[int, int]] = []
        float_offsets: list[int] = []
        int_offsets: list[int] = []
        for messages in datagrams:
            if not bundle and len(messages) != 1:
                raise ValueError(f"unbundled datagrams hold one message, got {len(messages)}")
            start = len(raw)
            if bundle:
                raw += encode_bundle((), timetag)
            for address, typetags, args in messages:
                data, slots = _encode_message_slots(address, typetags, args)
                if bundle:
                    raw += struct.pack(">i", len(data))
                for tag, offset in slots:
                    (float_offsets if tag == "f" else int_offsets).append(len(raw) + offset)
                raw += data
            bounds.append((start, len(raw)))
        self.buffer = raw
        self.bounds: tuple[tuple[int, int], ...] = tuple(bounds)
        view = memoryview(raw)
        self._datagrams: tuple[memoryview, ...] = tuple(view[a:b] for a, b in bounds)
        # Every OSC item is 4-byte aligned, so a '>f4' view over the whole buffer addresses
        # each float argument by (byte offset // 4).
        self.floats: npt.NDArray[np.float32] = np.frombuffer(raw, dtype=">f4")
        self.float_slots: npt.NDArray[np.intp] = np.array(
            [offset // 4 for offset in float_offsets], dtype=np.intp
        )
        self.int_offsets: tuple[int, ...] = tuple(int_offsets)

    def set_int(self, slot: int, value: int) -> None:
        """Write the ``slot``-th ``i`` SLOT (wraps to signed 32 bits)."""
        wrapped = (value + 2**31) % 2**32 - 2**31
        struct.pack_into(">i", self.buffer, self.int_offsets[slot], wrapped)

    def datagrams(self) -> tuple[memoryview, ...]:
        return self._datagrams

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(d) for d in self._datagrams)


# ---------------------------------------------------------------------------------------------
# Decoding


def _read_string(data: bytes, index: int, what: str) -> tuple[str, int]:
    end = data.find(b"\x00", index)
    if end < 0:
        raise OscDecodeError(f"{what} has no NUL terminator")
    next_index = end + 4 - (end - index) % 4
    if next_index > len(data):
        raise OscDecodeError(f"{what} padding runs past the end of the packet")
    try:
        return data[index:end].decode("utf-8"), next_index
    except UnicodeDecodeError:
        raise OscDecodeError(f"{what} is not valid UTF-8") from None


def _read_fixed(data: bytes, index: int, fmt: str, size: int, what: str) -> tuple[Any, int]:
    if index + size > len(data):
        raise OscDecodeError(f"{what} truncated: needs {size} bytes at offset {index}")
    return struct.unpack_from(fmt, data, index)[0], index + size


def _read_blob(data: bytes, index: int, what: str) -> tuple[bytes, int]:
    size, index = _read_fixed(data, index, ">i", 4, f"{what} size")
    if size < 0 or index + size > len(data):
        raise OscDecodeError(f"{what} size {size} does not fit the {len(data) - index} bytes left")
    return data[index : index + size], index + size + (-size % 4)


_FIXED_ARGS: Final = {"i": (">i", 4), "f": (">f", 4), "d": (">d", 8), "h": (">q", 8)}
_CONSTANT_ARGS: Final = {"T": True, "F": False, "N": None}


def _decode_message(data: bytes) -> DecodedMessage:
    address, index = _read_string(data, 0, "address")
    if not address.startswith("/"):
        raise OscDecodeError(f"address {address[:40]!r} does not start with '/'")
    if index == len(data):
        return address, ()  # OSC 1.0 lets old senders omit the type tag string
    typetags, index = _read_string(data, index, f"{address}: type tag string")
    if not typetags.startswith(","):
        raise OscDecodeError(f"{address}: type tag string does not start with ','")
    args: list[Any] = []
    for number, tag in enumerate(typetags[1:], start=1):
        what = f"{address}: argument {number} ({tag!r})"
        if tag in _FIXED_ARGS:
            fmt, size = _FIXED_ARGS[tag]
            value, index = _read_fixed(data, index, fmt, size, what)
        elif tag == "s":
            value, index = _read_string(data, index, what)
        elif tag == "b":
            value, index = _read_blob(data, index, what)
        elif tag in _CONSTANT_ARGS:
            value = _CONSTANT_ARGS[tag]
        else:
            raise OscDecodeError(f"{address}: unknown type tag {tag!r}")
        args.append(value)
    if index != len(data):
        raise OscDecodeError(f"{address}: {len(data) - index} bytes after the last argument")
    return address, tuple(args)


def _decode(data: bytes, depth: int, max_depth: int, out: list[DecodedMessage]) -> None:
    if not data:
        raise OscDecodeError("empty packet")
    if len(data) % 4:
        raise OscDecodeError(f"length {len(data)} is not a multiple of 4")
    if not data.startswith(BUNDLE_PREFIX):
        out.append(_decode_message(data))
        return
    if depth >= max_depth:
        raise OscDecodeError(f"bundles nested deeper than {max_depth}")
    if len(data) < _BUNDLE_HEADER_SIZE:
        raise OscDecodeError("bundle time tag truncated")
    index = _BUNDLE_HEADER_SIZE  # the time tag is ignored: late or early, apply now
    while index < len(data):
        size, index = _read_fixed(data, index, ">i", 4, "bundle element size")
        if size <= 0 or size % 4 or index + size > len(data):
            raise OscDecodeError(
                f"bundle element size {size} is not a positive multiple of 4 within the "
                f"{len(data) - index} bytes left"
            )
        _decode(data[index : index + size], depth + 1, max_depth, out)
        index += size


def decode_packet(
    data: bytes | bytearray | memoryview, *, max_depth: int = 4
) -> list[DecodedMessage]:
    """All messages of a datagram as ``(address, args)``, bundles flattened in order.

    Accepts the type tags i f d h s b T F N. ``max_depth`` bounds bundle nesting (a top-level
    bundle is depth 1). Non-finite floats are returned as they are; callers decide. Raises
    ``OscDecodeError`` (and nothing else) for anything malformed.
    """
    if not 0 <= max_depth <= _MAX_NESTING:
        raise ValueError(f"max_depth must be in 0..{_MAX_NESTING}, got {max_depth}")
    out: list[DecodedMessage] = []
    _decode(bytes(data), 0, max_depth, out)
    return out
