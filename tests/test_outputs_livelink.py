"""Live Link Face encoder: checked with the independent decoder in tests/livelink_decoder.py."""

from __future__ import annotations

import numpy as np
import pytest
from livelink_decoder import VALUE_NAMES, decode_livelink

from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.outputs import LIVE_LINK_NAMES, LiveLinkEncoder

HEAD_AND_EYES = VALUE_NAMES[52:]


def distinct_weights() -> np.ndarray:
    # Every value different, so a misplaced one cannot go unnoticed.
    return (np.arange(1, 53, dtype=np.float32) / 64).astype(np.float32)


def test_values_land_under_their_names_not_their_model_index() -> None:
    weights = distinct_weights()
    packet = bytes(LiveLinkEncoder().encode(Frame(weights, 7, 0.1))[0])
    frame = decode_livelink(packet)
    for index, name in enumerate(ARKIT_NAMES):
        assert frame.values[name[0].upper() + name[1:]] == weights[index], name


def test_packet_order_starts_with_eye_blink_left_not_the_model_order() -> None:
    weights = distinct_weights()
    frame = decode_livelink(bytes(LiveLinkEncoder().encode(Frame(weights, 0, 0.0))[0]))
    first_value = next(iter(frame.values.values()))
    assert first_value == weights[ARKIT_NAMES.index("eyeBlinkLeft")]
    assert first_value != weights[0]


def test_head_and_eye_rotations_are_zero() -> None:
    ones = Frame(np.ones(52, np.float32), 0, 0.0)
    frame = decode_livelink(bytes(LiveLinkEncoder().encode(ones)[0]))
    assert [frame.values[name] for name in HEAD_AND_EYES] == [0.0] * 9


def test_header_fields() -> None:
    encoder = LiveLinkEncoder(subject="iPhoneXFaceAR", device_id="bridge-01", fps=30)
    frame = decode_livelink(bytes(encoder.encode(Frame(np.zeros(52, np.float32), 1234, 20.5))[0]))
    assert frame.version == 6
    assert frame.device_id == "bridge-01"
    assert frame.subject == "iPhoneXFaceAR"
    assert frame.frame_number == 1234
    assert frame.subframe == 0.0
    assert frame.rate == (30, 1)


@pytest.mark.parametrize(("subject", "device_id"), [("vadbridge", "vadbridge"), ("a", "ü€")])
def test_size_is_270_plus_utf8_name_lengths(subject: str, device_id: str) -> None:
    encoder = LiveLinkEncoder(subject=subject, device_id=device_id)
    expected = 270 + len(subject.encode()) + len(device_id.encode())
    assert len(encoder.encode(Frame(np.zeros(52, np.float32), 0, 0.0))[0]) == expected
    assert encoder.datagram_sizes == (expected,)


def test_non_ascii_subject_is_length_prefixed_in_bytes() -> None:
    frame = decode_livelink(
        bytes(LiveLinkEncoder(subject="größe").encode(Frame(np.zeros(52, np.float32), 0, 0.0))[0])
    )
    assert frame.subject == "größe"


def test_frame_number_changes_per_frame_and_wraps_non_negative() -> None:
    encoder = LiveLinkEncoder()
    zeros = np.zeros(52, np.float32)
    assert decode_livelink(bytes(encoder.encode(Frame(zeros, 5, 0.0))[0])).frame_number == 5
    assert decode_livelink(bytes(encoder.encode(Frame(zeros, 6, 0.0))[0])).frame_number == 6
    assert decode_livelink(bytes(encoder.encode(Frame(zeros, 2**31 + 3, 0.0))[0])).frame_number == 3


def test_names_tuple_matches_the_independent_list() -> None:
    assert list(LIVE_LINK_NAMES) == VALUE_NAMES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": ""}, "subject must be a non-empty string"),
        ({"device_id": ""}, "device_id must be a non-empty string"),
        ({"subject": "x" * 256}, "subject is 256 UTF-8 bytes"),
        ({"device_id": "é" * 128}, "device_id is 256 UTF-8 bytes"),
        ({"fps": 0}, "fps must be a positive integer"),
        ({"fps": 60.0}, "fps must be a positive integer"),
        ({"fps": True}, "fps must be a positive integer"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LiveLinkEncoder(**kwargs)  # type: ignore[arg-type]


def test_longest_allowed_names_are_accepted() -> None:
    encoder = LiveLinkEncoder(subject="s" * 255, device_id="d" * 255)
    frame = decode_livelink(bytes(encoder.encode(Frame(np.zeros(52, np.float32), 0, 0.0))[0]))
    assert (frame.subject, frame.device_id) == ("s" * 255, "d" * 255)


def test_wrong_weight_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"shape \(52,\)"):
        LiveLinkEncoder().encode(Frame(np.zeros(51, np.float32), 0, 0.0))
