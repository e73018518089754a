"""Emotion prototypes: EMFACS action units mapped to ARKit blendshapes, placed at the card's VAD.

Sources (docs/references.md):
- "Model card": the model card's basic-emotion VAD coordinates (authoritative, kept exactly).
- "EMFACS prototypes" (Ekman & Friesen): which action units (AUs) each basic emotion shows,
  with intensity letters A-E mapped to 0.2, 0.4, 0.6, 0.8, 1.0.
- "FACS to ARKit": FACS AU -> ARKit shape table (Meta Unity-Movement ``ARKitFace.cs``, VRCFT,
  ARKit-to-FACS).
- "Calm states": the low-arousal anchors (boredom, sleepiness, relaxation, contentment), with
  their VAD from Russell & Mehrabian 1977, Russell 1980 and Gebhard 2005, and faces of lid droop
  and soft smiles; without them every low-arousal VAD got a sad face.

Where EMFACS names an AU without a letter, the letter here is our choice (stated per emotion) so
that the emotion's defining AUs are the strongest. A prototype is the face at intensity 1.0.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_INDEX, NUM_BLENDSHAPES

# docs/references.md, "Model card" (the card's table), in the card's order. Neutral is the origin.
CARD_EMOTION_VAD: Final[MappingProxyType[str, tuple[float, float, float]]] = MappingProxyType(
    {
        "neutral": (0.0, 0.0, 0.0),
        "happiness": (0.8, 0.6, 0.5),
        "surprise": (0.3, 0.9, 0.2),
        "sadness": (-0.8, -0.4, -0.3),
        "anger": (-0.7, 0.8, 0.7),
        "disgust": (-0.6, 0.3, 0.4),
        "fear": (-0.7, 0.8, -0.3),
        "contempt": (-0.4, 0.3, 0.8),
    }
)

# docs/references.md, "EMFACS prototypes": FACS intensity letters.
INTENSITY_LETTERS: Final[MappingProxyType[str, float]] = MappingProxyType(
    {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0}
)

# docs/references.md, "FACS to ARKit": AU -> ARKit shapes with a factor (1.0 unless the AU only
# approximates a shape).
# "L"/"R"-suffixed pairs are written by stem; a unilateral AU ("R12") keeps only one side.
AU_TO_ARKIT: Final[MappingProxyType[int, tuple[tuple[str, float], ...]]] = MappingProxyType(
    {
        1: (("browInnerUp", 1.0),),
        2: (("browOuterUpLeft", 1.0), ("browOuterUpRight", 1.0)),
        4: (("browDownLeft", 1.0), ("browDownRight", 1.0)),
        5: (("eyeWideLeft", 1.0), ("eyeWideRight", 1.0)),
        6: (("cheekSquintLeft", 1.0), ("cheekSquintRight", 1.0)),
        7: (("eyeSquintLeft", 1.0), ("eyeSquintRight", 1.0)),
        9: (("noseSneerLeft", 1.0), ("noseSneerRight", 1.0)),
        10: (("mouthUpperUpLeft", 1.0), ("mouthUpperUpRight", 1.0)),
        12: (("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0)),
        14: (("mouthDimpleLeft", 1.0), ("mouthDimpleRight", 1.0)),
        15: (("mouthFrownLeft", 1.0), ("mouthFrownRight", 1.0)),
        16: (("mouthLowerDownLeft", 1.0), ("mouthLowerDownRight", 1.0)),
        17: (("mouthShrugLower", 1.0), ("mouthShrugUpper", 0.5)),
        20: (("mouthStretchLeft", 1.0), ("mouthStretchRight", 1.0)),
        # AU23 (lip tightener) has no ARKit shape; the table approximates it with mouthPress.
        23: (("mouthPressLeft", 0.8), ("mouthPressRight", 0.8)),
        26: (("jawOpen", 1.0),),
        8: (("mouthClose", 1.0),),
        # AU41 (lid droop) has no ARKit shape: a droop is a partial closure of the upper lid.
        41: (("eyeBlinkLeft", 0.8), ("eyeBlinkRight", 0.8)),
        43: (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)),
    }
)

# docs/references.md, "EMFACS prototypes", as (side, AU, letter); side "" = bilateral, "R" = right
# side only.
EMFACS_PROTOTYPES: Final[MappingProxyType[str, tuple[tuple[str, int, str], ...]]] = (
    MappingProxyType({
        "neutral": (),
        # 6+12. Letters ours: a full (D) Duchenne smile.
        "happiness": (("", 6, "D"), ("", 12, "D")),
        # 1+4+15. Brow lowerer weaker (B) so the oblique inner-brow raise reads.
        "sadness": (("", 1, "D"), ("", 4, "B"), ("", 15, "D")),
        # 1+2+5B+26 (5B as published; 26 at C).
        "surprise": (("", 1, "D"), ("", 2, "D"), ("", 5, "B"), ("", 26, "C")),
        # 1+2+4+5+7+20+26; 7 at A since some versions omit it.
        "fear": (
            ("", 1, "D"), ("", 2, "C"), ("", 4, "B"), ("", 5, "D"), ("", 7, "A"),
            ("", 20, "C"), ("", 26, "B"),
        ),
        # 4+5+7+23: the lowered brow (D) dominates; the glare (5, 7) and pressed lips follow.
        # D, not E: anger lies 18 degrees from disgust (see disgust).
        "anger": (("", 4, "D"), ("", 5, "B"), ("", 7, "C"), ("", 23, "C")),
        # 9+15+16, with the common variant's 10 and the lowered brow of "Unmasking the Face"
        # (4B), all at B: disgust lies 18 degrees from anger and 28 from contempt in the card's
        # VAD, only 0.78 from neutral, and stronger units switch on within one 0.1 VAD step
        # (the blend's largest step falls from 0.226 to 0.196; the trained model's steps run
        # ~10 % above its data's).
        "disgust": (("", 9, "B"), ("", 15, "B"), ("", 16, "B"), ("", 10, "B"), ("", 4, "B")),
        # R12A+R14A is one-sided; a symmetric model can only show it on both sides, and a faint
        # bilateral smirk could not be told from neutral. So the dimpler is raised to C on both
        # sides and the lip-corner pull kept at A. C, not D: contempt lies 25-28 degrees from
        # anger and disgust, and a stronger dimple would switch on within one 0.1 grid step.
        "contempt": (("", 14, "C"), ("", 12, "A")),
    })
)  # fmt: skip

# docs/references.md, "Calm states": low-arousal anchors the training data needs besides the
# card's basics (the model card has none below arousal -0.4). VAD with its source; the face as
# (side, AU, letter) like EMFACS_PROTOTYPES.
CALM_STATE_VAD: Final[MappingProxyType[str, tuple[float, float, float]]] = MappingProxyType({
    "boredom": (-0.65, -0.62, -0.33),  # Russell & Mehrabian 1977, as widely reproduced
    "sleepiness": (0.0, -0.8, 0.0),  # Russell 1980: sleepiness at 270 degrees (radius, D ours)
    "relaxation": (0.57, -0.57, 0.0),  # Russell 1980: relaxation at 315 degrees (same)
    "contentment": (0.3, -0.2, 0.4),  # Gebhard 2005 (ALMA): satisfaction
})  # fmt: skip
CALM_STATE_FACES: Final[MappingProxyType[str, tuple[tuple[str, int, str], ...]]] = (
    MappingProxyType({
        # Heavy lids (AU41), a weak sad brow and mouth (boredom lies 16 degrees from sadness:
        # sharing some of its face keeps the glide between them gentle), a slack jaw with the
        # lips together.
        "boredom": (("", 41, "C"), ("", 1, "B"), ("", 15, "B"), ("", 26, "A"), ("", 8, "A")),
        # Lids mostly closed (AU43), slack jaw, lips together.
        "sleepiness": (("", 43, "C"), ("", 26, "A"), ("", 8, "A")),
        # A soft, non-Duchenne smile (12B without 6) and relaxed lids.
        "relaxation": (("", 12, "B"), ("", 43, "A")),
        # A soft Duchenne smile: 12B with a trace of 6.
        "contentment": (("", 12, "B"), ("", 6, "A")),
    })
)  # fmt: skip

EMOTIONS: Final[tuple[str, ...]] = tuple(name for name in CARD_EMOTION_VAD if name != "neutral")
CALM_STATES: Final[tuple[str, ...]] = tuple(CALM_STATE_VAD)
ANCHORS: Final[tuple[str, ...]] = (*EMOTIONS, *CALM_STATES)  # every non-neutral face we blend
_ACTION_UNITS = MappingProxyType({**EMFACS_PROTOTYPES, **CALM_STATE_FACES})
_ANCHOR_VAD = MappingProxyType({**CARD_EMOTION_VAD, **CALM_STATE_VAD})


def action_unit_shapes(emotion: str) -> frozenset[str]:
    """The ARKit shapes of ``emotion``'s action units (both sides of a bilateral AU)."""
    return frozenset(
        shape for _side, action_unit, _letter in _ACTION_UNITS[emotion]
        for shape, _factor in AU_TO_ARKIT[action_unit]
    )


def prototype_face(emotion: str) -> npt.NDArray[np.float32]:
    """The (52,) ARKit face of ``emotion`` (a basic emotion or a calm state) at intensity 1.0."""
    if emotion not in _ACTION_UNITS:
        known = ", ".join(_ACTION_UNITS)
        raise KeyError(f"unknown emotion {emotion!r}; known: {known}")
    face = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
    for side, action_unit, letter in _ACTION_UNITS[emotion]:
        value = INTENSITY_LETTERS[letter]
        for shape, factor in AU_TO_ARKIT[action_unit]:
            if side == "R" and shape.endswith("Left"):
                continue
            if side == "L" and shape.endswith("Right"):
                continue
            index = ARKIT_INDEX[shape]
            face[index] = max(face[index], value * factor)
    return face


def prototype_matrix() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(K, 3) VAD and (K, 52) faces of every anchor, in ``ANCHORS`` order."""
    vad = np.array([_ANCHOR_VAD[name] for name in ANCHORS], dtype=np.float32)
    faces = np.stack([prototype_face(name) for name in ANCHORS])
    return vad, faces
