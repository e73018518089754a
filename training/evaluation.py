"""How crisp a checkpoint's faces are: the figures of issue 13, for any model, side by side.

Everything is measured on symmetric faces (``enforce_symmetry`` after ``predict``) at the model
card's VAD coordinates (docs/references.md, "Model card") and over the 21^3 grid of the VAD cube
(step 0.1). Pure numpy: ``evaluate`` takes any function from (N, 3) VAD to (N, 52) weights, so
the noiseless training blend (``generator.blend_faces``) can be measured the same way as a model.

The figures (``vadbridge evaluate`` prints them; model/README.md has v1 against v2):

- **neutral**: the largest weight and the sum of all 52 at (0, 0, 0);
- **per basic emotion**: the share of the total activation in its action-unit shapes
  (``prototypes.action_unit_shapes``), how many shapes exceed 0.05, the largest other shape,
  eyeBlink, and whether its defining shapes (prototype weight >= 0.4, letter B or stronger) are
  its strongest at intensities 0.25, 0.5 and 1;
- **contempt at 0.5**: nearer (Euclidean, 52-d) to full contempt than to neutral;
- **boredom** (-0.65, -0.62, -0.33): cosine similarity with sadness and eyeBlink;
- **cube**: the largest jawLeft/Right and mouthLeft/Right, grid points where eyeLookIn and Out
  (or Up and Down) are both above 0.02, the largest tongueOut, the largest single-shape change
  between neighbouring grid points and where, shapes that vary by less than 0.01 over the cube
  (and of those, how many sit above 0.02: stuck on), and the mean weight of shapes the noiseless
  blend keeps at 0 (the haze).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_INDEX, ARKIT_NAMES, NUM_BLENDSHAPES
from vadbridge.training.generator import blend_faces
from vadbridge.training.prototypes import (
    CALM_STATE_VAD,
    CARD_EMOTION_VAD,
    EMOTIONS,
    action_unit_shapes,
    prototype_face,
)

FaceFunction = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]

GRID_STEPS = 21  # -1.0, -0.9, ..., 1.0
SHOWN = 0.05  # a shape above this is visible
BOTH_ON = 0.02  # two opposite shapes above this at once contradict each other
FLAT_RANGE = 0.01  # a shape whose range over the cube is below this never moves
DEFINING_WEIGHT = 0.4  # prototype weight of a defining shape (FACS letter B or stronger)
INTENSITIES = (0.25, 0.5, 1.0)
LATERAL = ("jawLeft", "jawRight", "mouthLeft", "mouthRight")
OPPOSED_GAZE = (("eyeLookIn", "eyeLookOut"), ("eyeLookUp", "eyeLookDown"))


Point = tuple[float, float, float]


@dataclass(frozen=True)
class EmotionFigures:
    emotion: str
    own_share: float  # of the total activation, in the emotion's action-unit shapes
    total: float
    shapes_shown: int  # shapes above SHOWN
    other_max: float  # the largest shape outside the action-unit shapes
    other_max_shape: str
    eye_blink: float
    defining_on_top: tuple[bool, ...]  # at each of INTENSITIES


@dataclass(frozen=True)
class Evaluation:
    neutral_max: float
    neutral_max_shape: str
    neutral_total: float
    emotions: tuple[EmotionFigures, ...]
    contempt_half_to_full: float
    contempt_half_to_neutral: float
    boredom_sadness_cosine: float
    boredom_eye_blink: float
    lateral_max: float
    gaze_in_out_both_on: int  # grid points (of 21^3) with eyeLookIn and Out both > BOTH_ON
    gaze_up_down_both_on: int
    tongue_out_max: float
    max_step: float
    max_step_shape: str
    max_step_from: Point
    max_step_to: Point
    flat_shapes: int
    stuck_on_shapes: int  # flat shapes resting above BOTH_ON
    haze: float  # mean weight where the noiseless blend is exactly 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cube_grid(steps: int = GRID_STEPS) -> npt.NDArray[np.float32]:
    """(steps, steps, steps, 3) VAD points of the cube, valence on the first axis."""
    axis = np.linspace(-1.0, 1.0, steps)
    grid: npt.NDArray[np.float32] = np.stack(
        np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1
    ).astype(np.float32)
    return grid


def _both_sides(stem: str) -> tuple[int, int]:
    return ARKIT_INDEX[stem + "Left"], ARKIT_INDEX[stem + "Right"]


def _emotion_figures(face_of: FaceFunction, emotion: str) -> EmotionFigures:
    vad = np.asarray(CARD_EMOTION_VAD[emotion], dtype=np.float32)
    faces = face_of(np.stack([vad * i for i in INTENSITIES]).astype(np.float32))
    full = faces[INTENSITIES.index(1.0)]
    own = np.zeros(NUM_BLENDSHAPES, dtype=bool)
    own[[ARKIT_INDEX[name] for name in action_unit_shapes(emotion)]] = True
    total = float(full.sum())
    other = np.where(own, 0.0, full)
    prototype = prototype_face(emotion)
    defining = set(np.flatnonzero(prototype >= DEFINING_WEIGHT - 1e-6).tolist())
    on_top = []
    for face in faces:
        # A stable sort keeps the two sides of a pair (equal after enforce_symmetry) together.
        strongest = set(np.argsort(-face, kind="stable")[: len(defining)].tolist())
        on_top.append(strongest == defining)
    blink = ARKIT_INDEX["eyeBlinkLeft"]
    return EmotionFigures(
        emotion=emotion,
        own_share=float(full[own].sum() / total) if total > 0 else 0.0,
        total=total,
        shapes_shown=int((full > SHOWN).sum()),
        other_max=float(other.max()),
        other_max_shape=ARKIT_NAMES[int(other.argmax())],
        eye_blink=float(full[blink]),
        defining_on_top=tuple(on_top),
    )


def _point(values: np.ndarray) -> Point:
    return (round(float(values[0]), 2), round(float(values[1]), 2), round(float(values[2]), 2))


def _largest_step(cube: np.ndarray, grid: np.ndarray) -> tuple[float, str, Point, Point]:
    best: tuple[float, str, Point, Point] = (-1.0, "", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    for axis in range(3):
        steps = np.abs(np.diff(cube, axis=axis))
        where = np.unravel_index(int(steps.argmax()), steps.shape)
        if steps[where] > best[0]:
            start = where[:3]
            end = tuple(i + (1 if a == axis else 0) for a, i in enumerate(start))
            best = (
                float(steps[where]),
                ARKIT_NAMES[int(where[3])],
                _point(grid[start]),
                _point(grid[end]),
            )
    return best


def evaluate(face_of: FaceFunction) -> Evaluation:
    """Every figure for the symmetric faces ``face_of`` gives (see the module docstring)."""
    neutral = face_of(np.zeros((1, 3), dtype=np.float32))[0]
    emotions = tuple(_emotion_figures(face_of, emotion) for emotion in EMOTIONS)

    contempt = np.asarray(CARD_EMOTION_VAD["contempt"], dtype=np.float32)
    half, full = face_of(np.stack([contempt * 0.5, contempt]))
    bored, sad = face_of(
        np.array([CALM_STATE_VAD["boredom"], CARD_EMOTION_VAD["sadness"]], dtype=np.float32)
    )
    cosine = float(bored @ sad / max(np.linalg.norm(bored) * np.linalg.norm(sad), 1e-12))

    grid = cube_grid()
    cube = face_of(grid.reshape(-1, 3)).reshape(*grid.shape[:3], NUM_BLENDSHAPES)
    flat = cube.reshape(-1, NUM_BLENDSHAPES)
    lateral = [ARKIT_INDEX[name] for name in LATERAL]

    def both_on(first: str, second: str) -> int:
        on = np.zeros(len(flat), dtype=bool)
        for a, b in zip(_both_sides(first), _both_sides(second), strict=True):
            on |= (flat[:, a] > BOTH_ON) & (flat[:, b] > BOTH_ON)
        return int(on.sum())

    step, step_shape, step_from, step_to = _largest_step(cube, grid)
    ranges = flat.max(axis=0) - flat.min(axis=0)
    is_flat = ranges < FLAT_RANGE
    resting = blend_faces(grid.reshape(-1, 3)) == 0.0
    return Evaluation(
        neutral_max=float(neutral.max()),
        neutral_max_shape=ARKIT_NAMES[int(neutral.argmax())],
        neutral_total=float(neutral.sum()),
        emotions=emotions,
        contempt_half_to_full=float(np.linalg.norm(half - full)),
        contempt_half_to_neutral=float(np.linalg.norm(half - neutral)),
        boredom_sadness_cosine=cosine,
        boredom_eye_blink=float(bored[ARKIT_INDEX["eyeBlinkLeft"]]),
        lateral_max=float(flat[:, lateral].max()),
        gaze_in_out_both_on=both_on(*OPPOSED_GAZE[0]),
        gaze_up_down_both_on=both_on(*OPPOSED_GAZE[1]),
        tongue_out_max=float(flat[:, ARKIT_INDEX["tongueOut"]].max()),
        max_step=step,
        max_step_shape=step_shape,
        max_step_from=step_from,
        max_step_to=step_to,
        flat_shapes=int(is_flat.sum()),
        stuck_on_shapes=int((is_flat & (flat.mean(axis=0) > BOTH_ON)).sum()),
        haze=float(flat[resting].mean()) if resting.any() else 0.0,
    )


def _percent(value: float) -> str:
    return f"{100 * value:.0f} %"


def figure_rows(evaluation: Evaluation) -> list[tuple[str, str]]:
    """(figure, value) lines for one evaluation, in the order ``table`` shows them."""
    e = evaluation
    on_top_at = "/".join(f"{i:g}" for i in INTENSITIES)
    rows = [
        ("neutral: largest shape", f"{e.neutral_max:.3f} ({e.neutral_max_shape})"),
        ("neutral: total of 52", f"{e.neutral_total:.2f}"),
    ]
    for f in e.emotions:
        on_top = "/".join("yes" if ok else "no" for ok in f.defining_on_top)
        rows += [
            (f"{f.emotion}: share in its AU shapes", _percent(f.own_share)),
            (f"{f.emotion}: largest other shape", f"{f.other_max:.3f} ({f.other_max_shape})"),
            (f"{f.emotion}: shapes > {SHOWN}", str(f.shapes_shown)),
            (f"{f.emotion}: eyeBlink", f"{f.eye_blink:.3f}"),
            (f"{f.emotion}: defining AUs strongest at {on_top_at}", on_top),
        ]
    rows += [
        ("contempt 0.5: distance to full / to neutral",
         f"{e.contempt_half_to_full:.3f} / {e.contempt_half_to_neutral:.3f}"),
        ("boredom: cosine with sadness", f"{e.boredom_sadness_cosine:.2f}"),
        ("boredom: eyeBlink", f"{e.boredom_eye_blink:.3f}"),
        ("cube: largest jaw/mouth Left/Right", f"{e.lateral_max:.3f}"),
        (f"cube: points with eyeLookIn and Out > {BOTH_ON}", str(e.gaze_in_out_both_on)),
        (f"cube: points with eyeLookUp and Down > {BOTH_ON}", str(e.gaze_up_down_both_on)),
        ("cube: largest tongueOut", f"{e.tongue_out_max:.3f}"),
        ("cube: largest change between neighbours",
         f"{e.max_step:.3f} ({e.max_step_shape}, {e.max_step_from} -> {e.max_step_to})"),
        (f"cube: shapes varying < {FLAT_RANGE} (of them stuck > {BOTH_ON})",
         f"{e.flat_shapes} ({e.stuck_on_shapes})"),
        ("cube: mean of shapes the blend keeps at 0 (haze)", f"{e.haze:.4f}"),
    ]  # fmt: skip
    return rows


def table(evaluations: Mapping[str, Evaluation]) -> str:
    """A Markdown table: one row per figure, one column per evaluated model."""
    columns = [figure_rows(evaluation) for evaluation in evaluations.values()]
    header = "| figure | " + " | ".join(evaluations) + " |"
    rule = "|---|" + "---|" * len(evaluations)
    body = [
        "| " + " | ".join([cells[0][0], *(value for _label, value in cells)]) + " |"
        for cells in zip(*columns, strict=True)
    ]
    return "\n".join([header, rule, *body])
