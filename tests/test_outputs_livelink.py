"""Live Link Face encoder: checked with the independent decoder in tests/livelink_decoder.py."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
from livelink_decoder import VALUE_NAMES, decode_like_pylivelinkface, decode_livelink

from vadbridge.config import LiveLinkOutputConfig
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, upper_camel
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
    encoder = LiveLinkEncoder(
        subject="iPhoneXFaceAR", device_id="bridge-01", fps=30, time_of_day=lambda: 3600.0
    )
    frame = decode_livelink(bytes(encoder.encode(Frame(np.zeros(52, np.float32), 1234, 20.5))[0]))
    assert frame.version == 6
    assert frame.device_id == "bridge-01"
    assert frame.subject == "iPhoneXFaceAR"
    assert frame.frame_number == 3600 * 30  # 01:00:00:00 at 30 fps, not the loop's frame 1234
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


def _timecode(encoder: LiveLinkEncoder, time_s: float) -> tuple[int, float]:
    frame = decode_livelink(bytes(encoder.encode(Frame(np.zeros(52, np.float32), 0, time_s))[0]))
    return frame.frame_number, frame.subframe


def test_frame_number_is_the_time_of_day_in_frames_with_a_subframe_like_the_app() -> None:
    # First frame at 12:27:47 + 0.25 frame, anchored there; later frames advance by time_s.
    encoder = LiveLinkEncoder(fps=60, time_of_day=lambda: 44867.0 + 0.25 / 60)
    start = 44867 * 60
    assert _timecode(encoder, 10.0) == (start, pytest.approx(0.25, abs=1e-4))
    assert _timecode(encoder, 10.0 + 1 / 60) == (start + 1, pytest.approx(0.25, abs=1e-4))
    assert _timecode(encoder, 11.5) == (start + 90, pytest.approx(0.25, abs=1e-4))


def test_the_wall_clock_is_read_once_at_the_first_frame() -> None:
    readings = iter([100.0, 5000.0])
    encoder = LiveLinkEncoder(fps=30, time_of_day=lambda: next(readings))
    assert _timecode(encoder, 2.0)[0] == 3000
    assert _timecode(encoder, 3.0)[0] == 3030  # 100 s + 1 s, not the later reading


def test_the_frame_number_wraps_at_midnight() -> None:
    encoder = LiveLinkEncoder(fps=60, time_of_day=lambda: 86399.5)
    assert _timecode(encoder, 0.0)[0] == 86399 * 60 + 30
    assert _timecode(encoder, 1.0)[0] == 30


def test_a_subframe_just_below_a_whole_frame_carries_instead_of_reading_one() -> None:
    encoder = LiveLinkEncoder(fps=60, time_of_day=lambda: (1000 - 1e-12) / 60)
    number, subframe = _timecode(encoder, 0.0)
    assert (number, subframe) == (1000, 0.0)


def test_the_default_device_id_is_an_upper_case_uuid_derived_from_the_subject() -> None:
    first = LiveLinkEncoder(subject="iPhoneXFaceAR").device_id
    parsed = uuid.UUID(first)
    assert (len(first), first, parsed.version) == (36, str(parsed).upper(), 5)
    assert LiveLinkEncoder(subject="iPhoneXFaceAR").device_id == first  # stable per config
    assert LiveLinkEncoder(subject="npc-2").device_id != first
    assert first == LiveLinkOutputConfig(subject="iPhoneXFaceAR").device_id  # one rule


def test_pylivelinkface_reads_the_default_packet_with_its_names_and_values() -> None:
    """PyLiveLinkFace (JimWest/PyLiveLinkFace, ``PyLiveLinkFace.decode``) and the decoders
    copied from it read a fixed 36-byte device id; tests/livelink_decoder.py's
    ``decode_like_pylivelinkface`` follows its offsets. With the old 9-byte default
    ("vadbridge") it failed with UnicodeDecodeError."""
    weights = distinct_weights()
    config = LiveLinkOutputConfig()  # the defaults, built as the daemon's wiring builds them
    encoder = LiveLinkEncoder(subject=config.subject, device_id=config.device_id, fps=60)
    seen = decode_like_pylivelinkface(bytes(encoder.encode(Frame(weights, 3, 1.0))[0]))
    assert seen.version == 6
    assert seen.uuid == "$" + config.device_id  # the length's low byte, 36 = "$", then the id
    assert seen.name == config.subject
    assert (seen.fps, seen.denominator) == (60, 1)
    assert 0 <= seen.frame_number < 86400 * 60 and 0.0 <= seen.sub_frame < 1.0
    assert not any(math.isnan(v) for v in seen.blend_shapes)
    # PyLiveLinkFace's FaceBlendShape enum is the packet order: index i is VALUE_NAMES[i].
    by_name = dict(zip(VALUE_NAMES, seen.blend_shapes, strict=True))
    for index, name in enumerate(ARKIT_NAMES):
        assert by_name[name[0].upper() + name[1:]] == weights[index], name
    assert [by_name[name] for name in HEAD_AND_EYES] == [0.0] * 9


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


def test_the_real_pylivelinkface_decoder_reads_the_default_packet() -> None:
    """PyLiveLinkFace 0.1 (PyPI) reads a fixed-length device id (its ``decode``: bytes 4..41)
    and the 61 big-endian floats in Apple's order: the default packet must decode with the
    right subject and every shape's value (float32 written and read verbatim)."""
    from pylivelinkface import FaceBlendShape, PyLiveLinkFace

    weights = np.linspace(0.0, 1.0, 52, dtype=np.float32)
    encoder = LiveLinkEncoder(subject="face", fps=60,
                              device_id=LiveLinkOutputConfig.default_device_id("face"))
    found, face = PyLiveLinkFace.decode(bytes(encoder.encode(Frame(weights, 1, 0.5))[0]))
    assert found and face.name == "face"
    for index, name in enumerate(ARKIT_NAMES):
        shape = FaceBlendShape[upper_camel(name)]
        assert face.get_blendshape(shape) == float(weights[index]), name
