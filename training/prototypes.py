"""Emotion prototypes: EMFACS action units mapped to ARKit blendshapes, placed at the card's VAD.

Sources (docs/references.md):
- "Model card": the model card's basic-emotion VAD coordinates (authoritative, kept exactly).
- "EMFACS prototypes" (Ekman & Friesen): which action units (AUs) each basic emotion shows,
  with intensity letters A-E mapped to 0.2, 0.4, 0.6, 0.8, 1.0.
- "FACS to ARKit": FACS AU -> ARKit shape table (Meta Unity-Movement ``ARKitFace.cs``, VRCFT,
  ARKit-to-FACS).

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
        # 4+5+7+23: the lowered brow (E) dominates; the glare (5, 7) and pressed lips follow.
        "anger": (("", 4, "E"), ("", 5, "B"), ("", 7, "C"), ("", 23, "C")),
        # 9+15+16, with the common variant's 10 added weakly (B).
        "disgust": (("", 9, "D"), ("", 15, "C"), ("", 16, "B"), ("", 10, "B")),
        # R12A+R14A: unilateral; the generator mirrors half the samples, so the trained
        # (symmetric) model shows a faint bilateral smirk.
        "contempt": (("R", 12, "A"), ("R", 14, "A")),
    })
)  # fmt: skip

EMOTIONS: Final[tuple[str, ...]] = tuple(name for name in CARD_EMOTION_VAD if name != "neutral")


def prototype_face(emotion: str) -> npt.NDArray[np.float32]:
    """The (52,) ARKit face of ``emotion`` at intensity 1.0 from its EMFACS action units."""
    if emotion not in EMFACS_PROTOTYPES:
        known = ", ".join(EMFACS_PROTOTYPES)
        raise KeyError(f"unknown emotion {emotion!r}; known: {known}")
    face = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
    for side, action_unit, letter in EMFACS_PROTOTYPES[emotion]:
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
    """(K, 3) VAD and (K, 52) faces of the non-neutral emotions, in ``EMOTIONS`` order."""
    vad = np.array([CARD_EMOTION_VAD[name] for name in EMOTIONS], dtype=np.float32)
    faces = np.stack([prototype_face(name) for name in EMOTIONS])
    return vad, faces
