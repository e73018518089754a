"""Pure OSC 1.0 encoding and decoding: bytes in, bytes out, no sockets.

Encoding is byte-identical to python-osc's ``OscMessageBuilder``/``OscBundleBuilder`` for the same
messages (strings get 1-4 NULs, everything is 4-byte aligned, big-endian). ``PacketTemplate``
precompiles a packet whose per-frame numbers are the only thing that changes: addresses and type
tags are written once, a frame writes its floats with one numpy assignment.

Decoding is for the input side. It follows python-osc's internal style — private readers return
``(value, next_index)`` — and raises only ``OscDecodeError``, whatever the bytes. It reads every
OSC 1.0 type tag (and 1.1's common ones), so a message whose arguments no input can use is
rejected by the parser alone; ``decode_datagram`` keeps a bad message's error in its place so the
rest of a bundle still delivers. Bundle time tags are ignored (never sleep on them:
docs/references.md, "OSC in Python"). Error texts show the address through ``stats.show``.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from vadbridge.core.stats import show

__all__ = [
    "BUNDLE_PREFIX",
    "IMMEDIATELY",
    "INFINITUM",
    "SLOT",
    "DecodedMessage",
    "MessageSpec",
    "OscChar",
    "OscDecodeError",
    "OscMidi",
    "OscRgba",
    "OscTimeTag",
    "PacketTemplate",
    "decode_datagram",
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


class OscChar(NamedTuple):
    """OSC ``c``: a 32-bit (ASCII) character, kept as its code."""

    code: int


class OscRgba(NamedTuple):
    """OSC ``r``: a 32-bit RGBA colour."""

    red: int
    green: int
    blue: int
    alpha: int


class OscMidi(NamedTuple):
    """OSC ``m``: a 4-byte MIDI message (port id, status byte, two data bytes)."""

    port: int
    status: int
    data1: int
    data2: int


class OscTimeTag(NamedTuple):
    """OSC ``t``: an NTP time tag (seconds since 1900, fraction of a second in 2**-32 s)."""

    seconds: int
    fraction: int


class _Infinitum:
    """OSC 1.0's ``I`` (infinitum / impulse): no data."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INFINITUM"


INFINITUM: Final = _Infinitum()

# Tag -> (layout, constructor); None keeps the single unpacked number as it is. The types no VAD
# input uses (c r m t, like b and the constants) still decode, so the parser can reject such a
# message by itself and its neighbours in a bundle still deliver.
_FIXED_ARGS: Final[dict[str, tuple[struct.Struct, Callable[..., Any] | None]]] = {
    "i": (struct.Struct(">i"), None),
    "f": (struct.Struct(">f"), None),
    "d": (struct.Struct(">d"), None),
    "h": (struct.Struct(">q"), None),
    "c": (struct.Struct(">I"), OscChar),
    "r": (struct.Struct(">4B"), OscRgba),
    "m": (struct.Struct(">4B"), OscMidi),
    "t": (struct.Struct(">II"), OscTimeTag),
}
_STRING_TAGS: Final = frozenset("sS")  # S (symbol) is a string on the wire and to us
_CONSTANT_ARGS: Final = {"T": True, "F": False, "N": None, "I": INFINITUM}


def _decode_message(data: bytes) -> DecodedMessage:
    address, index = _read_string(data, 0, "address")
    if not address.startswith("/"):
        raise OscDecodeError(f"address {show(address)} does not start with '/'")
    try:
        return address, _decode_arguments(data, index)
    except OscDecodeError as error:
        # The address is input: escaped and cut (docs/security.md, log forging).
        raise OscDecodeError(f"{show(address)}: {error.reason}") from None


def _decode_arguments(data: bytes, index: int) -> tuple[Any, ...]:
    if index == len(data):
        return ()  # OSC 1.0 lets old senders omit the type tag string
    typetags, index = _read_string(data, index, "type tag string")
    if not typetags.startswith(","):
        raise OscDecodeError("type tag string does not start with ','")
    args: list[Any] = []
    current = args  # the innermost open array ('[' ... ']'), or the arguments themselves
    outer: list[list[Any]] = []
    for number, tag in enumerate(typetags[1:], start=1):
        value: Any
        fixed = _FIXED_ARGS.get(tag)
        if fixed is not None:
            layout, make = fixed
            if index + layout.size > len(data):
                raise OscDecodeError(
                    f"argument {number} ({tag!r}) truncated: needs {layout.size} bytes at "
                    f"offset {index}"
                )
            raw = layout.unpack_from(data, index)
            index += layout.size
            value = raw[0] if make is None else make(*raw)
        elif tag in _STRING_TAGS:
            value, index = _read_string(data, index, f"argument {number} ({tag!r})")
        elif tag == "b":
            value, index = _read_blob(data, index, f"argument {number} ({tag!r})")
        elif tag in _CONSTANT_ARGS:
            value = _CONSTANT_ARGS[tag]
        elif tag == "[":
            outer.append(current)
            current = []
            continue
        elif tag == "]":
            if not outer:
                raise OscDecodeError(f"type tag {number} (']') closes no array")
            value = tuple(current)
            current = outer.pop()
        else:
            # Not in OSC 1.0/1.1: its size is unknown, so nothing after it can be read.
            raise OscDecodeError(f"unknown type tag {tag!r}")
        current.append(value)
    if outer:
        raise OscDecodeError(f"{len(outer)} array(s) opened with '[' are not closed")
    if index != len(data):
        raise OscDecodeError(f"{len(data) - index} bytes after the last argument")
    return tuple(args)


def _decode(
    data: bytes, depth: int, max_depth: int, out: list[DecodedMessage | OscDecodeError]
) -> None:
    if not data:
        raise OscDecodeError("empty packet")
    if len(data) % 4:
        raise OscDecodeError(f"length {len(data)} is not a multiple of 4")
    if not data.startswith(BUNDLE_PREFIX):
        try:
            out.append(_decode_message(data))
        except OscDecodeError as error:
            out.append(error)  # one message: a bundle's other elements are length-prefixed
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


def decode_datagram(
    data: bytes | bytearray | memoryview, *, max_depth: int = 4
) -> list[DecodedMessage | OscDecodeError]:
    """Every message of a datagram, bundles flattened in order: ``(address, args)``, or the
    ``OscDecodeError`` of a message that cannot be decoded (an unknown type tag, a truncated
    argument), so the other messages of its bundle still count.

    Raises ``OscDecodeError`` (and nothing else) when the datagram as a whole is unusable: empty,
    misaligned, a broken bundle header or element size, bundles nested deeper than
    ``max_depth`` (a top-level bundle is depth 1).

    Type tags: i f d h s S b T F N I c r m t and arrays ``[`` ... ``]`` (a tuple). ``S`` is a
    str like ``s``; ``I`` is ``INFINITUM``; ``c r m t`` are ``OscChar``, ``OscRgba``,
    ``OscMidi``, ``OscTimeTag``. Non-finite floats are returned as they are; callers decide.
    """
    if not 0 <= max_depth <= _MAX_NESTING:
        raise ValueError(f"max_depth must be in 0..{_MAX_NESTING}, got {max_depth}")
    out: list[DecodedMessage | OscDecodeError] = []
    _decode(bytes(data), 0, max_depth, out)
    return out


def decode_packet(
    data: bytes | bytearray | memoryview, *, max_depth: int = 4
) -> list[DecodedMessage]:
    """All messages of a datagram as ``(address, args)``, bundles flattened in order.

    The strict form of ``decode_datagram`` (same type tags and ``max_depth``): any message that
    cannot be decoded fails the whole datagram. Raises ``OscDecodeError`` (and nothing else) for
    anything malformed.
    """
    out: list[DecodedMessage] = []
    for item in decode_datagram(data, max_depth=max_depth):
        if isinstance(item, OscDecodeError):
            raise item
        out.append(item)
    return out
