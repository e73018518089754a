"""The control panel's pure message parsing (issue 15): a page's text frame -> a JSON object, and
its inputs -> the same validated, clipped samples OSC and MQTT give, with ``web.*`` kinds."""

from __future__ import annotations

import json

import pytest

from vadbridge.core.types import InputError, VadSample
from vadbridge.inputs import decode_message, input_avatar, parse_web_input
from vadbridge.inputs.parse_web import MAX_DEPTH
from vadbridge.model.emotions import emotion_to_vad

MAX_CHARS = 4096


def web(message: dict[str, object]) -> tuple[VadSample, bool]:
    return tuple(parse_web_input(decode_message(json.dumps(message), MAX_CHARS)))  # type: ignore[return-value]


def emotion(spec: str, intensity: float = 1.0) -> tuple[float, float, float]:
    v, a, d = emotion_to_vad(spec, intensity)
    return (float(v), float(a), float(d))


ACCEPTED = [
    ({"type": "vad", "valence": 0.5, "arousal": -0.25}, "default", (0.5, -0.25, None), False),
    ({"type": "vad", "dominance": 1}, "default", (None, None, 1.0), False),
    ({"type": "vad", "valence": 3, "arousal": None, "dominance": -2}, "default",
     (1.0, None, -1.0), True),
    ({"type": "vad", "avatar": "npc-1", "valence": 0.1, "arousal": 0.2, "dominance": 0.3},
     "npc-1", (0.1, 0.2, 0.3), False),
    ({"type": "emotion", "emotion": "happiness"}, "default", emotion("happiness"), False),
    ({"type": "emotion", "emotion": "Happiness", "intensity": 0.5}, "default",
     emotion("happiness", 0.5), False),
    ({"type": "emotion", "emotion": "joy:0.7+fear:0.3", "intensity": 1}, "default",
     emotion("joy:0.7+fear:0.3"), False),
]  # fmt: skip


@pytest.mark.parametrize(("message", "avatar", "vad", "clipped"), ACCEPTED)
def test_the_pages_inputs_become_the_same_samples_as_osc_and_mqtt(
    message: dict[str, object], avatar: str, vad: tuple[float | None, ...], clipped: bool
) -> None:
    sample, was_clipped = web(message)
    assert sample.avatar == avatar
    assert sample.vad == pytest.approx(vad)
    assert was_clipped is clipped


REJECTED_FRAMES = {  # a text frame: (its kind, words of its reason)
    "{not json": ("web.json", "not JSON"),
    '{"type": "vad", "valence": NaN}': ("web.json", "NaN is not JSON"),
    '{"type": "vad", "valence": Infinity}': ("web.json", "Infinity is not JSON"),
    "[1, 2]": ("web.shape", "expected a JSON object, got list"),
    '"vad"': ("web.shape", "expected a JSON object, got str"),
    '{"valence": 1}': ("web.shape", "expected a string 'type', got None"),
    '{"type": 7}': ("web.shape", "expected a string 'type', got 7"),
    '{"type": "tune", "a": {"b": {"c": {"d": 1}}}}': ("web.depth", f"deeper than {MAX_DEPTH}"),
    '{"type": "tune", "a": [[[1]]]}': ("web.depth", f"deeper than {MAX_DEPTH}"),
    '{"type": "x", "a": ' + "[" * 5000 + "]" * 5000 + "}": ("web.depth", "deeper"),
    "x" * (MAX_CHARS + 1): ("oversize", f"{MAX_CHARS + 1} characters > {MAX_CHARS}"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), REJECTED_FRAMES.items())
def test_a_frame_that_is_not_a_message_is_rejected_with_its_kind(
    text: str, expected: tuple[str, str]
) -> None:
    kind, reason = expected
    with pytest.raises(InputError) as caught:
        decode_message(text, MAX_CHARS if kind == "oversize" else 100_000)
    assert caught.value.kind == kind
    assert reason in caught.value.reason


REJECTED_INPUTS = [
    ({"type": "vad"}, "web.shape", "needs valence, arousal or dominance"),
    ({"type": "vad", "valence": "high"}, "web.shape", "valence must be a number, got str 'high'"),
    ({"type": "vad", "valence": True}, "web.shape", "must be a number"),
    ({"type": "vad", "valence": 0.1, "colour": 1}, "web.shape", "unknown key 'colour'"),
    ({"type": "vad", "avatar": "no spaces", "valence": 0}, "web.avatar", "invalid avatar id"),
    ({"type": "vad", "avatar": 5, "valence": 0}, "web.shape", "'avatar' must be a string"),
    ({"type": "emotion", "emotion": "glee-ish"}, "emotion.unknown", "unknown emotion"),
    ({"type": "emotion", "emotion": ""}, "web.shape", "'emotion' must be a name or a mix"),
    ({"type": "emotion", "emotion": ["joy"]}, "web.shape", "'emotion' must be a name or a mix"),
    ({"type": "emotion", "emotion": "joy", "intensity": 2}, "emotion.invalid", "in [0, 1]"),
    ({"type": "emotion", "emotion": "+".join(["joy"] * 65)}, "emotion.invalid", "65 terms"),
    ({"type": "dance"}, "web.unknown", "not an input message type: 'dance'"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "kind", "reason"), REJECTED_INPUTS)
def test_a_bad_input_is_rejected_with_the_kind_other_sources_use(
    message: dict[str, object], kind: str, reason: str
) -> None:
    with pytest.raises(InputError) as caught:
        web(message)
    assert caught.value.kind == kind
    assert reason in caught.value.reason


def test_the_avatar_is_read_before_anything_else_of_an_input() -> None:
    """The panel asks the avatar table first (as OSC and MQTT do), so this must not parse."""
    assert input_avatar({"type": "vad", "valence": "not even looked at"}) == "default"
    assert input_avatar({"type": "emotion", "avatar": "npc-2"}) == "npc-2"


def test_a_rejection_reason_shows_input_escaped_and_short() -> None:
    with pytest.raises(InputError) as caught:
        web({"type": "vad", "valence": "\n" + "x" * 500})
    assert "\n" not in caught.value.reason
    assert len(caught.value.reason) < 150
