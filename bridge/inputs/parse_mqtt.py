"""MQTT topic/payload parser: one message on ``<prefix>/<avatar>/{vad,emotion}`` -> ``Parsed``.

Pure (no I/O, no clocks); rejections raise ``InputError`` with ``oversize``, ``mqtt.*`` and
``emotion.*`` kinds. Accepted forms are those of issue 4 ("Inputs"); label mixes are resolved by
``model.emotions.mix_to_vad``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from vadbridge.config import AVATAR_ID_PATTERN
from vadbridge.core.types import InputError
from vadbridge.inputs.values import (
    AXES,
    MAX_MIX_LABELS,
    Parsed,
    Vad,
    check_avatar,
    check_known,
    clipped_sample,
    emotion_error,
    emotion_sample,
    parse_intensity,
    parse_number,
    show,
)
from vadbridge.model.emotions import mix_to_vad

__all__ = ["MAX_MIX_LABELS", "parse_mqtt", "topic_avatar"]

_VAD_KEYS: dict[str, int] = {
    "valence": 0, "arousal": 1, "dominance": 2, "v": 0, "a": 1, "d": 2,
}  # fmt: skip
_EMOTION_KEYS = frozenset({"emotion", "intensity"})
_LABEL_KEYS = frozenset({"label", "score"})
_TEXT_VAD_SEPARATORS = re.compile(r"[\s,]+")


def _json(text: str, topic: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError("mqtt.json", f"{topic}: invalid JSON: {error}") from None
    except RecursionError:
        raise InputError("mqtt.shape", f"{topic}: JSON nested too deeply") from None
    except ValueError as error:  # e.g. an int literal over Python's digit limit
        raise InputError("mqtt.json", f"{topic}: invalid JSON: {error}") from None


def _vad_object(obj: dict[str, Any], topic: str) -> Vad:
    values: list[float | None] = [None, None, None]
    for key, value in obj.items():
        axis = _VAD_KEYS.get(key)
        if axis is None:
            raise InputError(
                "mqtt.shape",
                f"{topic}: unknown key {show(key)}: expected valence/arousal/dominance or v/a/d",
            )
        if values[axis] is not None:
            raise InputError("mqtt.shape", f"{topic}: {AXES[axis]} given twice")
        values[axis] = parse_number(value, f"{topic} {key}", "mqtt.shape")
    if values == [None, None, None]:
        raise InputError("mqtt.shape", f"{topic}: empty object: need at least one of v/a/d")
    return (values[0], values[1], values[2])


def _vad_sequence(items: list[Any], topic: str) -> Vad:
    if len(items) != 3:
        raise InputError("mqtt.shape", f"{topic}: expected [v, a, d], got {len(items)} items")
    return (
        parse_number(items[0], f"{topic} valence", "mqtt.shape"),
        parse_number(items[1], f"{topic} arousal", "mqtt.shape"),
        parse_number(items[2], f"{topic} dominance", "mqtt.shape"),
    )


def _vad_text(text: str, topic: str) -> Vad:
    tokens = _TEXT_VAD_SEPARATORS.split(text)
    if len(tokens) != 3:
        raise InputError(
            "mqtt.shape", f"{topic}: expected 'v a d' (3 numbers), got {len(tokens)} "
            f"field{'' if len(tokens) == 1 else 's'}"
        )
    values: list[float] = []
    for axis, token in zip(AXES, tokens, strict=True):
        try:
            values.append(float(token))
        except ValueError:
            raise InputError(
                "mqtt.shape", f"{topic}: {axis} is not a number: {show(token)}"
            ) from None
    return (
        parse_number(values[0], f"{topic} valence", "mqtt.shape"),
        parse_number(values[1], f"{topic} arousal", "mqtt.shape"),
        parse_number(values[2], f"{topic} dominance", "mqtt.shape"),
    )


def _parse_vad(avatar: str, text: str, topic: str) -> Parsed:
    if text[0] in "{[":
        data = _json(text, topic)
        if isinstance(data, dict):
            return clipped_sample(avatar, _vad_object(data, topic))
        if isinstance(data, list):
            return clipped_sample(avatar, _vad_sequence(data, topic))
        raise InputError("mqtt.shape", f"{topic}: expected an object or array, got {show(data)}")
    return clipped_sample(avatar, _vad_text(text, topic))


def _emotion_object(avatar: str, obj: dict[str, Any], topic: str) -> Parsed:
    unknown = obj.keys() - _EMOTION_KEYS
    if unknown:
        raise InputError(
            "mqtt.shape", f"{topic}: unknown key {show(min(unknown))}: expected emotion, intensity"
        )
    spec = obj.get("emotion")
    if type(spec) is not str:
        raise InputError("mqtt.shape", f"{topic}: 'emotion' must be a string, got {show(spec)}")
    intensity = parse_intensity(obj.get("intensity", 1.0), f"{topic} intensity", "mqtt.shape")
    return emotion_sample(avatar, spec, intensity)


def _label_weights(items: list[Any], topic: str) -> dict[str, float]:
    # HuggingFace's text-classification pipeline returns [[{...}, ...]] for a single input.
    if len(items) == 1 and isinstance(items[0], list):
        items = items[0]
    if not items:
        raise InputError("mqtt.shape", f"{topic}: empty label list")
    if len(items) > MAX_MIX_LABELS:
        raise InputError(
            "mqtt.shape", f"{topic}: {len(items)} labels; at most {MAX_MIX_LABELS} accepted"
        )
    weights: dict[str, float] = {}
    for item in items:
        if not isinstance(item, dict) or item.keys() != _LABEL_KEYS:
            raise InputError(
                "mqtt.shape",
                f'{topic}: expected [{{"label": str, "score": number}}, ...], got {show(item)}',
            )
        label = item["label"]
        if type(label) is not str:
            raise InputError("mqtt.shape", f"{topic}: label must be a string, got {show(label)}")
        raw = item["score"]
        what = f"{topic} score of {show(label)}"
        score = parse_number(raw, what, "mqtt.shape")
        if not 0.0 <= score < math.inf:
            raise InputError("emotion.invalid", f"{what} must be finite and >= 0, got {show(raw)}")
        weights[label] = weights.get(label, 0.0) + score
    return weights


def _mix_sample(avatar: str, weights: Mapping[str, float]) -> Parsed:
    for label in weights:
        check_known(label)
    try:
        vad = mix_to_vad(weights)
    except ValueError as error:
        raise emotion_error(error) from None
    return clipped_sample(avatar, (float(vad[0]), float(vad[1]), float(vad[2])))


def _parse_emotion(avatar: str, text: str, topic: str) -> Parsed:
    if text[0] in "{[":
        data = _json(text, topic)
        if isinstance(data, dict):
            return _emotion_object(avatar, data, topic)
        if isinstance(data, list):
            return _mix_sample(avatar, _label_weights(data, topic))
        raise InputError("mqtt.shape", f"{topic}: expected an object or array, got {show(data)}")
    return emotion_sample(avatar, text, 1.0)


_MQTT_PARSERS: dict[str, Callable[[str, str, str], Parsed]] = {
    "vad": _parse_vad,
    "emotion": _parse_emotion,
}


def topic_avatar(topic: str, topic_prefix: str) -> str | None:
    """The avatar id of ``<prefix>/<avatar>/<leaf>``, or None if the topic is not of that form
    with a valid id (``parse_mqtt`` then says what is wrong). Cheap: lets a source refuse an
    avatar before anything of the payload is read."""
    prefix_length = len(topic_prefix)
    if not (topic.startswith(topic_prefix) and topic[prefix_length : prefix_length + 1] == "/"):
        return None
    avatar, _sep, leaf = topic[prefix_length + 1 :].partition("/")
    if leaf not in _MQTT_PARSERS or AVATAR_ID_PATTERN.fullmatch(avatar) is None:
        return None
    return avatar


def parse_mqtt(topic: str, payload: bytes, *, topic_prefix: str, max_payload_bytes: int) -> Parsed:
    """One MQTT message on ``<prefix>/<avatar>/{vad,emotion}`` -> ``Parsed``; raises ``InputError``.

    ``vad``: ``{"valence", "arousal", "dominance"}`` or ``{"v", "a", "d"}`` (any non-empty
    subset: a partial update), ``[v, a, d]``, or text ``"v a d"`` (spaces and/or commas).
    ``emotion``: ``{"emotion": name, "intensity": x}``, text ``name``/``a+b``/``a:0.7+b:0.3``, or a
    classifier's ``[{"label", "score"}, ...]`` (also HuggingFace's nested ``[[...]]``) -> the
    score-weighted mix of the labels.
    """
    # Size first: nothing of an oversized payload is decoded.
    if len(payload) > max_payload_bytes:
        raise InputError(
            "oversize", f"{topic}: payload of {len(payload)} bytes > {max_payload_bytes}"
        )
    prefix_length = len(topic_prefix)
    if not (topic.startswith(topic_prefix) and topic[prefix_length : prefix_length + 1] == "/"):
        raise InputError("mqtt.topic", f"topic {show(topic)} is not under {topic_prefix!r}/")
    avatar, _sep, leaf = topic[prefix_length + 1 :].partition("/")
    parser = _MQTT_PARSERS.get(leaf)
    if parser is None:
        raise InputError(
            "mqtt.topic", f"topic {show(topic)}: expected {topic_prefix}/<avatar>/vad or /emotion"
        )
    check_avatar(avatar, "mqtt.topic")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as error:
        raise InputError("mqtt.json", f"{topic}: payload is not UTF-8 ({error.reason})") from None
    if not text:
        raise InputError("mqtt.shape", f"{topic}: empty payload")
    return parser(avatar, text, topic)
