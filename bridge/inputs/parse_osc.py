"""OSC address parser: one decoded OSC message -> a validated, clipped ``Parsed`` sample.

Pure (no I/O, no clocks); rejections raise ``InputError`` with ``osc.*`` kinds. Accepted forms
are those of issue 4 ("Inputs").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vadbridge.config import AVATAR_ID_PATTERN
from vadbridge.core.types import InputError
from vadbridge.inputs.values import (
    DEFAULT_AVATAR,
    Parsed,
    check_avatar,
    clipped_sample,
    emotion_sample,
    parse_intensity,
    parse_number,
    show,
)

__all__ = ["address_avatar", "parse_osc_message"]

OscHandler = Callable[[str, str, tuple[Any, ...]], Parsed]


def _osc_vad(avatar: str, address: str, args: tuple[Any, ...]) -> Parsed:
    if len(args) != 3:
        raise InputError(
            "osc.arity", f"{address} takes 3 floats (v a d), got {len(args)} arguments"
        )
    return clipped_sample(
        avatar,
        (
            parse_number(args[0], f"{address} valence", "osc.type"),
            parse_number(args[1], f"{address} arousal", "osc.type"),
            parse_number(args[2], f"{address} dominance", "osc.type"),
        ),
    )


def _osc_axis(axis: int) -> OscHandler:
    def handle(avatar: str, address: str, args: tuple[Any, ...]) -> Parsed:
        if len(args) != 1:
            raise InputError("osc.arity", f"{address} takes 1 float, got {len(args)} arguments")
        values: list[float | None] = [None, None, None]
        values[axis] = parse_number(args[0], address, "osc.type")
        return clipped_sample(avatar, (values[0], values[1], values[2]))

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
            "osc.type", f"{address} name must be a string, got {type(spec).__name__} {show(spec)}"
        )
    intensity = 1.0
    if len(args) == 2:
        intensity = parse_intensity(args[1], f"{address} intensity", "osc.type")
    return emotion_sample(avatar, spec, intensity)


_OSC_HANDLERS: dict[str, OscHandler] = {
    "/vad": _osc_vad,
    "/vad/valence": _osc_axis(0),
    "/vad/arousal": _osc_axis(1),
    "/vad/dominance": _osc_axis(2),
    "/emotion": _osc_emotion,
}
_AVATAR_PREFIX = "/avatar/"


def address_avatar(address: str) -> str | None:
    """The avatar a known address names (``default`` without ``/avatar/<id>``), or None if the
    address is not one ``parse_osc_message`` accepts (it then says why). Cheap: lets a source
    refuse an avatar before the arguments are looked at."""
    if address in _OSC_HANDLERS:
        return DEFAULT_AVATAR
    if address.startswith(_AVATAR_PREFIX):
        avatar, slash, rest = address[len(_AVATAR_PREFIX) :].partition("/")
        if slash + rest in _OSC_HANDLERS and AVATAR_ID_PATTERN.fullmatch(avatar) is not None:
            return avatar
    return None


def parse_osc_message(address: str, args: tuple[Any, ...]) -> Parsed:
    """One decoded OSC message -> ``Parsed``; raises ``InputError``.

    ``/vad f f f``, ``/vad/{valence,arousal,dominance} f``, ``/emotion s [f]`` address the
    ``default`` avatar; the same under ``/avatar/<id>/`` address avatar ``<id>``. Ints and
    doubles count as floats; ``S`` (a symbol) arrives decoded as a string, so counts as ``s``.
    """
    handler = _OSC_HANDLERS.get(address)
    if handler is not None:
        return handler(DEFAULT_AVATAR, address, args)
    if address.startswith(_AVATAR_PREFIX):
        avatar, slash, rest = address[len(_AVATAR_PREFIX) :].partition("/")
        handler = _OSC_HANDLERS.get(slash + rest)
        if handler is not None:
            return handler(check_avatar(avatar, "osc.address"), address, args)
    raise InputError(
        "osc.address",
        f"unknown address {show(address)}: expected [/avatar/<id>]/vad, /vad/valence, "
        "/vad/arousal, /vad/dominance or /emotion",
    )
