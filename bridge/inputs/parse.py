"""Pure parsers for OSC messages and MQTT payloads -> validated, clipped ``VadSample``s.

The hot edge of the daemon: no I/O, no clocks. Every rejection raises ``InputError(kind,
reason)`` with a reason that names what was wrong; the sources count ``kind`` and drop the
message. Accepted forms are those of issue 4 ("Inputs"); emotion names and mixes are resolved by
``model.emotions`` (``emotion_to_vad``, ``mix_to_vad``).

Both parsers return ``Parsed(sample, clipped)`` so the source can count clipping without the
sample carrying bookkeeping.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from bridge.avatars import AVATAR_ID_PATTERN
from bridge.types import InputError, VadSample
from model.emotions import emotion_to_vad, known_emotion_names, mix_to_vad

__all__ = ["DEFAULT_AVATAR", "Parsed", "parse_mqtt", "parse_osc_message"]

DEFAULT_AVATAR = "default"

Vad = tuple[float | None, float | None, float | None]


class Parsed(NamedTuple):
    sample: VadSample
    clipped: bool  # some axis was outside [-1, 1] and was clipped


# --- shared helpers -------------------------------------------------------------------------

_AXES = ("valence", "arousal", "dominance")
_REASON_TEXT_CHARS = 80


def _show(value: object) -> str:
    """A short repr for log reasons: attacker-sized input must not make log lines huge."""
    text = repr(value)
    if len(text) > _REASON_TEXT_CHARS:
        return text[: _REASON_TEXT_CHARS - 3] + "..."
    return text


def _number(value: object, what: str, type_kind: str) -> float:
    """``value`` as a float; ints are accepted, bools are not (they are ints in Python).

    Non-finite floats are rejected; an int too large for a float (JSON allows any) becomes
    +-inf, which a VAD axis clips to +-1 and the intensity and score checks reject, naming the
    int as sent.
    """
    kind = type(value)
    if kind is float:
        number: float = value  # type: ignore[assignment]
        if not math.isfinite(number):
            raise InputError("nonfinite", f"{what} is {number!r}")
        return number
    if kind is int:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    raise InputError(
        type_kind, f"{what} must be a number, got {type(value).__name__} {_show(value)}"
    )


def _intensity(value: object, what: str, type_kind: str) -> float:
    """An emotion intensity in [0, 1]; checked here so the reason shows the value as sent."""
    intensity = _number(value, what, type_kind)
    if not 0.0 <= intensity <= 1.0:
        raise InputError("emotion.invalid", f"{what} must be in [0, 1], got {_show(value)}")
    return intensity


def _clip_axes(values: Vad) -> tuple[Vad, bool]:
    clipped = False
    out: list[float | None] = []
    for value in values:
        if value is not None:
            if value > 1.0:
                value, clipped = 1.0, True
            elif value < -1.0:
                value, clipped = -1.0, True
        out.append(value)
    return (out[0], out[1], out[2]), clipped


def _sample(avatar: str, values: Vad) -> Parsed:
    vad, clipped = _clip_axes(values)
    return Parsed(VadSample(avatar, vad), clipped)


def _check_avatar(avatar: str, kind: str) -> str:
    if AVATAR_ID_PATTERN.fullmatch(avatar) is None:
        raise InputError(
            kind, f"invalid avatar id {_show(avatar)}: expected 1-64 of [A-Za-z0-9_.-]"
        )
    return avatar


# model.emotions answers an unknown name with a fuzzy "closest names" search that costs up to
# ~1 ms for a long name; screening names here keeps a flood of bad names cheap. Same
# normalisation as model.emotions (case, surrounding space, runs of space/_/- alike); the tests
# check that every known name still passes.
_NAME_SEPARATORS = re.compile(r"[\s_\-]+")
_KNOWN_NAMES = frozenset(known_emotion_names())


def _check_known(name: str) -> None:
    key = _NAME_SEPARATORS.sub("_", name.strip().lower()).strip("_")
    if key and key not in _KNOWN_NAMES:  # empty names: model.emotions explains those
        raise InputError(
            "emotion.unknown",
            f"unknown emotion {_show(name.strip())} (see docs/emotions.md for the known names)",
        )


# Emotion lookups repeat (a UI sends the same few names): cache results and failures, bounded.
@functools.lru_cache(maxsize=512)
def _emotion(spec: str, intensity: float) -> tuple[float, float, float] | InputError:
    try:
        for part in spec.split("+"):
            _check_known(part.partition(":")[0])
        vad = emotion_to_vad(spec, intensity)
    except InputError as error:
        return error.with_traceback(None)  # cached: keep no frames alive
    except ValueError as error:
        return _emotion_error(error)
    return (float(vad[0]), float(vad[1]), float(vad[2]))


def _emotion_error(error: ValueError) -> InputError:
    reason = str(error)
    # model.emotions words every unknown-name error this way (its _row_of).
    kind = "emotion.unknown" if reason.startswith("unknown emotion") else "emotion.invalid"
    return InputError(kind, reason)


# Longer specs (far past any real name or mix) are looked up uncached, so a flood of distinct
# huge names cannot fill the cache with megabytes of keys.
_MAX_CACHED_SPEC_CHARS = 256


def _emotion_sample(avatar: str, spec: str, intensity: float) -> Parsed:
    if len(spec) > _MAX_CACHED_SPEC_CHARS:
        result = _emotion.__wrapped__(spec, intensity)
    else:
        result = _emotion(spec, intensity)
    if isinstance(result, InputError):
        raise InputError(result.kind, result.reason)  # a fresh exception: no shared traceback
    return _sample(avatar, result)


# --- OSC --------------------------------------------------------------------------------------

OscHandler = Callable[[str, str, tuple[Any, ...]], Parsed]


def _osc_vad(avatar: str, address: str, args: tuple[Any, ...]) -> Parsed:
    if len(args) != 3:
        raise InputError(
            "osc.arity", f"{address} takes 3 floats (v a d), got {len(args)} arguments"
        )
    return _sample(
        avatar,
        (
            _number(args[0], f"{address} valence", "osc.type"),
            _number(args[1], f"{address} arousal", "osc.type"),
            _number(args[2], f"{address} dominance", "osc.type"),
        ),
    )


def _osc_axis(axis: int) -> OscHandler:
    def handle(avatar: str, address: str, args: tuple[Any, ...]) -> Parsed:
        if len(args) != 1:
            raise InputError("osc.arity", f"{address} takes 1 float, got {len(args)} arguments")
        values: list[float | None] = [None, None, None]
        values[axis] = _number(args[0], address, "osc.type")
        return _sample(avatar, (values[0], values[1], values[2]))

    return handle


def _osc_emotion(avatar: str, address: str, args: tuple[Any, ...]) -> Parsed:
    if not 1 <= len(args) <= 2:
        raise InputError(
            "osc.arity",
            f"{address} takes a name and an optional intensity, got {len(args)} arguments",
        )
    spec = args[0]
    if type(spec) is not str:
        raise InputError(
            "osc.type", f"{address} name must be a string, got {type(spec).__name__} {_show(spec)}"
        )
    intensity = 1.0
    if len(args) == 2:
        intensity = _intensity(args[1], f"{address} intensity", "osc.type")
    return _emotion_sample(avatar, spec, intensity)


_OSC_HANDLERS: dict[str, OscHandler] = {
    "/vad": _osc_vad,
    "/vad/valence": _osc_axis(0),
    "/vad/arousal": _osc_axis(1),
    "/vad/dominance": _osc_axis(2),
    "/emotion": _osc_emotion,
}
_AVATAR_PREFIX = "/avatar/"


def parse_osc_message(address: str, args: tuple[Any, ...]) -> Parsed:
    """One decoded OSC message -> ``Parsed``; raises ``InputError``.

    ``/vad f f f``, ``/vad/{valence,arousal,dominance} f``, ``/emotion s [f]`` address the
    ``default`` avatar; the same under ``/avatar/<id>/`` address avatar ``<id>``. Ints and
    doubles count as floats.
    """
    handler = _OSC_HANDLERS.get(address)
    if handler is not None:
        return handler(DEFAULT_AVATAR, address, args)
    if address.startswith(_AVATAR_PREFIX):
        avatar, slash, rest = address[len(_AVATAR_PREFIX) :].partition("/")
        handler = _OSC_HANDLERS.get(slash + rest)
        if handler is not None:
            return handler(_check_avatar(avatar, "osc.address"), address, args)
    raise InputError(
        "osc.address",
        f"unknown address {_show(address)}: expected [/avatar/<id>]/vad, /vad/valence, "
        "/vad/arousal, /vad/dominance or /emotion",
    )


# --- MQTT -------------------------------------------------------------------------------------

_VAD_KEYS: dict[str, int] = {
    "valence": 0, "arousal": 1, "dominance": 2, "v": 0, "a": 1, "d": 2,
}  # fmt: skip
_EMOTION_KEYS = frozenset({"emotion", "intensity"})
_LABEL_KEYS = frozenset({"label", "score"})
_TEXT_VAD_SEPARATORS = re.compile(r"[\s,]+")
# A classifier emits one entry per label (GoEmotions has 28); more is not a classifier output.
MAX_MIX_LABELS = 64


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
                f"{topic}: unknown key {_show(key)}: expected valence/arousal/dominance or v/a/d",
            )
        if values[axis] is not None:
            raise InputError("mqtt.shape", f"{topic}: {_AXES[axis]} given twice")
        values[axis] = _number(value, f"{topic} {key}", "mqtt.shape")
    if values == [None, None, None]:
        raise InputError("mqtt.shape", f"{topic}: empty object: need at least one of v/a/d")
    return (values[0], values[1], values[2])


def _vad_sequence(items: list[Any], topic: str) -> Vad:
    if len(items) != 3:
        raise InputError("mqtt.shape", f"{topic}: expected [v, a, d], got {len(items)} items")
    return (
        _number(items[0], f"{topic} valence", "mqtt.shape"),
        _number(items[1], f"{topic} arousal", "mqtt.shape"),
        _number(items[2], f"{topic} dominance", "mqtt.shape"),
    )


def _vad_text(text: str, topic: str) -> Vad:
    tokens = _TEXT_VAD_SEPARATORS.split(text)
    if len(tokens) != 3:
        raise InputError(
            "mqtt.shape", f"{topic}: expected 'v a d' (3 numbers), got {len(tokens)} fields"
        )
    values: list[float] = []
    for axis, token in zip(_AXES, tokens, strict=True):
        try:
            values.append(float(token))
        except ValueError:
            raise InputError(
                "mqtt.shape", f"{topic}: {axis} is not a number: {_show(token)}"
            ) from None
    return (
        _number(values[0], f"{topic} valence", "mqtt.shape"),
        _number(values[1], f"{topic} arousal", "mqtt.shape"),
        _number(values[2], f"{topic} dominance", "mqtt.shape"),
    )


def _parse_vad(avatar: str, text: str, topic: str) -> Parsed:
    if text[0] in "{[":
        data = _json(text, topic)
        if isinstance(data, dict):
            return _sample(avatar, _vad_object(data, topic))
        if isinstance(data, list):
            return _sample(avatar, _vad_sequence(data, topic))
        raise InputError("mqtt.shape", f"{topic}: expected an object or array, got {_show(data)}")
    return _sample(avatar, _vad_text(text, topic))


def _emotion_object(avatar: str, obj: dict[str, Any], topic: str) -> Parsed:
    unknown = obj.keys() - _EMOTION_KEYS
    if unknown:
        raise InputError(
            "mqtt.shape", f"{topic}: unknown key {_show(min(unknown))}: expected emotion, intensity"
        )
    spec = obj.get("emotion")
    if type(spec) is not str:
        raise InputError("mqtt.shape", f"{topic}: 'emotion' must be a string, got {_show(spec)}")
    intensity = _intensity(obj.get("intensity", 1.0), f"{topic} intensity", "mqtt.shape")
    return _emotion_sample(avatar, spec, intensity)


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
                f'{topic}: expected [{{"label": str, "score": number}}, ...], got {_show(item)}',
            )
        label = item["label"]
        if type(label) is not str:
            raise InputError("mqtt.shape", f"{topic}: label must be a string, got {_show(label)}")
        raw = item["score"]
        what = f"{topic} score of {_show(label)}"
        score = _number(raw, what, "mqtt.shape")
        if not 0.0 <= score < math.inf:
            raise InputError("emotion.invalid", f"{what} must be finite and >= 0, got {_show(raw)}")
        weights[label] = weights.get(label, 0.0) + score
    return weights


def _mix_sample(avatar: str, weights: Mapping[str, float]) -> Parsed:
    for label in weights:
        _check_known(label)
    try:
        vad = mix_to_vad(weights)
    except ValueError as error:
        raise _emotion_error(error) from None
    return _sample(avatar, (float(vad[0]), float(vad[1]), float(vad[2])))


def _parse_emotion(avatar: str, text: str, topic: str) -> Parsed:
    if text[0] in "{[":
        data = _json(text, topic)
        if isinstance(data, dict):
            return _emotion_object(avatar, data, topic)
        if isinstance(data, list):
            return _mix_sample(avatar, _label_weights(data, topic))
        raise InputError("mqtt.shape", f"{topic}: expected an object or array, got {_show(data)}")
    return _emotion_sample(avatar, text, 1.0)


_MQTT_PARSERS: dict[str, Callable[[str, str, str], Parsed]] = {
    "vad": _parse_vad,
    "emotion": _parse_emotion,
}


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
        raise InputError("mqtt.topic", f"topic {_show(topic)} is not under {topic_prefix!r}/")
    avatar, _sep, leaf = topic[prefix_length + 1 :].partition("/")
    parser = _MQTT_PARSERS.get(leaf)
    if parser is None:
        raise InputError(
            "mqtt.topic", f"topic {_show(topic)}: expected {topic_prefix}/<avatar>/vad or /emotion"
        )
    _check_avatar(avatar, "mqtt.topic")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as error:
        raise InputError("mqtt.json", f"{topic}: payload is not UTF-8 ({error.reason})") from None
    if not text:
        raise InputError("mqtt.shape", f"{topic}: empty payload")
    return parser(avatar, text, topic)
