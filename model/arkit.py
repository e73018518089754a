"""ARKit's 52 face blendshapes: names in the model's order, mirror pairs, symmetry.

The order is Apple's ARFaceAnchor.BlendShapeLocation names sorted alphabetically, which is the
order of the model card's output vector (docs/references.md, "ARKit blendshapes"). Mirror pairs
are derived from the names (a ``...Left`` name pairs with the same stem ending in ``Right``),
never typed as indices.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)  # fmt: skip
NUM_BLENDSHAPES = len(ARKIT_NAMES)
ARKIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_NAMES)}


def _derive_mirror_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        if name.endswith("Left"):
            pairs.append((i, index[name[: -len("Left")] + "Right"]))
    return tuple(pairs)


MIRROR_PAIRS: tuple[tuple[int, int], ...] = _derive_mirror_pairs(ARKIT_NAMES)
LEFT_INDICES: npt.NDArray[np.intp] = np.array([left for left, _ in MIRROR_PAIRS], dtype=np.intp)
RIGHT_INDICES: npt.NDArray[np.intp] = np.array([right for _, right in MIRROR_PAIRS], dtype=np.intp)
CENTER_INDICES: npt.NDArray[np.intp] = np.array(
    sorted(set(range(NUM_BLENDSHAPES)) - set(LEFT_INDICES) - set(RIGHT_INDICES)), dtype=np.intp
)

# MIRROR_PERMUTATION[i] is the index whose value lands at i when a face is mirrored.
MIRROR_PERMUTATION: npt.NDArray[np.intp] = np.arange(NUM_BLENDSHAPES, dtype=np.intp)
MIRROR_PERMUTATION[LEFT_INDICES] = RIGHT_INDICES
MIRROR_PERMUTATION[RIGHT_INDICES] = LEFT_INDICES
MIRROR_PERMUTATION.setflags(write=False)


def upper_camel(name: str) -> str:
    """``browInnerUp`` -> ``BrowInnerUp``: the casing of Live Link Face and VMC perfect sync."""
    return name[:1].upper() + name[1:]


def _check_shape(blendshapes: npt.ArrayLike) -> np.ndarray:
    array = np.asarray(blendshapes)
    if array.shape[-1:] != (NUM_BLENDSHAPES,) or array.ndim not in (1, 2):
        raise ValueError(f"expected blendshapes of shape (52,) or (N, 52), got {array.shape}")
    return array


def mirror(blendshapes: npt.ArrayLike) -> np.ndarray:
    """Swap every Left/Right pair; returns a new array of the same shape. mirror(mirror(x)) == x."""
    array = _check_shape(blendshapes)
    return array[..., MIRROR_PERMUTATION].copy()


def enforce_symmetry(blendshapes: npt.ArrayLike) -> np.ndarray:
    """Set each Left/Right pair to the mean of the two; returns a new array.

    Left and right come out bit-for-bit equal (one mean is computed and written to both).
    """
    array = _check_shape(blendshapes)
    out = np.array(array, dtype=np.result_type(array.dtype, np.float32), copy=True)
    symmetrize_inplace(out)
    return out


def symmetrize_inplace(
    blendshapes: np.ndarray,
    *,
    left: np.ndarray | None = None,
    right: np.ndarray | None = None,
) -> None:
    """In-place ``enforce_symmetry`` for the frame loop (no new array for the result).

    ``left`` and ``right``, given together, are scratch of ``blendshapes[..., LEFT_INDICES]``'s
    shape and type, so a frame allocates nothing; the mean is the same float arithmetic (the
    same bits) either way.
    """
    if left is None and right is None:
        mean = (blendshapes[..., LEFT_INDICES] + blendshapes[..., RIGHT_INDICES]) * 0.5
    elif left is not None and right is not None:
        # The array method: numpy's ``np.take`` wrapper costs microseconds a call.
        mean = blendshapes.take(LEFT_INDICES, axis=-1, out=left, mode="clip")
        mean += blendshapes.take(RIGHT_INDICES, axis=-1, out=right, mode="clip")
        mean *= 0.5
    else:
        raise ValueError("symmetrize_inplace takes both scratch arrays (left and right) or none")
    blendshapes[..., LEFT_INDICES] = mean
    blendshapes[..., RIGHT_INDICES] = mean
