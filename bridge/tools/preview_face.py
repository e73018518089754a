"""A cartoon face as pure geometry: the 52 ARKit weights -> brow, eye, mouth, cheek and nose shapes.

No drawing here (that is bridge/tools/preview_draw.py), so every rule can be tested on numbers. The
face lives in a box x in [-1, 1], y in [-1.25, 1.1], y up, origin between the cheeks. It is
drawn as seen from the front, so the subject's *left* (ARKit ``...Left``) is on the viewer's
right, at x > 0 (ARKit names sides from the subject's point of view: reference/arkit.md).

The rules are caricature, not anatomy: each shape moves the feature its ARKit name describes,
by an amount large enough to read at thumbnail size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_INDEX, NUM_BLENDSHAPES

Points = npt.NDArray[np.float64]  # (K, 2) polyline, x then y
SIDES: Mapping[str, float] = {"Left": 1.0, "Right": -1.0}  # subject's side -> sign of x

_CURVE_POINTS = 25
BROW_Y = 0.5
EYE_Y, EYE_X, EYE_HALF_WIDTH = 0.22, 0.36, 0.17
EYE_OPEN_UP, EYE_OPEN_DOWN = 0.085, 0.06  # neutral lid heights above/below the eye line
IRIS_RADIUS = 0.062
MOUTH_Y, MOUTH_HALF_WIDTH = -0.5, 0.27
CHEEK_X, CHEEK_Y, CHEEK_RADIUS = 0.56, -0.18, 0.12
NOSE_Y = -0.12


@dataclass(frozen=True)
class Eye:
    upper_lid: Points  # corner to corner, inner corner first
    lower_lid: Points
    iris_centre: tuple[float, float]
    iris_radius: float
    opening: float  # lid gap at the middle of the eye; 0 = closed


@dataclass(frozen=True)
class Mouth:
    upper_lip: Points  # from the subject's right corner (x < 0) to the left corner
    lower_lip: Points
    opening: float  # gap between the lips at the middle
    width: float  # corner to corner
    corner_lift: tuple[float, float]  # (right, left) corner height above MOUTH_Y
    tongue: float  # 0..1: how far the tongue shows


@dataclass(frozen=True)
class Cheek:
    centre: tuple[float, float]
    radius: float
    blush: float  # 0..1 opacity of the cheek colour


@dataclass(frozen=True)
class FaceGeometry:
    outline: Points  # closed head outline
    brows: tuple[Points, Points]  # (right, left): inner, middle, outer points
    eyes: tuple[Eye, Eye]  # (right, left)
    mouth: Mouth
    cheeks: tuple[Cheek, Cheek]  # (right, left)
    sneer_lines: tuple[Points, Points]  # (right, left); empty (0, 2) arrays when not sneering
    nose: Points


class _Weights:
    """Read weights by ARKit name, with ``side`` filling in ``Left``/``Right``."""

    def __init__(self, weights: npt.ArrayLike) -> None:
        array = np.asarray(weights, dtype=np.float64)
        if array.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected 52 blendshape weights, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("blendshape weights contain NaN or infinite values")
        self._array = np.clip(array, 0.0, 1.0)

    def __call__(self, name: str, side: str = "") -> float:
        return float(self._array[ARKIT_INDEX[name + side]])


def face_geometry(weights: npt.ArrayLike) -> FaceGeometry:
    """The face for one (52,) weight vector in ``ARKIT_NAMES`` order (values clipped to [0, 1])."""
    w = _Weights(weights)
    return FaceGeometry(
        outline=head_outline(w("jawOpen"), w("cheekPuff")),
        brows=(brow(w, "Right"), brow(w, "Left")),
        eyes=(eye(w, "Right"), eye(w, "Left")),
        mouth=mouth(w),
        cheeks=(cheek(w, "Right"), cheek(w, "Left")),
        sneer_lines=(
            sneer_line(w("noseSneer", "Right"), SIDES["Right"]),
            sneer_line(w("noseSneer", "Left"), SIDES["Left"]),
        ),
        nose=nose(w("noseSneerLeft"), w("noseSneerRight")),
    )


def head_outline(jaw_open: float, cheek_puff: float) -> Points:
    """An egg shape; the chin drops with the jaw and the lower face widens when cheeks puff."""
    angle = np.linspace(0.0, 2.0 * np.pi, 4 * _CURVE_POINTS, endpoint=True)
    x, y = np.cos(angle), np.sin(angle)
    below = np.maximum(-y, 0.0)  # 0 at and above the widest line, 1 at the chin
    half_width = 0.82 + 0.1 * cheek_puff * np.sqrt(below)
    height = np.where(y < 0, 1.0 + 0.18 * jaw_open, 1.05)
    return np.column_stack((x * half_width, y * height))


def brow(w: _Weights, side: str) -> Points:
    """Inner, middle, outer point. Down pulls the inner end down and in (a frown)."""
    sign = SIDES[side]
    down, inner_up, outer_up = w("browDown", side), w("browInnerUp"), w("browOuterUp", side)
    inner = (sign * (0.14 - 0.04 * down), BROW_Y + 0.16 * inner_up - 0.12 * down)
    outer = (sign * 0.56, BROW_Y - 0.03 + 0.15 * outer_up - 0.05 * down)
    middle = (sign * 0.35, (inner[1] + outer[1]) / 2.0 + 0.05 + 0.03 * outer_up - 0.02 * down)
    return np.array([inner, middle, outer], dtype=np.float64)


def eye(w: _Weights, side: str) -> Eye:
    """Lids from blink, wide and squint (cheek squint pushes the lower lid up); iris from gaze."""
    sign = SIDES[side]
    blink, wide, squint = w("eyeBlink", side), w("eyeWide", side), w("eyeSquint", side)
    open_fraction = 1.0 - blink
    up = max(0.0, EYE_OPEN_UP + 0.06 * wide - 0.035 * squint) * open_fraction
    down = max(0.0, EYE_OPEN_DOWN + 0.02 * wide - 0.035 * squint - 0.02 * w("cheekSquint", side))
    down *= open_fraction
    centre_x = sign * EYE_X
    t = np.linspace(-1.0, 1.0, _CURVE_POINTS) * -sign  # inner corner (nearest x = 0) first
    x = centre_x + t * EYE_HALF_WIDTH
    bulge = 1.0 - t**2
    upper = np.column_stack((x, EYE_Y + up * bulge))
    lower = np.column_stack((x, EYE_Y - down * bulge))
    # Looking "out" turns the eye towards the subject's own side, "in" towards the nose.
    gaze_x = sign * 0.08 * (w("eyeLookOut", side) - w("eyeLookIn", side))
    gaze_y = 0.05 * (w("eyeLookUp", side) - w("eyeLookDown", side))
    return Eye(
        upper_lid=upper,
        lower_lid=lower,
        iris_centre=(centre_x + gaze_x, EYE_Y + gaze_y),
        iris_radius=IRIS_RADIUS,
        opening=up + down,
    )


def mouth(w: _Weights) -> Mouth:
    """Corners from smile/frown/stretch/dimple; width from pucker/funnel; opening from the jaw.

    The lips are two curves between the corners: ``middle(t)`` bends from the mouth centre to
    the corners (a smile is a U), the upper lip rises above it with ``mouthUpperUp`` and the
    lower lip drops below it with ``jawOpen`` and ``mouthLowerDown``.
    """
    lift, reach = {}, {}
    for side in SIDES:
        lift[side] = (
            0.13 * w("mouthSmile", side)
            - 0.11 * w("mouthFrown", side)
            - 0.02 * w("mouthStretch", side)
            + 0.02 * w("mouthDimple", side)
        )
        reach[side] = MOUTH_HALF_WIDTH * (
            1.0
            + 0.3 * w("mouthStretch", side)
            + 0.12 * w("mouthSmile", side)
            + 0.08 * w("mouthDimple", side)
            - 0.04 * w("mouthPress", side)
        )
    rounding = max(w("mouthPucker"), 0.7 * w("mouthFunnel"))
    narrow = 1.0 - 0.45 * rounding
    shift = 0.08 * (w("mouthLeft") - w("mouthRight")) + 0.05 * (w("jawLeft") - w("jawRight"))
    t = np.linspace(-1.0, 1.0, _CURVE_POINTS)  # -1 = the subject's right corner
    s = (t + 1.0) / 2.0  # 0 at the right corner, 1 at the left
    x = shift + np.where(t < 0, reach["Right"], reach["Left"]) * t * narrow
    corner_y = (1.0 - s) * lift["Right"] + s * lift["Left"]
    middle = MOUTH_Y + corner_y * t**2
    # A rounded (funnel/pucker) mouth has lips that bulge over more of their length.
    power = 2.0 - 0.8 * rounding
    bulge = 1.0 - np.abs(t) ** power
    upper_up = (1.0 - s) * w("mouthUpperUpRight") + s * w("mouthUpperUpLeft")
    lower_down = (1.0 - s) * w("mouthLowerDownRight") + s * w("mouthLowerDownLeft")
    jaw = 0.3 * w("jawOpen") * (1.0 - w("mouthClose"))
    # Pucker and funnel push the lips forward: from the front they read as a small round mouth.
    pout = 0.025 * w("mouthPucker") + 0.03 * w("mouthFunnel")
    upper_gap = 0.008 + 0.07 * upper_up + pout + 0.015 * w("mouthShrugUpper")
    upper_gap -= 0.006 * w("mouthRollUpper")
    lower_gap = 0.008 + jaw + 0.07 * lower_down + pout + 0.01 * w("mouthFunnel")
    lower_gap -= 0.02 * w("mouthShrugLower") + 0.006 * w("mouthRollLower")
    upper_gap = np.maximum(upper_gap, 0.0)
    lower_gap = np.maximum(lower_gap, 0.0)
    upper = np.column_stack((x, middle + upper_gap * bulge))
    lower = np.column_stack((x, middle - lower_gap * bulge))
    centre = _CURVE_POINTS // 2
    return Mouth(
        upper_lip=upper,
        lower_lip=lower,
        opening=float(upper[centre, 1] - lower[centre, 1]),
        width=float(x[-1] - x[0]),
        corner_lift=(lift["Right"], lift["Left"]),
        tongue=w("tongueOut"),
    )


def cheek(w: _Weights, side: str) -> Cheek:
    """Squint lifts and colours the cheek; puff makes it bigger."""
    sign = SIDES[side]
    squint, puff = w("cheekSquint", side), w("cheekPuff")
    return Cheek(
        centre=(sign * (CHEEK_X + 0.04 * puff), CHEEK_Y + 0.05 * squint),
        radius=CHEEK_RADIUS * (1.0 + 0.4 * puff),
        blush=min(1.0, 0.12 + 0.45 * squint + 0.25 * puff),
    )


def sneer_line(amount: float, sign: float) -> Points:
    """A crease from the nostril up towards the inner eye, as long as the sneer is strong."""
    if amount < 0.02:
        return np.empty((0, 2), dtype=np.float64)
    start = np.array([sign * 0.11, NOSE_Y + 0.02])
    direction = np.array([sign * 0.35, 1.0]) / np.hypot(0.35, 1.0)
    return np.array([start, start + direction * 0.16 * amount], dtype=np.float64)


def nose(sneer_left: float, sneer_right: float) -> Points:
    """The nose bottom as a shallow V; each wing rises with its side's sneer."""
    return np.array(
        [
            (-0.1, NOSE_Y + 0.03 + 0.04 * sneer_right),
            (0.0, NOSE_Y - 0.02),
            (0.1, NOSE_Y + 0.03 + 0.04 * sneer_left),
        ],
        dtype=np.float64,
    )
