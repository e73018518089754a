"""OSC 1.0 codec: bytes identical to python-osc; decoding that only raises OscDecodeError."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from vadbridge.core.osc_codec import (
    INFINITUM,
    SLOT,
    OscChar,
    OscDecodeError,
    OscMidi,
    OscRgba,
    OscTimeTag,
    PacketTemplate,
    decode_datagram,
    decode_packet,
    encode_bundle,
    encode_message,
)

FUZZ = settings(max_examples=400, deadline=None, derandomize=True)


def python_osc(address: str, *args: tuple[str, Any]) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg_type, value in args:
        builder.add_arg(value, arg_type)
    return builder.build().dgram


def python_osc_bundle(*messages: bytes) -> bytes:
    builder = OscBundleBuilder(IMMEDIATELY)
    for dgram in messages:
        builder.add_content(OscMessage(dgram))
    return builder.build().dgram


# --- encoding -------------------------------------------------------------------------------

ONE_OF_EACH = [
    ("i", -7),
    ("f", 0.25),
    ("s", "BrowInnerUp"),
    ("s", ""),
    ("s", "abc"),
    ("s", "größe"),
    ("b", b"\x01\x02\x03\x04\x05"),
    ("d", 1e-300),
    ("h", 2**40),
    ("T", True),
    ("F", False),
    ("N", None),
]


@pytest.mark.parametrize(("tag", "value"), ONE_OF_EACH)
def test_single_argument_matches_python_osc(tag: str, value: Any) -> None:
    assert encode_message("/x/y", tag, [value]) == python_osc("/x/y", (tag, value))


def test_mixed_arguments_match_python_osc() -> None:
    tags = "".join(tag for tag, _ in ONE_OF_EACH)
    values = [value for _, value in ONE_OF_EACH]
    assert encode_message("/mixed", tags, values) == python_osc("/mixed", *ONE_OF_EACH)


def test_no_arguments_has_a_bare_comma_type_tag() -> None:
    expected = python_osc("/VMC/Ext/Blend/Apply")
    assert encode_message("/VMC/Ext/Blend/Apply", "", []) == expected
    assert encode_message("/VMC/Ext/Blend/Apply", ",", []) == expected


def test_type_tags_may_carry_the_leading_comma() -> None:
    assert encode_message("/a", ",sf", ["x", 1.0]) == encode_message("/a", "sf", ["x", 1.0])


def test_numpy_float32_arguments_are_accepted() -> None:
    assert encode_message("/a", "f", [np.float32(0.5)]) == python_osc("/a", ("f", 0.5))


def test_empty_blob_is_a_zero_size() -> None:
    assert encode_message("/a", "b", [b""]) == python_osc("/a")[:4] + b",b\x00\x00" + bytes(4)


@pytest.mark.parametrize(
    ("address", "tags", "args", "message"),
    [
        ("a", "", [], "must be a string starting with '/'"),
        ("/a", "ff", [1.0], "name 2 arguments, got 1"),
        ("/a", "x", [1], "unsupported OSC type tag 'x'"),
        ("/a", "i", [2**31], "does not fit OSC type 'i'"),
        ("/a", "i", [1.5], "does not fit OSC type 'i'"),
        ("/a", "f", [1e300], "does not fit OSC type 'f'"),
        ("/a", "s", [b"bytes"], "must be str"),
        ("/a", "s", ["nul\x00inside"], "cannot contain NUL"),
        ("/a", "b", ["text"], "must be bytes"),
        ("/a", "T", [False], "must be True"),
        ("/a", "N", [0], "must be None"),
        ("/a", "f", [SLOT], "SLOT placeholders belong in a PacketTemplate"),
    ],
)
def test_bad_messages_name_what_is_wrong(
    address: str, tags: str, args: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_message(address, tags, args)


def test_bundle_matches_python_osc() -> None:
    first = encode_message("/a", "f", [1.5])
    second = encode_message("/b", "si", ["x", 3])
    assert encode_bundle([first, second]) == python_osc_bundle(first, second)


def test_bundle_time_tag_is_written_big_endian() -> None:
    assert encode_bundle([], timetag=0x0102030405060708)[8:] == bytes(range(1, 9))
    with pytest.raises(ValueError, match="64 unsigned bits"):
        encode_bundle([], timetag=-1)


def test_bundle_rejects_unaligned_elements() -> None:
    with pytest.raises(ValueError, match="4-byte multiple"):
        encode_bundle([b"/ab"])


# --- PacketTemplate ---------------------------------------------------------------------------


def test_template_floats_land_where_python_osc_puts_them() -> None:
    template = PacketTemplate(
        [[("/v", "sf", ("jawOpen", SLOT)), ("/apply", "", ()), ("/t", "f", (SLOT,))]]
    )
    template.floats[template.float_slots] = [0.75, 3.5]
    (datagram,) = template.datagrams()
    expected = python_osc_bundle(
        python_osc("/v", ("s", "jawOpen"), ("f", 0.75)),
        python_osc("/apply"),
        python_osc("/t", ("f", 3.5)),
    )
    assert bytes(datagram) == expected


def test_template_int_slots_wrap_to_signed_32_bits() -> None:
    template = PacketTemplate([[("/frame", "i", (SLOT,))]], bundle=False)
    template.set_int(0, 2**31 + 5)
    assert decode_packet(template.datagrams()[0]) == [("/frame", (-(2**31) + 5,))]


def test_template_shares_one_buffer_across_datagrams() -> None:
    template = PacketTemplate([[("/a", "f", (SLOT,))], [("/b", "f", (SLOT,))]], bundle=False)
    template.floats[template.float_slots] = np.array([1.0, 2.0], np.float32)
    assert [bytes(d) for d in template.datagrams()] == [
        python_osc("/a", ("f", 1.0)),
        python_osc("/b", ("f", 2.0)),
    ]


def test_template_rejects_misuse() -> None:
    with pytest.raises(ValueError, match="at least one datagram"):
        PacketTemplate([])
    with pytest.raises(ValueError, match="unbundled datagrams hold one message"):
        PacketTemplate([[("/a", "", ()), ("/b", "", ())]], bundle=False)
    with pytest.raises(ValueError, match="SLOT is only for 'f' and 'i'"):
        PacketTemplate([[("/a", "s", (SLOT,))]])


# --- decoding ---------------------------------------------------------------------------------


def test_decodes_every_accepted_type() -> None:
    packet = python_osc("/mixed", *ONE_OF_EACH)
    assert decode_packet(packet) == [("/mixed", tuple(value for _, value in ONE_OF_EACH))]


def test_bundles_are_flattened_in_order_and_time_tags_ignored() -> None:
    inner = encode_bundle([encode_message("/b", "i", [2])], timetag=2**63)  # far future
    outer = encode_bundle([encode_message("/a", "i", [1]), inner, encode_message("/c", "", [])])
    assert decode_packet(outer) == [("/a", (1,)), ("/b", (2,)), ("/c", ())]


def test_message_without_type_tag_string_has_no_arguments() -> None:
    assert decode_packet(b"/vad\x00\x00\x00\x00") == [("/vad", ())]


def test_non_finite_floats_are_returned_as_is() -> None:
    packet = encode_message("/vad", "fff", [math.nan, math.inf, -math.inf])
    ((_, args),) = decode_packet(packet)
    assert math.isnan(args[0]) and args[1:] == (math.inf, -math.inf)


def test_nesting_is_bounded_by_max_depth() -> None:
    packet = encode_message("/deep", "", [])
    for _ in range(3):
        packet = encode_bundle([packet])
    assert decode_packet(packet, max_depth=3) == [("/deep", ())]
    with pytest.raises(OscDecodeError, match="nested deeper than 2"):
        decode_packet(packet, max_depth=2)
    with pytest.raises(ValueError, match="max_depth must be in"):
        decode_packet(packet, max_depth=10_000)


def _bundle_with_size(size: int, tail: bytes = b"") -> bytes:
    return b"#bundle\x00" + struct.pack(">Qi", 1, size) + tail


MALFORMED = [
    (b"", "empty packet"),
    (b"/vad\x00\x00", "not a multiple of 4"),
    (b"/vad", "no NUL terminator"),
    (b"/v\xff\x00", "address is not valid UTF-8"),
    (b"vad\x00", "does not start with '/'"),
    (b"/a\x00\x00sf\x00\x00", "type tag string does not start with ','"),
    (b"/a\x00\x00,x\x00\x00", "unknown type tag 'x'"),
    (b"/a\x00\x00,f\x00\x00", "argument 1 ('f') truncated"),
    (b"/a\x00\x00,d\x00\x00\x00\x00\x00\x00", "argument 1 ('d') truncated"),
    (b"/a\x00\x00,s\x00\x00", "argument 1 ('s') has no NUL terminator"),
    (b"/a\x00\x00,s\x00\x00\xc3\x28\x00\x00", "argument 1 ('s') is not valid UTF-8"),
    (b"/a\x00\x00,b\x00\x00" + struct.pack(">i", -4), "size -4 does not fit"),
    (b"/a\x00\x00,b\x00\x00" + struct.pack(">i", 2**31 - 1), "does not fit"),
    (b"/a\x00\x00,i\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", "4 bytes after the last"),
    (b"#bundle\x00\x00\x00\x00\x00", "time tag truncated"),
    (_bundle_with_size(-8, bytes(8)), "element size -8"),
    (_bundle_with_size(0), "element size 0"),
    (_bundle_with_size(6, bytes(8)), "element size 6"),
    (_bundle_with_size(2**31 - 4, bytes(8)), "element size 2147483644"),
    (_bundle_with_size(4, b"vad\x00"), "'vad' does not start with '/'"),
]


@pytest.mark.parametrize(("packet", "reason"), MALFORMED)
def test_malformed_packets_raise_with_a_reason(packet: bytes, reason: str) -> None:
    with pytest.raises(OscDecodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_packet(packet)


def test_decode_error_carries_its_reason() -> None:
    with pytest.raises(OscDecodeError) as caught:
        decode_packet(b"")
    assert caught.value.reason == "empty packet"


# --- every OSC 1.0 / 1.1 type tag, from golden bytes built by hand ------------------------------

_A = b"/a\x00\x00"

GOLDEN = [
    (b",S\x00\x00" b"hi\x00\x00", ("hi",)),  # symbol: a string, as liblo's `oscsend ... S`
    (b",c\x00\x00" b"\x00\x00\x00a", (OscChar(97),)),
    (b",r\x00\x00" b"\x01\x02\x03\x04", (OscRgba(1, 2, 3, 4),)),
    (b",m\x00\x00" b"\x00\x90\x3c\x7f", (OscMidi(0, 0x90, 60, 127),)),
    (b",t\x00\x00" b"\x00\x00\x00\x01\x80\x00\x00\x00", (OscTimeTag(1, 2**31),)),
    (b",I\x00\x00", (INFINITUM,)),
    (b",h\x00\x00" + struct.pack(">q", -(2**40)), (-(2**40),)),
    (b",d\x00\x00" + struct.pack(">d", 0.1), (0.1,)),
    (b",[if]\x00\x00\x00" + struct.pack(">if", 1, 0.5), ((1, 0.5),)),
    (b",[[i]s]\x00" + struct.pack(">i", 7) + b"x\x00\x00\x00", (((7,), "x"),)),
    (b",[]I\x00\x00\x00\x00", ((), INFINITUM)),
    (b",cIf\x00\x00\x00\x00\x00\x00\x00b" + struct.pack(">f", 2.0), (OscChar(98), INFINITUM, 2.0)),
]


_TAGS = [tail.split(b"\x00")[0].decode() for tail, _ in GOLDEN]


@pytest.mark.parametrize(("tail", "args"), GOLDEN, ids=_TAGS)
def test_every_osc_type_tag_decodes_from_golden_bytes(tail: bytes, args: tuple[Any, ...]) -> None:
    assert decode_packet(_A + tail) == [("/a", args)]


def test_python_osc_rgba_midi_and_arrays_decode_to_the_same_values() -> None:
    packet = python_osc("/a", ("r", 0x01020304), ("m", (0, 0x90, 60, 127)), (["i", "f"], [1, 0.5]))
    assert decode_packet(packet) == [
        ("/a", (OscRgba(1, 2, 3, 4), OscMidi(0, 0x90, 60, 127), (1, 0.5)))
    ]


@pytest.mark.parametrize(
    ("typetags", "reason"),
    [(b",]\x00\x00", "closes no array"), (b",[i\x00" + bytes(4), "are not closed")],
)
def test_unbalanced_arrays_are_decode_errors(typetags: bytes, reason: str) -> None:
    with pytest.raises(OscDecodeError, match=reason):
        decode_packet(_A + typetags)


def test_a_bad_message_in_a_bundle_leaves_its_neighbours_decoded() -> None:
    unknown = _A + b",xf\x00" + struct.pack(">f", 1.0)  # 'x': not OSC, size unknown
    truncated = _A + b",t\x00\x00" + bytes(4)
    vad = encode_message("/vad", "fff", [0.5, 0.0, 0.0])
    items = decode_datagram(encode_bundle([unknown, vad, truncated, vad]))
    assert [type(item) for item in items] == [OscDecodeError, tuple, OscDecodeError, tuple]
    assert items[1] == items[3] == ("/vad", (0.5, 0.0, 0.0))
    assert "unknown type tag 'x'" in items[0].reason  # type: ignore[union-attr]
    with pytest.raises(OscDecodeError, match="unknown type tag 'x'"):
        decode_packet(encode_bundle([unknown, vad]))


def test_a_broken_bundle_structure_still_fails_the_whole_datagram() -> None:
    vad = encode_message("/vad", "fff", [0.5, 0.0, 0.0])
    with pytest.raises(OscDecodeError, match="element size"):
        decode_datagram(encode_bundle([vad]) + struct.pack(">i", 64) + bytes(4))


def test_decode_errors_show_the_address_escaped_and_cut() -> None:
    address = "/a\n2026-01-01 ERROR vadbridge: forged" + "x" * 200
    packet = encode_message(address, "", [])[:-4] + b",x\x00\x00"
    (error,) = decode_datagram(packet)
    assert isinstance(error, OscDecodeError)
    assert "\n" not in error.reason and "\\n2026" in error.reason
    assert "…" in error.reason and len(error.reason) < 140


# --- properties -------------------------------------------------------------------------------

_OSC_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
_ADDRESS = st.text(_OSC_CHARS, max_size=12).map(lambda text: "/" + text)
_ARGUMENT = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: ("i", v)),
    st.floats(width=32).map(lambda v: ("f", v)),
    st.floats().map(lambda v: ("d", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: ("h", v)),
    st.text(_OSC_CHARS, max_size=9).map(lambda v: ("s", v)),
    st.binary(max_size=9).map(lambda v: ("b", v)),
    st.sampled_from([("T", True), ("F", False), ("N", None)]),
)
_MESSAGE = st.tuples(_ADDRESS, st.lists(_ARGUMENT, max_size=6)).map(
    lambda item: encode_message(item[0], "".join(t for t, _ in item[1]), [v for _, v in item[1]])
)
_PACKET = st.recursive(
    _MESSAGE, lambda inner: st.lists(inner, max_size=4).map(encode_bundle), max_leaves=8
)


def _same(left: tuple[Any, ...], right: tuple[Any, ...]) -> bool:
    return all(
        (isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b))
        or a == b
        for a, b in zip(left, right, strict=True)
    )


@FUZZ
@given(st.tuples(_ADDRESS, st.lists(_ARGUMENT, max_size=6)))
def test_encode_then_decode_round_trips(item: tuple[str, list[tuple[str, Any]]]) -> None:
    address, typed = item
    packet = encode_message(address, "".join(t for t, _ in typed), [v for _, v in typed])
    ((decoded_address, args),) = decode_packet(packet)
    assert decoded_address == address
    assert _same(args, tuple(v for _, v in typed))


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_decode_errors(data: bytes) -> None:
    try:
        result = decode_packet(data)
    except OscDecodeError as error:
        assert error.reason
    else:
        assert all(address.startswith("/") for address, _ in result)


@FUZZ
@given(_PACKET, st.data())
def test_mutated_valid_packets_only_ever_raise_decode_errors(packet: bytes, data: Any) -> None:
    mutated = bytearray(packet)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
        position = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if action == "flip" and mutated:
            mutated[position] = data.draw(st.integers(0, 255))
        elif action == "truncate":
            del mutated[position:]
        else:
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        result = decode_packet(bytes(mutated))
    except OscDecodeError as error:
        assert error.reason
    else:
        assert all(address.startswith("/") for address, _ in result)


@FUZZ
@given(_PACKET)
def test_valid_packets_decode_without_error(packet: bytes) -> None:
    for address, args in decode_packet(packet, max_depth=64):
        assert address.startswith("/")
        assert isinstance(args, tuple)
