"""The pure input parsers (issue 4, "Inputs"): every accepted form, every rejection kind with its
reason; and the InputStats bookkeeping the sources feed."""

from __future__ import annotations

import json
import logging
import math

import pytest

from vadbridge.core.stats import InputStats
from vadbridge.core.types import InputError, VadSample
from vadbridge.inputs import values
from vadbridge.inputs.parse import MAX_MIX_LABELS, Parsed, parse_mqtt, parse_osc_message
from vadbridge.inputs.values import MAX_MIX_CHARS, check_mix_size
from vadbridge.model.emotions import emotion_to_vad, known_emotion_names, mix_to_vad

MAX_BYTES = 4096


def emotion(spec: str, intensity: float = 1.0) -> tuple[float, float, float]:
    v, a, d = emotion_to_vad(spec, intensity)
    return (float(v), float(a), float(d))


def mix(weights: dict[str, float]) -> tuple[float, float, float]:
    v, a, d = mix_to_vad(weights)
    return (float(v), float(a), float(d))


def mqtt(
    topic: str, payload: bytes, max_bytes: int = MAX_BYTES, prefix: str = "vadbridge"
) -> Parsed:
    return parse_mqtt(topic, payload, topic_prefix=prefix, max_payload_bytes=max_bytes)


# --- OSC: accepted ------------------------------------------------------------------------------

OSC_ACCEPTED = [
    ("/vad", (0.1, 0.2, 0.3), "default", (0.1, 0.2, 0.3), False),
    ("/vad", (1, 0, -1), "default", (1.0, 0.0, -1.0), False),  # 'i' (and 'h') ints
    ("/vad", (2.5, -7, 0.5), "default", (1.0, -1.0, 0.5), True),  # out of range: clipped
    ("/vad/valence", (0.5,), "default", (0.5, None, None), False),
    ("/vad/arousal", (-0.25,), "default", (None, -0.25, None), False),
    ("/vad/dominance", (3,), "default", (None, None, 1.0), True),
    ("/emotion", ("happiness",), "default", emotion("happiness"), False),
    ("/emotion", ("Happiness", 0.5), "default", emotion("happiness", 0.5), False),
    ("/emotion", ("happiness+surprise",), "default", emotion("happiness+surprise"), False),
    ("/emotion", ("happiness:0.7+surprise:0.3", 1), "default",
     emotion("happiness:0.7+surprise:0.3"), False),
    ("/avatar/npc-1/vad", (0.1, 0.2, 0.3), "npc-1", (0.1, 0.2, 0.3), False),
    ("/avatar/a.b_C-9/vad/arousal", (0.75,), "a.b_C-9", (None, 0.75, None), False),
    ("/avatar/default/emotion", ("joy", 0.25), "default", emotion("joy", 0.25), False),
    ("/avatar/" + "x" * 64 + "/vad/valence", (0,), "x" * 64, (0.0, None, None), False),
]  # fmt: skip


@pytest.mark.parametrize(("address", "args", "avatar", "vad", "clipped"), OSC_ACCEPTED)
def test_osc_accepted_forms(
    address: str,
    args: tuple[object, ...],
    avatar: str,
    vad: tuple[float | None, ...],
    clipped: bool,
) -> None:
    assert parse_osc_message(address, args) == Parsed(VadSample(avatar, vad), clipped)  # type: ignore[arg-type]


def test_osc_emotion_uses_the_model_card_values() -> None:
    sample, clipped = parse_osc_message("/emotion", ("happiness",))
    assert sample.vad == pytest.approx((0.8, 0.6, 0.5), abs=1e-6)
    assert not clipped


def test_osc_sample_values_are_python_floats() -> None:
    sample, _ = parse_osc_message("/emotion", ("sadness",))
    assert all(type(x) is float for x in sample.vad)


# --- OSC: rejected ------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf

OSC_REJECTED = [
    ("/vad", (0.1, 0.2), "osc.arity", "3 floats"),
    ("/vad", (0.1, 0.2, 0.3, 0.4), "osc.arity", "got 4"),
    ("/vad/valence", (), "osc.arity", "1 float"),
    ("/vad/dominance", (0.1, 0.2), "osc.arity", "got 2"),
    ("/emotion", (), "osc.arity", "optional intensity"),
    ("/emotion", ("joy", 1.0, 2.0), "osc.arity", "got 3"),
    ("/vad", (True, 0.0, 0.0), "osc.type", "valence must be a number, got bool"),
    ("/vad", (0.0, "0.5", 0.0), "osc.type", "arousal must be a number, got str"),
    ("/vad", (0.0, 0.0, b"\x00"), "osc.type", "dominance must be a number, got bytes"),
    ("/vad/arousal", (None,), "osc.type", "got NoneType"),
    ("/emotion", (1.0,), "osc.type", "name must be a string, got float"),
    ("/emotion", ("joy", "high"), "osc.type", "intensity must be a number, got str"),
    ("/emotion", ("joy", False), "osc.type", "got bool"),
    ("/vad", (NAN, 0.0, 0.0), "nonfinite", "valence is nan"),
    ("/vad", (0.0, INF, 0.0), "nonfinite", "arousal is inf"),
    ("/vad/dominance", (-INF,), "nonfinite", "-inf"),
    ("/emotion", ("joy", NAN), "nonfinite", "intensity is nan"),
    ("/emotion", ("glee",), "emotion.unknown", "'glee'"),
    ("/emotion", ("joy+glee",), "emotion.unknown", "'glee'"),
    ("/emotion", ("joy", 1.5), "emotion.invalid", "intensity"),
    ("/emotion", ("joy", -0.5), "emotion.invalid", "intensity"),
    ("/emotion", ("joy", 5), "emotion.invalid", "intensity must be in [0, 1], got 5"),
    ("/emotion", ("joy", -2**31), "emotion.invalid", "got -2147483648"),
    ("/emotion", ("",), "emotion.invalid", "empty"),
    ("/emotion", ("joy:x",), "emotion.invalid", "not a number"),
    ("/emotion", ("joy:0+sadness:0",), "emotion.invalid", "sum"),
    ("/vadx", (0.0, 0.0, 0.0), "osc.address", "'/vadx'"),
    ("/VAD", (0.0, 0.0, 0.0), "osc.address", "'/VAD'"),
    ("/", (), "osc.address", "unknown address"),
    ("/avatar/a/blend", (0.0,), "osc.address", "'/avatar/a/blend'"),
    ("/avatar/a/b/vad", (0.0, 0.0, 0.0), "osc.address", "unknown address"),
    ("/avatar/a", (0.0, 0.0, 0.0), "osc.address", "unknown address"),
    ("/avatar//vad", (0.0, 0.0, 0.0), "osc.address", "invalid avatar id ''"),
    ("/avatar/bad id/vad", (0.0, 0.0, 0.0), "osc.address", "invalid avatar id 'bad id'"),
    ("/avatar/" + "x" * 65 + "/vad", (0.0, 0.0, 0.0), "osc.address", "1-64"),
]  # fmt: skip


@pytest.mark.parametrize(("address", "args", "kind", "reason"), OSC_REJECTED)
def test_osc_rejections_name_kind_and_reason(
    address: str, args: tuple[object, ...], kind: str, reason: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_osc_message(address, args)
    assert caught.value.kind == kind
    assert reason in caught.value.reason


@pytest.mark.parametrize("name", known_emotion_names())
def test_every_known_emotion_name_is_accepted_in_any_spelling(name: str) -> None:
    # The parser screens names itself (cheap rejection); it must never refuse a name that
    # model.emotions accepts.
    for spelling in (name, name.upper(), f"  {name.replace('_', ' ')} ", name.replace("_", "-")):
        sample, _ = parse_osc_message("/emotion", (spelling,))
        assert sample.vad == emotion(name)
        sample, _ = mqtt(
            "vadbridge/a/emotion", json.dumps([{"label": spelling, "score": 1}]).encode()
        )
        assert sample.vad == emotion(name)


def test_a_long_unknown_name_is_rejected_with_a_short_reason() -> None:
    with pytest.raises(InputError) as caught:
        mqtt("vadbridge/a/emotion", json.dumps([{"label": "q" * 3000, "score": 1}]).encode())
    assert caught.value.kind == "emotion.unknown"
    assert len(caught.value.reason) < 200


# --- text mixes: capped before any per-term work ----------------------------------------------


def _no_term_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any per-term lookup fail the test: an over-cap mix must never reach them."""

    def forbidden(*_args: object) -> None:
        raise AssertionError("an over-cap mix reached the per-term parser")

    monkeypatch.setattr(values, "check_known", forbidden)
    monkeypatch.setattr(values, "emotion_to_vad", forbidden)


HUGE_MIX = "+".join(["joy"] * 16_384)[: 64 * 1024]  # 64 KB of joy+joy+...


@pytest.mark.parametrize("deliver", ["osc", "mqtt text", "mqtt json"])
def test_a_64_kb_text_mix_is_rejected_by_its_length_alone(
    deliver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_term_work(monkeypatch)
    with pytest.raises(InputError) as caught:
        if deliver == "osc":
            parse_osc_message("/emotion", (HUGE_MIX,))
        elif deliver == "mqtt text":
            mqtt("vadbridge/a/emotion", HUGE_MIX.encode(), max_bytes=128 * 1024)
        else:
            payload = json.dumps({"emotion": HUGE_MIX}).encode()
            mqtt("vadbridge/a/emotion", payload, max_bytes=128 * 1024)
    assert caught.value.kind == "emotion.invalid"
    assert caught.value.reason == (
        f"emotion name or mix of {len(HUGE_MIX)} characters; at most {MAX_MIX_CHARS} accepted"
    )


def test_a_text_mix_of_more_terms_than_a_label_list_is_rejected_by_counting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_term_work(monkeypatch)
    spec = "+".join(["joy"] * (MAX_MIX_LABELS + 1))
    assert len(spec) <= MAX_MIX_CHARS  # the term count, not the length, refuses it
    with pytest.raises(InputError) as caught:
        parse_osc_message("/emotion", (spec,))
    assert caught.value.kind == "emotion.invalid"
    assert caught.value.reason == (
        f"emotion mix of {MAX_MIX_LABELS + 1} terms; at most {MAX_MIX_LABELS} accepted"
    )
    with pytest.raises(InputError, match="terms; at most") as caught:
        check_mix_size("+" * 100)  # separators only: no term is ever looked at
    assert caught.value.kind == "emotion.invalid"


def test_a_text_mix_of_exactly_the_cap_is_accepted() -> None:
    spec = "+".join(["joy:0.5", "sadness:0.25"] * (MAX_MIX_LABELS // 2))
    sample, _ = mqtt("vadbridge/a/emotion", spec.encode())
    assert sample.vad == emotion("joy:0.5+sadness:0.25")


def test_osc_reason_for_a_huge_address_is_short() -> None:
    with pytest.raises(InputError) as caught:
        parse_osc_message("/" + "z" * 10_000, ())
    assert caught.value.kind == "osc.address"
    assert len(caught.value.reason) < 300


def test_repeated_unknown_emotion_raises_a_fresh_error_each_time() -> None:
    errors = []
    for _ in range(2):
        with pytest.raises(InputError) as caught:
            parse_osc_message("/emotion", ("glee",))
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].kind == errors[1].kind == "emotion.unknown"


# --- MQTT: accepted -----------------------------------------------------------------------------

JOY_SADNESS = [{"label": "joy", "score": 0.91}, {"label": "sadness", "score": 0.09}]

MQTT_ACCEPTED = [
    ("vadbridge/default/vad", b'{"valence": 0.1, "arousal": 0.2, "dominance": 0.3}',
     "default", (0.1, 0.2, 0.3), False),
    ("vadbridge/a/vad", b'{"v": -0.1, "a": 0, "d": 1}', "a", (-0.1, 0.0, 1.0), False),
    ("vadbridge/a/vad", b'{"arousal": 0.4}', "a", (None, 0.4, None), False),
    ("vadbridge/a/vad", b'{"v": 0.5, "d": -0.5}', "a", (0.5, None, -0.5), False),
    ("vadbridge/a/vad", b'{"valence": 3, "a": -1.5}', "a", (1.0, -1.0, None), True),
    ("vadbridge/a/vad", b"[0.1, 0.2, 0.3]", "a", (0.1, 0.2, 0.3), False),
    ("vadbridge/a/vad", b"[1, 0, -1]", "a", (1.0, 0.0, -1.0), False),
    ("vadbridge/a/vad", b"[1" + b"0" * 400 + b", 0, 0]", "a", (1.0, 0.0, 0.0), True),
    ("vadbridge/a/vad", b'{"d": -1' + b"0" * 400 + b"}", "a", (None, None, -1.0), True),
    ("vadbridge/a/vad", b"0.1 0.2 0.3", "a", (0.1, 0.2, 0.3), False),
    ("vadbridge/a/vad", b"0.1,0.2,0.3", "a", (0.1, 0.2, 0.3), False),
    ("vadbridge/a/vad", b" -0.5,\t0 ,  1e-1\n", "a", (-0.5, 0.0, 0.1), False),
    ("vadbridge/a/vad", b"2 0 0", "a", (1.0, 0.0, 0.0), True),
    ("vadbridge/a/emotion", b'{"emotion": "happiness", "intensity": 0.9}', "a",
     emotion("happiness", 0.9), False),
    ("vadbridge/a/emotion", b'{"emotion": "joy"}', "a", emotion("joy"), False),
    ("vadbridge/a/emotion", b'{"emotion": "happiness+surprise", "intensity": 1}', "a",
     emotion("happiness+surprise"), False),
    ("vadbridge/a/emotion", b"happiness", "a", emotion("happiness"), False),
    ("vadbridge/a/emotion", b" happiness+surprise\n", "a", emotion("happiness+surprise"), False),
    ("vadbridge/a/emotion", b"happiness:0.7+surprise:0.3", "a",
     emotion("happiness:0.7+surprise:0.3"), False),
    ("vadbridge/a/emotion", json.dumps(JOY_SADNESS).encode(), "a",
     mix({"joy": 0.91, "sadness": 0.09}), False),
    ("vadbridge/a/emotion", json.dumps([JOY_SADNESS]).encode(), "a",
     mix({"joy": 0.91, "sadness": 0.09}), False),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": 0.5}, {"label": "joy", "score": 0.5}]',
     "a", emotion("joy"), False),
    ("vadbridge/npc.7_x-y/vad", b"[0, 0, 0]", "npc.7_x-y", (0.0, 0.0, 0.0), False),
]  # fmt: skip


@pytest.mark.parametrize(("topic", "payload", "avatar", "vad", "clipped"), MQTT_ACCEPTED)
def test_mqtt_accepted_forms(
    topic: str, payload: bytes, avatar: str, vad: tuple[float | None, ...], clipped: bool
) -> None:
    assert mqtt(topic, payload) == Parsed(VadSample(avatar, vad), clipped)  # type: ignore[arg-type]


def test_mqtt_integer_scores_above_two_keep_their_weight() -> None:
    # Scores are weights (normalised by their sum), so 5 must count as 5, not as a clamped 2.
    payload = b'[{"label": "joy", "score": 5}, {"label": "sadness", "score": 1}]'
    sample, clipped = mqtt("vadbridge/a/emotion", payload)
    assert sample.vad == mix({"joy": 5.0, "sadness": 1.0})
    assert sample.vad != mix({"joy": 2.0, "sadness": 1.0})
    assert not clipped


@pytest.mark.parametrize("payload", [b"glee", b"joy:1+glee:1", b'[{"label": "glee", "score": 1}]'])
def test_unknown_emotion_reason_points_to_the_docs(payload: bytes) -> None:
    with pytest.raises(InputError) as caught:
        mqtt("vadbridge/a/emotion", payload)
    assert caught.value.kind == "emotion.unknown"
    assert caught.value.reason == (
        "unknown emotion 'glee' (`vadbridge infer --list-emotions` lists the known names)"
    )


def test_mqtt_classifier_mix_is_score_weighted() -> None:
    sample, _ = mqtt("vadbridge/a/emotion", json.dumps(JOY_SADNESS).encode())
    joy, sadness = emotion("joy"), emotion("sadness")
    expected = [0.91 * j + 0.09 * s for j, s in zip(joy, sadness, strict=True)]
    assert sample.vad == pytest.approx(expected, abs=1e-6)


def test_mqtt_prefix_may_have_several_levels() -> None:
    parsed = mqtt("studio/faces/alice/vad", b"0 0.5 0", prefix="studio/faces")
    assert parsed == Parsed(VadSample("alice", (0.0, 0.5, 0.0)), False)


def test_mqtt_payload_of_exactly_the_limit_is_accepted() -> None:
    payload = b"0.1 0.2 0.3".ljust(64, b" ")
    assert mqtt("vadbridge/a/vad", payload, max_bytes=64).sample.vad == (0.1, 0.2, 0.3)


# --- MQTT: rejected -----------------------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000
TOO_MANY_LABELS = json.dumps([{"label": "joy", "score": 0.1}] * (MAX_MIX_LABELS + 1)).encode()

MQTT_REJECTED = [
    # size, checked before anything is decoded
    ("vadbridge/a/vad", b"0" * (MAX_BYTES + 1), "oversize", "4097 bytes > 4096"),
    ("vadbridge/a/vad", b"\xff" * (MAX_BYTES + 1), "oversize", "4097 bytes"),
    # encoding and JSON syntax
    ("vadbridge/a/vad", b"\xff\xfe0 0 0", "mqtt.json", "not UTF-8"),
    ("vadbridge/a/emotion", b"joy\x80", "mqtt.json", "not UTF-8"),
    ("vadbridge/a/vad", b"{not json", "mqtt.json", "invalid JSON"),
    ("vadbridge/a/vad", b"[1, 2,", "mqtt.json", "invalid JSON"),
    ("vadbridge/a/vad", b'{"v": 0.1,}', "mqtt.json", "invalid JSON"),
    ("vadbridge/a/emotion", b'[{"label": "joy"', "mqtt.json", "invalid JSON"),
    # shapes and types
    ("vadbridge/a/vad", b"[1, 2]", "mqtt.shape", "expected [v, a, d], got 2 items"),
    ("vadbridge/a/vad", b"[1, 2, 3, 4]", "mqtt.shape", "got 4 items"),
    ("vadbridge/a/vad", b"[[0.1, 0.2, 0.3]]", "mqtt.shape", "got 1 items"),
    ("vadbridge/a/vad", b'[0.1, "0.2", 0.3]', "mqtt.shape", "arousal must be a number, got str"),
    ("vadbridge/a/vad", b'{"valence": "high"}', "mqtt.shape", "valence must be a number, got str"),
    ("vadbridge/a/vad", b'{"valence": true}', "mqtt.shape", "got bool"),
    ("vadbridge/a/vad", b'{"d": null}', "mqtt.shape", "got NoneType"),
    ("vadbridge/a/vad", b"{}", "mqtt.shape", "at least one"),
    ("vadbridge/a/vad", b'{"valance": 0.1}', "mqtt.shape", "unknown key 'valance'"),
    ("vadbridge/a/vad", b'{"v": 0.1, "valence": 0.2}', "mqtt.shape", "valence given twice"),
    ("vadbridge/a/vad", b"0.1 0.2", "mqtt.shape", "got 2 fields"),
    ("vadbridge/a/vad", b"0.1 0.2 0.3 0.4", "mqtt.shape", "got 4 fields"),
    ("vadbridge/a/vad", b"a b c", "mqtt.shape", "valence is not a number: 'a'"),
    ("vadbridge/a/vad", b"5", "mqtt.shape", "got 1 field"),
    ("vadbridge/a/vad", b"", "mqtt.shape", "empty payload"),
    ("vadbridge/a/emotion", b" \n ", "mqtt.shape", "empty payload"),
    ("vadbridge/a/vad", DEEP, "mqtt.shape", "nested too deeply"),
    ("vadbridge/a/emotion", b'{"emotion": 5}', "mqtt.shape", "'emotion' must be a string"),
    ("vadbridge/a/emotion", b'{"intensity": 0.5}', "mqtt.shape", "'emotion' must be a string"),
    ("vadbridge/a/emotion", b'{"emotion": "joy", "intensity": "max"}', "mqtt.shape",
     "intensity must be a number"),
    ("vadbridge/a/emotion", b'{"emotion": "joy", "mood": 1}', "mqtt.shape", "unknown key 'mood'"),
    ("vadbridge/a/emotion", b"[]", "mqtt.shape", "empty label list"),
    ("vadbridge/a/emotion", b"[[]]", "mqtt.shape", "empty label list"),
    ("vadbridge/a/emotion", b'["joy"]', "mqtt.shape", '[{"label": str, "score": number}'),
    ("vadbridge/a/emotion", b'[{"label": "joy"}]', "mqtt.shape", '"score": number'),
    ("vadbridge/a/emotion", b'[{"label": 1, "score": 1}]', "mqtt.shape", "label must be a string"),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": "1"}]', "mqtt.shape",
     "score of 'joy' must be a number"),
    ("vadbridge/a/emotion", TOO_MANY_LABELS, "mqtt.shape", f"at most {MAX_MIX_LABELS}"),
    # non-finite numbers (JSON's NaN/Infinity extensions, text, overflow)
    ("vadbridge/a/vad", b"[NaN, 0, 0]", "nonfinite", "valence is nan"),
    ("vadbridge/a/vad", b'{"arousal": Infinity}', "nonfinite", "arousal is inf"),
    ("vadbridge/a/vad", b"[1e999, 0, 0]", "nonfinite", "inf"),
    ("vadbridge/a/vad", b"0 0 -inf", "nonfinite", "dominance is -inf"),
    ("vadbridge/a/vad", b"nan 0 0", "nonfinite", "valence is nan"),
    ("vadbridge/a/emotion", b'{"emotion": "joy", "intensity": NaN}', "nonfinite", "intensity"),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": NaN}]', "nonfinite", "score of 'joy'"),
    # emotions
    ("vadbridge/a/emotion", b"glee", "emotion.unknown", "'glee'"),
    ("vadbridge/a/emotion", b"joy+glee", "emotion.unknown", "'glee'"),
    ("vadbridge/a/emotion", b'{"emotion": "glee"}', "emotion.unknown", "'glee'"),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": 0.5}, {"label": "LABEL_0", "score": 0.5}]',
     "emotion.unknown", "'LABEL_0'"),
    ("vadbridge/a/emotion", b'{"emotion": "joy", "intensity": 1.5}', "emotion.invalid",
     "intensity"),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": -0.1}]', "emotion.invalid", ">= 0"),
    # out-of-range ints are named as sent (not clamped first)
    ("vadbridge/a/emotion", b'{"emotion": "joy", "intensity": 5}', "emotion.invalid",
     "intensity must be in [0, 1], got 5"),
    ("vadbridge/a/emotion", b'{"emotion": "joy", "intensity": -3}', "emotion.invalid",
     "intensity must be in [0, 1], got -3"),
    ("vadbridge/a/emotion", b'{"emotion": "joy", "intensity": 1' + b"0" * 400 + b"}",
     "emotion.invalid", "intensity must be in [0, 1], got 1000000"),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": -7}]', "emotion.invalid",
     "score of 'joy' must be finite and >= 0, got -7"),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": 9' + b"0" * 400 + b"}]",
     "emotion.invalid", "score of 'joy' must be finite and >= 0, got 9000000"),
    ("vadbridge/a/emotion", b'[{"label": "joy", "score": 0}]', "emotion.invalid", "sum"),
    ("vadbridge/a/emotion", b"joy:-1", "emotion.invalid", ">= 0"),
    # topics
    ("other/a/vad", b"0 0 0", "mqtt.topic", "not under 'vadbridge'/"),
    ("vadbridgex/a/vad", b"0 0 0", "mqtt.topic", "not under"),
    ("vadbridge/a", b"0 0 0", "mqtt.topic", "expected vadbridge/<avatar>/vad or /emotion"),
    ("vadbridge/a/vad/extra", b"0 0 0", "mqtt.topic", "expected vadbridge/<avatar>/vad"),
    ("vadbridge/a/blend", b"0 0 0", "mqtt.topic", "'vadbridge/a/blend'"),
    ("vadbridge//vad", b"0 0 0", "mqtt.topic", "invalid avatar id ''"),
    ("vadbridge/bad id/vad", b"0 0 0", "mqtt.topic", "invalid avatar id 'bad id'"),
]  # fmt: skip


@pytest.mark.parametrize(("topic", "payload", "kind", "reason"), MQTT_REJECTED)
def test_mqtt_rejections_name_kind_and_reason(
    topic: str, payload: bytes, kind: str, reason: str
) -> None:
    max_bytes = len(payload) if payload in (DEEP, TOO_MANY_LABELS) else MAX_BYTES
    with pytest.raises(InputError) as caught:
        mqtt(topic, payload, max_bytes=max_bytes)
    assert caught.value.kind == kind
    assert reason in caught.value.reason


def test_mqtt_size_is_checked_before_the_topic() -> None:
    with pytest.raises(InputError) as caught:
        mqtt("elsewhere", b"x" * 10, max_bytes=9)
    assert caught.value.kind == "oversize"


# --- InputStats ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_stats_count_accepted_rejected_and_clipped() -> None:
    stats = InputStats()
    stats.accept("osc")
    stats.accept("osc")
    stats.accept("mqtt")
    stats.clipped("osc")
    stats.reject("nonfinite", "x", source="osc")
    stats.reject("nonfinite", "y", source="mqtt")
    stats.reject("mqtt.json", "z", source="mqtt")
    assert stats.snapshot() == {
        "accepted": {"osc": 2, "mqtt": 1},
        "rejected": {"nonfinite": 2, "mqtt.json": 1},
        "rejected_by_source": {"osc": 1, "mqtt": 2},
        "clipped": {"osc": 1}, "ignored": {},
    }
    assert stats.accepted_total == 3
    assert stats.rejected_total == 3


def test_stats_snapshot_is_a_copy() -> None:
    stats = InputStats()
    stats.accept("osc")
    snapshot = stats.snapshot()
    stats.accept("osc")
    assert snapshot["accepted"] == {"osc": 1}


def test_rejections_log_once_per_kind_per_interval_then_count_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    stats = InputStats(log_interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="vadbridge.inputs"):
        stats.reject("osc.arity", "first", source="osc")
        clock.now_s += 1.0
        stats.reject("osc.arity", "second", source="osc")
        stats.reject("osc.arity", "third", source="osc")
        stats.reject("nonfinite", "other kind", source="osc")  # its own budget
        clock.now_s += 9.0
        stats.reject("osc.arity", "after the interval", source="osc")
        clock.now_s += 10.0
        stats.reject("osc.arity", "quiet interval", source="osc")
    assert [r.getMessage() for r in caplog.records] == [
        "rejected input (osc.arity): first",
        "rejected input (nonfinite): other kind",
        "rejected input (osc.arity): after the interval (2 more since)",
        "rejected input (osc.arity): quiet interval",
    ]
    assert all(
        r.levelno == logging.WARNING and r.name == "vadbridge.inputs" for r in caplog.records
    )
    assert stats.snapshot()["rejected"] == {"osc.arity": 5, "nonfinite": 1}


def test_stats_reject_a_negative_log_interval() -> None:
    with pytest.raises(ValueError, match="log_interval_s"):
        InputStats(log_interval_s=-1.0)
