"""The control panel's messages: a WebSocket text frame -> a checked JSON object, and the page's
inputs (``vad``, ``emotion``) -> a validated, clipped ``Parsed`` sample, as OSC and MQTT give.

Pure (no I/O, no clocks). Every rejection raises ``InputError`` with a ``web.*`` kind (or the
kinds every input shares: ``nonfinite``, ``emotion.unknown``, ``emotion.invalid``); the panel
counts it like the other sources do. Kinds never hold text from the message: a page cannot grow
the counters' dicts. The page's messages are documented in docs/panel.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

import vadbridge.inputs.values as shared  # the checks every parser uses
from vadbridge.core.stats import show
from vadbridge.core.types import InputError
from vadbridge.inputs.values import AXES, DEFAULT_AVATAR, Parsed

__all__ = ["MAX_DEPTH", "WEB_INPUT_TYPES", "decode_message", "input_avatar", "parse_web_input"]

MAX_DEPTH = 3
"""Nesting of a page message, the message object itself being 1: the deepest the page sends is a
tuning message's ``{"smoothing": {"upper": {...}}}``."""

WEB_INPUT_TYPES = frozenset({"vad", "emotion"})
"""The message types that drive a face (counted as source ``web``); the panel handles others."""

_VAD_KEYS = frozenset({"type", "avatar", *AXES})
_EMOTION_KEYS = frozenset({"type", "avatar", "emotion", "intensity"})


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def decode_message(text: str, max_chars: int) -> dict[str, Any]:
    """One text frame -> a JSON object with a string ``type``, nested at most ``MAX_DEPTH``.

    ``max_chars`` guards callers that do not cap frames themselves (the panel's WebSocket caps
    bytes before a frame is read). ``NaN`` and ``Infinity`` are refused: they are not JSON.
    """
    if len(text) > max_chars:
        raise InputError("oversize", f"message of {len(text)} characters > {max_chars}")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InputError("web.depth", f"JSON nested deeper than {MAX_DEPTH}") from None
    except ValueError as error:
        where = f" at character {error.pos}" if isinstance(error, json.JSONDecodeError) else ""
        reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise InputError("web.json", f"not JSON: {reason}{where}") from None
    if not isinstance(data, dict):
        raise InputError("web.shape", f"expected a JSON object, got {type(data).__name__}")
    if _depth(data) > MAX_DEPTH:
        raise InputError("web.depth", f"JSON nested deeper than {MAX_DEPTH}")
    kind = data.get("type")
    if type(kind) is not str:
        raise InputError("web.shape", f"expected a string 'type', got {show(kind)}")
    return data


def _depth(data: object) -> int:
    """How deeply ``data`` nests objects and arrays (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:  # deep enough to refuse: no need to look further
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def input_avatar(message: Mapping[str, Any]) -> str:
    """The avatar an input message addresses (``default`` when it names none), checked: cheap,
    so the panel asks the avatar table before the rest of the message is looked at."""
    avatar = message.get("avatar", DEFAULT_AVATAR)
    if type(avatar) is not str:
        raise InputError("web.shape", f"'avatar' must be a string, got {show(avatar)}")
    return shared.check_avatar(avatar, "web.avatar")


def parse_web_input(message: Mapping[str, Any]) -> Parsed:
    """A decoded ``vad`` or ``emotion`` message -> ``Parsed``; raises ``InputError``.

    ``{"type": "vad", "valence": v, "arousal": a, "dominance": d}``: any non-empty subset of the
    axes (the pad sends valence and arousal, the slider dominance: partial updates).
    ``{"type": "emotion", "emotion": "happiness" | "joy:0.7+fear:0.3", "intensity": x}``:
    a name or a mix, as OSC's ``/emotion`` and MQTT's ``emotion`` take them; intensity in
    [0, 1], 1 when absent. Both may name an ``avatar`` (``default`` otherwise).
    """
    kind = message.get("type")
    avatar = input_avatar(message)
    if kind == "vad":
        _known_keys(message, _VAD_KEYS)
        values = [None if message.get(axis) is None
                  else shared.parse_number(message[axis], axis, "web.shape") for axis in AXES]
        if all(value is None for value in values):
            raise InputError("web.shape", "a vad message needs valence, arousal or dominance")
        return shared.clipped_sample(avatar, (values[0], values[1], values[2]))
    if kind == "emotion":
        _known_keys(message, _EMOTION_KEYS)
        spec = message.get("emotion")
        if type(spec) is not str or not spec.strip():
            raise InputError("web.shape", f"'emotion' must be a name or a mix, got {show(spec)}")
        intensity = shared.parse_intensity(message.get("intensity", 1.0), "intensity", "web.shape")
        return shared.emotion_sample(avatar, spec, intensity)
    raise InputError("web.unknown", f"not an input message type: {show(kind)}")


def _known_keys(message: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = message.keys() - known
    if unknown:
        expected = ", ".join(sorted(known - {"type"}))
        raise InputError("web.shape", f"{message['type']} message: unknown key "
                         f"{show(min(unknown))}: expected {expected}")
