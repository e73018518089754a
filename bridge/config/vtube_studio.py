"""The ``vtube_studio`` output's config: the VTube Studio plugin API's limits, stated once, and
the mapping-row language in which the ARKit -> VTube Studio parameter table is written.

A mapping row is one line of text, the same in the built-in table
(``vadbridge.outputs.vtube_studio``) and in a config's ``mapping:`` overrides::

    MouthSmile = 0.5 + 0.35*mouthSmileLeft + 0.35*mouthSmileRight - 0.35*mouthFrownLeft in [0, 1]
    FaceAngry = off

The value sent is the sum (a constant plus coefficient * input, the inputs being the 52 ARKit
weights in Apple's lowerCamelCase and ``valence``, ``arousal``, ``dominance``) clipped to
``[low, high]``. ``in [low, high]`` may be left out for the VTube Studio default parameters whose
range is known (``KNOWN_PARAMETER_RANGES``). The API facts (name rules, value limit) are from
DenchiSoft/VTubeStudio's README; docs/references.md, "VTube Studio".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from vadbridge.config.errors import Invalid, describe
from vadbridge.config.specs import (
    Bool,
    Context,
    ListOf,
    NewFilePath,
    Number,
    Spec,
    Text,
    default_of,
    setting,
)
from vadbridge.config.values import AVATAR_DOC, AVATAR_ID, PORT_RANGE
from vadbridge.model.arkit import ARKIT_NAMES, upper_camel
from vadbridge.model.optional import installed

__all__ = [
    "CUSTOM_PARAMETER_PREFIX",
    "KNOWN_PARAMETER_RANGES",
    "MAPPING_INPUTS",
    "MAPPING_INPUT_INDEX",
    "VAD_INPUTS",
    "VTS_VALUE_LIMIT",
    "VtsMappingRow",
    "VtubeStudioOutputConfig",
    "custom_parameter_names",
    "format_mapping_row",
    "is_vts_parameter_name",
    "parse_mapping_row",
    "websocket_host_port",
]

VTS_VALUE_LIMIT: Final = 1_000_000.0
"""Injected values and custom parameter ranges must lie in [-1e6, 1e6] (the API refuses more)."""

_PARAMETER_NAME = re.compile(r"[A-Za-z0-9]{4,32}")
_PLUGIN_NAME_CHARS = (3, 32)

VAD_INPUTS: Final = ("valence", "arousal", "dominance")
MAPPING_INPUTS: Final = (*ARKIT_NAMES, *VAD_INPUTS)
"""What a mapping row may name: the 52 weights (model order), then the frame's VAD."""
MAPPING_INPUT_INDEX: Final = {name: index for index, name in enumerate(MAPPING_INPUTS)}

CUSTOM_PARAMETER_PREFIX: Final = "vadbridge"

KNOWN_PARAMETER_RANGES: Final[dict[str, tuple[float, float]]] = {
    # VTube Studio's default input parameters that the built-in table drives. MouthOpen 0..1 is
    # documented (wiki "VTS Model Settings"); the others are the ranges community plugins send
    # (0.5 = rest for MouthSmile and the brow heights; eye directions and MouthX signed).
    "MouthSmile": (0.0, 1.0), "MouthOpen": (0.0, 1.0), "MouthX": (-1.0, 1.0),
    "Brows": (0.0, 1.0), "BrowLeftY": (0.0, 1.0), "BrowRightY": (0.0, 1.0),
    "EyeOpenLeft": (0.0, 1.0), "EyeOpenRight": (0.0, 1.0),
    "EyeLeftX": (-1.0, 1.0), "EyeLeftY": (-1.0, 1.0),
    "EyeRightX": (-1.0, 1.0), "EyeRightY": (-1.0, 1.0),
    "CheekPuff": (0.0, 1.0), "TongueOut": (0.0, 1.0), "FaceAngry": (0.0, 1.0),
}  # fmt: skip


def is_vts_parameter_name(text: str) -> bool:
    """A parameter id VTube Studio accepts for a custom parameter: 4-32 ASCII letters/digits
    (every default parameter's id also fits)."""
    return _PARAMETER_NAME.fullmatch(text) is not None


def custom_parameter_names() -> tuple[str, ...]:
    """The custom parameters ``custom_parameters: true`` creates, in ``MAPPING_INPUTS`` order:
    ``vadbridgeEyeBlinkLeft`` ... (the 52 shapes, UpperCamelCase) and ``vadbridgeValence``,
    ``vadbridgeArousal``, ``vadbridgeDominance``."""
    return tuple(CUSTOM_PARAMETER_PREFIX + upper_camel(name) for name in MAPPING_INPUTS)


@dataclass(frozen=True, slots=True)
class VtsMappingRow:
    """One VTube Studio parameter: ``clip(offset + sum(coefficient * input), low, high)``;
    ``enabled`` False (``NAME = off``) removes a built-in row."""

    parameter: str
    offset: float = 0.0
    terms: tuple[tuple[str, float], ...] = ()
    low: float = -VTS_VALUE_LIMIT
    high: float = VTS_VALUE_LIMIT
    enabled: bool = True

    def __str__(self) -> str:
        return format_mapping_row(self)


_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z][A-Za-z0-9]*)"
    r"|(?P<symbol>[-+*=\[\],]))"
)
_ROW_SYNTAX = "NAME = [CONSTANT] +/- COEFFICIENT*INPUT ... [in [LOW, HIGH]], or NAME = off"


def _tokens(text: str) -> list[str]:
    tokens, at = [], 0
    text = text.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ValueError(f"unexpected {describe(text[at:at + 20])} at character {at + 1}")
        tokens.append(match.group(match.lastgroup or 0))
        at = match.end()
    return tokens


def _number(token: str) -> float | None:
    """The number ``token`` spells (None for a name or a symbol)."""
    if not (token[:1].isdigit() or token[:1] == "."):
        return None
    value = float(token)
    if not math.isfinite(value) or abs(value) > VTS_VALUE_LIMIT:
        raise ValueError(f"{token} is beyond the API's limit of {VTS_VALUE_LIMIT:g}")
    return value


def parse_mapping_row(text: str) -> VtsMappingRow:
    """The row ``text`` states; ``ValueError`` says what is wrong (one line)."""
    tokens = _tokens(text)
    if len(tokens) < 3 or tokens[1] != "=":
        raise ValueError(f"the form {_ROW_SYNTAX}")
    parameter, body = tokens[0], tokens[2:]
    if not is_vts_parameter_name(parameter):
        raise ValueError(f"parameter name {describe(parameter)} is not 4-32 letters and digits")
    if body == ["off"]:
        return VtsMappingRow(parameter, enabled=False)
    low_high = KNOWN_PARAMETER_RANGES.get(parameter)
    if "in" in body:
        at = body.index("in")
        body, limits = body[:at], body[at + 1:]
        low_high = _range(limits)
    elif low_high is None:
        raise ValueError(f"a range 'in [LOW, HIGH]' for {parameter} (known without one: "
                         f"{', '.join(KNOWN_PARAMETER_RANGES)})")
    offset, terms = _sum(body)
    return VtsMappingRow(parameter, offset, terms, *low_high)


def _signed_number(text: str) -> float | None:
    number = _number(text.removeprefix("-"))
    return None if number is None else -number if text.startswith("-") else number


def _range(tokens: list[str]) -> tuple[float, float]:
    """``[LOW, HIGH]`` (a minus sign arrives as a token of its own)."""
    match = re.fullmatch(r"\[(-?[0-9.eE+]+),(-?[0-9.eE+]+)\]", "".join(tokens))
    if match is None:
        raise ValueError(f"a range '[LOW, HIGH]' after 'in', got {describe(' '.join(tokens))}")
    low, high = (_signed_number(match.group(group)) for group in (1, 2))
    if low is None or high is None or not low < high:
        raise ValueError(f"a range [LOW, HIGH] with LOW < HIGH, got {describe(' '.join(tokens))}")
    return low, high


def _sum(tokens: list[str]) -> tuple[float, tuple[tuple[str, float], ...]]:
    """``[+|-] term (+|- term)*`` with term = NUMBER | NUMBER*INPUT | INPUT."""
    if not tokens:
        raise ValueError(f"a sum after '=' ({_ROW_SYNTAX})")
    offset, at = 0.0, 0
    terms: list[tuple[str, float]] = []
    while at < len(tokens):
        sign = 1.0
        if tokens[at] in ("+", "-"):
            sign = -1.0 if tokens[at] == "-" else 1.0
            at += 1
        elif at > 0:
            raise ValueError(f"'+' or '-' before {describe(tokens[at])}")
        if at >= len(tokens):
            raise ValueError("a term after the last sign")
        coefficient = _number(tokens[at])
        if coefficient is not None and tokens[at + 1 : at + 2] != ["*"]:
            offset += sign * coefficient  # a constant
            at += 1
            continue
        if coefficient is not None:
            at += 2
        name = tokens[at] if at < len(tokens) else None
        if name not in MAPPING_INPUT_INDEX:
            raise ValueError(f"an input (an ARKit name in Apple's lowerCamelCase such as "
                             f"mouthSmileLeft, or valence, arousal, dominance), got "
                             f"{'nothing' if name is None else describe(name)}")
        if any(name == seen for seen, _ in terms):
            raise ValueError(f"each input once per row, got {name} twice")
        terms.append((name, sign * (1.0 if coefficient is None else coefficient)))
        at += 1
    return offset, tuple(terms)


def format_mapping_row(row: VtsMappingRow) -> str:
    """``row`` in the language ``parse_mapping_row`` reads (the range always written out)."""
    if not row.enabled:
        return f"{row.parameter} = off"
    parts = [f"{row.offset:g}"] if row.offset or not row.terms else []
    for name, coefficient in row.terms:
        sign = "-" if coefficient < 0 else "+"
        size = abs(coefficient)
        term = name if size == 1.0 else f"{size:g}*{name}"
        parts.append(f"{sign} {term}" if parts else (f"-{term}" if sign == "-" else term))
    return f"{row.parameter} = {' '.join(parts)} in [{row.low:g}, {row.high:g}]"


class _MappingRowSpec(Spec):
    expected = f"a mapping row: {_ROW_SYNTAX} (README, 'VTube Studio')"

    def check(self, value: object, ctx: Context) -> object:
        if not isinstance(value, str):
            raise self.invalid(value)
        try:
            return parse_mapping_row(value)
        except ValueError as error:
            raise Invalid(self.expected, f"{describe(value)}: {error}") from None


def websocket_host_port(url: str) -> tuple[str, int]:
    """Host and port of a ``ws://HOST:PORT`` URL; ``ValueError`` for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(url)
    port = parts.port  # ValueError for a port out of 0..65535
    if not parts.hostname or port is None or not PORT_RANGE[0] <= port <= PORT_RANGE[1]:
        raise ValueError(url)
    if parts.path not in ("", "/"):
        raise ValueError(url)
    return parts.hostname, port


def _is_websocket_url(text: str) -> bool:
    try:
        websocket_host_port(text)
    except ValueError:
        return False
    return text.isprintable()


def _aiohttp_installed() -> bool:
    """Whether the client's one extra dependency can be imported (the base install lacks it)."""
    return installed("aiohttp")


_TOKEN_FILE = NewFilePath("VTube Studio token")
_WEB_EXTRA = "pip install 'vadbridge[web]'"


@dataclass(frozen=True, slots=True, kw_only=True)
class VtubeStudioOutputConfig:
    """VTube Studio's plugin API (WebSocket): the avatar's face injected into VTube Studio's
    default input parameters through a configurable table (README, "VTube Studio"), and
    optionally as `vadbridge`-prefixed custom parameters. Needs aiohttp
    (`pip install 'vadbridge[web]'`)."""

    type: ClassVar[str] = "vtube_studio"
    url: str = setting(
        "ws://127.0.0.1:8001",
        Text("a WebSocket URL ws://HOST:PORT (VTube Studio's API port, 8001 unless changed in "
             "its settings)", _is_websocket_url),
        "Where VTube Studio's plugin API listens.")
    avatar: str = setting("default", AVATAR_ID, AVATAR_DOC)
    token_file: str = setting(
        "vtube-studio.token", _TOKEN_FILE,
        "Where the plugin's authentication token is kept (written once, when the user clicks "
        "Allow in VTube Studio; mode 0600; never logged). Default: beside the config file.")
    plugin_name: str = setting(
        "vadbridge",
        Text(f"{_PLUGIN_NAME_CHARS[0]}-{_PLUGIN_NAME_CHARS[1]} printable characters",
             lambda text: _PLUGIN_NAME_CHARS[0] <= len(text) <= _PLUGIN_NAME_CHARS[1]
             and text.isprintable()),
        "The name VTube Studio shows in its Allow popup and plugin list (the token belongs to "
        "it: a new name asks the user again).")
    custom_parameters: bool = setting(
        False, Bool(),
        "Also create and inject 55 custom parameters for riggers who map them themselves: "
        "vadbridgeEyeBlinkLeft ... (the 52 shapes, 0..1) and vadbridgeValence, "
        "vadbridgeArousal, vadbridgeDominance (-1..1).")
    rate_hz: float = setting(
        60.0, Number(1.0, 60.0),
        "Most injections per second; at or above the frame rate every frame goes out. "
        "Capped at 60: VTube Studio renders at about that rate. The newest face is re-sent "
        "at least twice a second, so VTube Studio keeps the parameters (it drops them after "
        "one second without data).")
    reconnect_max_s: float = setting(
        5.0, Number(0.5, 300.0),
        "Longest wait between two connection attempts (the waits double from 0.25 s up to "
        "this) while VTube Studio is closed or its API is off.")
    mapping: tuple[VtsMappingRow, ...] = setting(
        (), ListOf(_MappingRowSpec()),
        "Rows that replace (same parameter), remove (`NAME = off`) or add to the built-in "
        "ARKit -> VTube Studio table, e.g. `MouthOpen = 1.5*jawOpen - 1.5*mouthClose`.")

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: Context) -> None:
        if not _aiohttp_installed():
            raise Invalid(f"the aiohttp package ({_WEB_EXTRA})", "it is not installed", ("type",))
        if "token_file" not in values:
            values["token_file"] = _TOKEN_FILE.check(default_of(cls, "token_file"), ctx)
        if ctx.config_file is not None and values["token_file"] == str(ctx.config_file):
            raise Invalid("a token file other than the config file (it would be overwritten)",
                          "the config file itself", ("token_file",))
        rows: tuple[VtsMappingRow, ...] = values.get("mapping", ())
        customs = set(custom_parameter_names()) if values.get("custom_parameters") else set()
        seen: dict[str, int] = {}
        for index, row in enumerate(rows):
            if row.parameter in seen:
                raise Invalid("each parameter once", f"{row.parameter} again (first at "
                              f"mapping[{seen[row.parameter]}])", ("mapping", index))
            if row.parameter in customs:
                raise Invalid("a parameter other than the custom parameters",
                              f"{row.parameter} (custom_parameters: true injects it)",
                              ("mapping", index))
            seen[row.parameter] = index
