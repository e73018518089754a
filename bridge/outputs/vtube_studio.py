"""VTube Studio's plugin API, the pure half: the ARKit -> VTube Studio parameter table, the JSON
requests, and the reading of replies. The WebSocket client is ``vtube_studio_client``.

**The table.** VTube Studio's input parameters are not the 52 ARKit shapes (MouthSmile,
MouthOpen, EyeOpenLeft, BrowLeftY ...), and its own iPhone mapping is closed source. Each row
below is one parameter as a linear sum of the frame's inputs (the 52 weights, then V, A, D),
clipped to the parameter's range, written in the mapping-row language of
``vadbridge.config`` (a config's ``mapping:`` list replaces, removes or adds rows). Rows marked
*community* are the formulas of xuan25/VTube-IFacial-Link (``ifacial/utils.py``), an open
iFacialMocap -> VTube Studio bridge; rows marked *ours* replace a formula a linear row cannot
express (a threshold, a product) or add a shape our model moves and theirs ignored
(docs/references.md, "VTube Studio").

**The hot path.** ``ParameterMap.apply`` is one (P, 55) matrix-vector product and a clip into
a buffer; ``InjectionTemplate.encode`` is one %-format of a string prepared once per
connection (the ids and the envelope never change). tests/test_outputs_vtube_studio.py times
the two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from vadbridge.config import (
    MAPPING_INPUT_INDEX,
    MAPPING_INPUTS,
    VAD_INPUTS,
    VtsMappingRow,
    custom_parameter_names,
    parse_mapping_row,
)

__all__ = [
    "API_NAME",
    "API_VERSION",
    "DEFAULT_MAPPING",
    "DEFAULT_MAPPING_TEXT",
    "INJECT_REQUEST_ID",
    "NUM_INPUTS",
    "PLUGIN_DEVELOPER",
    "CustomParameter",
    "InjectionTemplate",
    "ParameterMap",
    "Reply",
    "ReplyError",
    "authentication_request",
    "custom_parameters",
    "custom_rows",
    "is_token",
    "merge_mapping",
    "parameter_creation_request",
    "parse_reply",
    "request",
    "token_request",
]

API_NAME: Final = "VTubeStudioPublicAPI"
API_VERSION: Final = "1.0"
PLUGIN_DEVELOPER: Final = "vadbridge"  # with the plugin name, what the token belongs to
INJECT_REQUEST_ID: Final = "vadbridge-inject"
NUM_INPUTS: Final = len(MAPPING_INPUTS)  # 52 weights + valence, arousal, dominance

# Each row's origin (community, ours) is in the comment beside it; each row's range is
# VTube Studio's (config.vtube_studio.KNOWN_PARAMETER_RANGES).
DEFAULT_MAPPING_TEXT: Final[tuple[str, ...]] = (
    # community: MouthSmile = (smileL + smileR - 0.2 - shrug and brow-down terms) / 2 + 0.5.
    # ours: linear, the frown pulls below rest (0.5), and gain 0.35 puts the model's full
    # happiness smile (0.71 per side) at 1.
    "MouthSmile = 0.5 + 0.35*mouthSmileLeft + 0.35*mouthSmileRight - 0.35*mouthFrownLeft"
    " - 0.35*mouthFrownRight",  # ours (after the community's)
    "MouthOpen = 1.2*jawOpen - 1.2*mouthClose",  # community
    "MouthX = 2*mouthLeft - 2*mouthRight",  # community
    "Brows = 2*browInnerUp",  # community
    "BrowLeftY = 0.5 + browOuterUpLeft - browDownLeft",  # community
    "BrowRightY = 0.5 + browOuterUpRight - browDownRight",  # community
    # community: (1 - blink) * 1.25 - 0.25; ours: a squint narrows the eye a little (a Live2D
    # model's only lid is EyeOpen, and anger squints 0.55 without blinking).
    "EyeOpenLeft = 1 - 1.25*eyeBlinkLeft - 0.3*eyeSquintLeft",  # community + ours (squint)
    "EyeOpenRight = 1 - 1.25*eyeBlinkRight - 0.3*eyeSquintRight",  # community + ours (squint)
    "EyeLeftX = 1.5*eyeLookInLeft - 1.5*eyeLookOutLeft",  # community
    "EyeLeftY = 1.5*eyeLookUpLeft - 1.5*eyeLookDownLeft",  # community
    "EyeRightX = 1.5*eyeLookOutRight - 1.5*eyeLookInRight",  # community
    "EyeRightY = 1.5*eyeLookUpRight - 1.5*eyeLookDownRight",  # community
    "CheekPuff = 2*cheekPuff",  # community
    # community: 1 when tongueOut >= 0.4, else 0; ours: linear.
    "TongueOut = tongueOut",  # ours
    # community: 1 when mouthRollLower * mouthShrugLower >= 0.3; ours: lowered brows and pressed
    # lips, minus raised inner brows (sadness and fear lower the brows too). The model's anger
    # gives 1, disgust 0.38, sadness and fear 0.
    "FaceAngry = 0.5*browDownLeft + 0.5*browDownRight + 0.5*mouthPressLeft"
    " + 0.5*mouthPressRight - browInnerUp",  # ours
)
DEFAULT_MAPPING: Final = tuple(parse_mapping_row(text) for text in DEFAULT_MAPPING_TEXT)
"""The built-in table. Head pose (FaceAngle*, FacePosition*) is not sent: the model has none,
and an injected parameter overrides the webcam's tracking of it."""


def merge_mapping(overrides: Iterable[VtsMappingRow],
                  base: Sequence[VtsMappingRow] = DEFAULT_MAPPING) -> tuple[VtsMappingRow, ...]:
    """``base`` with each override replacing the row of its parameter (in place), removing it
    (``NAME = off``), or, for a new parameter, appended."""
    rows: dict[str, VtsMappingRow] = {row.parameter: row for row in base}
    for row in overrides:
        rows[row.parameter] = row
    return tuple(row for row in rows.values() if row.enabled)


@dataclass(frozen=True, slots=True)
class CustomParameter:
    """One custom parameter ``custom_parameters: true`` creates (its value is the input as is)."""

    name: str
    source: str  # the input it carries (an ARKit name or valence/arousal/dominance)
    low: float
    high: float

    @property
    def explanation(self) -> str:
        return f"vadbridge: {self.source} ({self.low:g}..{self.high:g})"  # < 256 chars


def custom_parameters() -> tuple[CustomParameter, ...]:
    """The 55 custom parameters, in input order: shapes 0..1, V/A/D -1..1."""
    return tuple(
        CustomParameter(name, source, *((-1.0, 1.0) if source in VAD_INPUTS else (0.0, 1.0)))
        for name, source in zip(custom_parameter_names(), MAPPING_INPUTS, strict=True)
    )


def custom_rows(parameters: Iterable[CustomParameter]) -> tuple[VtsMappingRow, ...]:
    """Each custom parameter as a mapping row: its input, unscaled, clipped to its range."""
    return tuple(VtsMappingRow(p.name, 0.0, ((p.source, 1.0),), p.low, p.high)
                 for p in parameters)




class ParameterMap:
    """Rows compiled to arrays: ``values = clip(coefficients @ inputs + offsets, low, high)``.

    ``inputs`` is (55,) float32: the frame's 52 weights (model order) then its VAD.
    """

    def __init__(self, rows: Sequence[VtsMappingRow]) -> None:
        self.ids: tuple[str, ...] = tuple(row.parameter for row in rows)
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"a parameter appears twice in {self.ids}")
        self.coefficients = np.zeros((len(rows), NUM_INPUTS), dtype=np.float32)
        for index, row in enumerate(rows):
            for name, coefficient in row.terms:
                self.coefficients[index, MAPPING_INPUT_INDEX[name]] = coefficient
        self.offsets = np.array([row.offset for row in rows], dtype=np.float32)
        self.low = np.array([row.low for row in rows], dtype=np.float32)
        self.high = np.array([row.high for row in rows], dtype=np.float32)

    def apply(self, inputs: npt.NDArray[np.float32], out: npt.NDArray[np.float32]) -> None:
        """Write the parameters' values for ``inputs`` into ``out`` (shape (P,))."""
        np.matmul(self.coefficients, inputs, out=out)
        out += self.offsets
        np.clip(out, self.low, self.high, out=out)
        if not np.isfinite(out).all():  # JSON has no NaN; the frame loop never sends one
            np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)

    def values(self, weights: npt.ArrayLike, vad: npt.ArrayLike = (0.0, 0.0, 0.0)
               ) -> dict[str, float]:
        """``{id: value}`` for one face (tests and tools; the client uses ``apply``)."""
        inputs = np.concatenate([np.asarray(weights, np.float32), np.asarray(vad, np.float32)])
        out = np.empty(len(self.ids), dtype=np.float32)
        self.apply(inputs, out)
        return dict(zip(self.ids, out.tolist(), strict=True))

    def __len__(self) -> int:
        return len(self.ids)


# --- requests ------------------------------------------------------------------------------------

def request(message_type: str, request_id: str, data: Mapping[str, Any] | None = None) -> str:
    """One request in the API's envelope (README, "API Details"), as JSON text."""
    message: dict[str, Any] = {"apiName": API_NAME, "apiVersion": API_VERSION,
                               "requestID": request_id, "messageType": message_type}
    if data is not None:
        message["data"] = dict(data)
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True)


def token_request(plugin_name: str, request_id: str) -> str:
    """Asks for a token; VTube Studio shows its Allow/Deny popup and answers when clicked."""
    return request("AuthenticationTokenRequest", request_id,
                   {"pluginName": plugin_name, "pluginDeveloper": PLUGIN_DEVELOPER})


def authentication_request(plugin_name: str, token: str, request_id: str) -> str:
    """Authenticates this connection (once per connection) with a token issued earlier."""
    return request("AuthenticationRequest", request_id,
                   {"pluginName": plugin_name, "pluginDeveloper": PLUGIN_DEVELOPER,
                    "authenticationToken": token})


def parameter_creation_request(parameter: CustomParameter, request_id: str) -> str:
    """Creates (or, for this plugin's own parameter, updates) a custom parameter."""
    return request("ParameterCreationRequest", request_id, {
        "parameterName": parameter.name, "explanation": parameter.explanation,
        "min": parameter.low, "max": parameter.high, "defaultValue": 0.0,
    })


class InjectionTemplate:
    """The ``InjectParameterDataRequest`` of a fixed list of ids, numbers to fill in.

    ``faceFound: true``: the bridge is the face, so VTube Studio must not play its
    "tracking lost" animation when no webcam sees one. ``mode: set``: the values replace
    the tracking's (while sent at least once a second).
    """

    def __init__(self, ids: Sequence[str]) -> None:
        if not ids:
            raise ValueError("nothing to inject")
        self.ids = tuple(ids)
        values = ",".join(f'{{"id":{json.dumps(i)},"value":%.4f}}' for i in self.ids)
        head = request("InjectParameterDataRequest", INJECT_REQUEST_ID,
                       {"faceFound": True, "mode": "set", "parameterValues": []})
        # The one place the list goes: its empty brackets in the prepared envelope.
        self._format = head.replace('"parameterValues":[]', f'"parameterValues":[{values}]')

    def encode(self, values: npt.NDArray[np.float32]) -> str:
        """The request for ``values`` (one per id, finite), rounded to 4 decimals."""
        return self._format % tuple(values.tolist())


# --- replies -------------------------------------------------------------------------------------

class ReplyError(Exception):
    """A message from the server that is not a reply we can read: ``kind`` is the counter
    key (``reply.json``, ``reply.shape``), ``reason`` says why (no message content)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Reply:
    message_type: str
    request_id: str | None
    data: Mapping[str, Any]

    @property
    def error_id(self) -> int | None:
        """An ``APIError``'s ``errorID`` (None for other replies or a missing id)."""
        if self.message_type != "APIError":
            return None
        error_id = self.data.get("errorID")
        return error_id if isinstance(error_id, int) and not isinstance(error_id, bool) else None

    @property
    def error_message(self) -> str:
        message = self.data.get("message")
        return message if isinstance(message, str) else ""


def parse_reply(text: str | bytes) -> Reply:
    """The envelope of one server message; ``ReplyError`` when it is not one.

    Unknown fields are ignored: the API adds fields without changing its version.
    """
    try:
        message = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ReplyError("reply.json", f"not JSON ({type(error).__name__})") from None
    if not isinstance(message, dict):
        raise ReplyError("reply.shape", "not a JSON object")
    message_type = message.get("messageType")
    data = message.get("data", {})
    request_id = message.get("requestID")
    if message.get("apiName") != API_NAME or not isinstance(message_type, str):
        raise ReplyError("reply.shape", "no apiName VTubeStudioPublicAPI and messageType")
    if data is None:
        data = {}
    if not isinstance(data, dict) or not (request_id is None or isinstance(request_id, str)):
        raise ReplyError("reply.shape", "data is not an object or requestID not a string")
    return Reply(message_type, request_id, data)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def is_token(value: object) -> bool:
    """An authentication token as the API describes it: ASCII, 1 to 64 characters (printable:
    it goes into a file and a JSON string)."""
    return (isinstance(value, str) and 0 < len(value) <= 64 and value.isascii()
            and value.isprintable())
