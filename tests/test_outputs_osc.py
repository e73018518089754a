"""Generic OSC encoder: golden bytes against python-osc's builders."""

from __future__ import annotations

import numpy as np
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from vadbridge.core.osc_codec import decode_packet
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.outputs import OscEncoder


def weights() -> np.ndarray:
    values = np.random.default_rng(11).random(52, dtype=np.float32)
    values[0] = 0.0
    values[51] = 1.0
    return values


def per_shape_reference(values: np.ndarray, prefix: str, names: list[str]) -> bytes:
    bundle = OscBundleBuilder(IMMEDIATELY)
    for name, value in zip(names, values, strict=True):
        builder = OscMessageBuilder(address=f"{prefix}/{name}")
        builder.add_arg(float(value), "f")
        bundle.add_content(builder.build())
    return bundle.build().dgram


def array_reference(values: np.ndarray, prefix: str) -> bytes:
    builder = OscMessageBuilder(address=prefix)
    for value in values:
        builder.add_arg(float(value), "f")
    return builder.build().dgram


def test_per_shape_is_one_bundle_identical_to_python_osc() -> None:
    values = weights()
    sent = [bytes(d) for d in OscEncoder().encode(Frame(values, 0, 0.0))]
    assert sent == [per_shape_reference(values, "/blendshape", list(ARKIT_NAMES))]


def test_per_shape_with_perfect_sync_names_and_a_nested_prefix() -> None:
    values = weights()
    encoder = OscEncoder(prefix="/avatar/face", naming="perfect_sync")
    sent = [bytes(d) for d in encoder.encode(Frame(values, 0, 0.0))]
    upper = [name[0].upper() + name[1:] for name in ARKIT_NAMES]
    assert sent == [per_shape_reference(values, "/avatar/face", upper)]
    assert decode_packet(sent[0])[2][0] == "/avatar/face/BrowInnerUp"


def test_array_is_one_message_with_52_floats_identical_to_python_osc() -> None:
    values = weights()
    sent = [bytes(d) for d in OscEncoder(mode="array", prefix="/bs").encode(Frame(values, 0, 0.0))]
    assert sent == [array_reference(values, "/bs")]
    assert decode_packet(sent[0]) == [("/bs", tuple(values.tolist()))]


def test_array_size_is_address_type_tags_and_52_floats() -> None:
    encoder = OscEncoder(mode="array", prefix="/blendshape")
    # "/blendshape" pads to 12 bytes, "," + 52 "f" pads to 56, then 52 floats of 4 bytes.
    assert encoder.datagram_sizes == (12 + 56 + 208,)


def test_every_frame_overwrites_the_previous_values() -> None:
    encoder = OscEncoder()
    encoder.encode(Frame(np.ones(52, np.float32), 0, 0.0))
    values = weights()
    assert bytes(encoder.encode(Frame(values, 1, 0.0))[0]) == per_shape_reference(
        values, "/blendshape", list(ARKIT_NAMES)
    )


@pytest.mark.parametrize(
    "prefix", ["", "blendshape", "/", "/blendshape/", "/a//b", "/with space", "/x*", "/a#b"]
)
def test_invalid_prefix_is_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="OSC prefix must look like"):
        OscEncoder(prefix=prefix)


def test_unknown_mode_and_naming_are_rejected() -> None:
    with pytest.raises(ValueError, match="mode must be 'per_shape' or 'array'"):
        OscEncoder(mode="vector")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naming must be"):
        OscEncoder(naming="ARKit")  # type: ignore[arg-type]


def test_wrong_weight_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"shape \(52,\)"):
        OscEncoder(mode="array").encode(Frame(np.zeros(53, np.float32), 0, 0.0))
