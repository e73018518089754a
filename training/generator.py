"""The built-in dataset: prior-derived VAD -> face pairs (not captured faces).

Each sample is a VAD point and a face built from the EMFACS prototypes of ``prototypes.py``:

1. **Points.** ``UNIFORM_FRACTION`` of the points are uniform in the cube [-1, 1]^3 (continuous
   coverage); the rest lie along the ray of a basic emotion at a uniform intensity in
   [0, ``RAY_MAX_INTENSITY``] plus a small jitter, so the card's emotions are well sampled at
   every intensity (the card's rule: intensity i gives i x VAD).
2. **Blend by VAD direction.** Emotion k gets weight softmax_k(``DIRECTION_SHARPNESS`` x cos
   angle(p, v_k)). The direction, not the raw distance, decides, because anger, disgust and
   contempt lie within 30 degrees of each other (and anger and fear differ only in dominance):
   a sharp angular kernel keeps each one dominant at its own coordinates while staying smooth.
3. **Intensity from the distance to neutral.** Emotion k contributes t_k x face_k with
   t_k = clip(p . v_k / |v_k|^2, 0, ``MAX_INTENSITY``), the position of p along the emotion's ray
   (t = 1 at the card's coordinates, 0 at neutral), so the neutral VAD gives a zero face and the
   face grows monotonically with intensity.
4. **Capture-like noise.** Per-shape, per-side gain noise, a per-sample left/right bias, gaze,
   lid and jaw/mouth side-shift jitter and a small sensor floor; then half the samples are
   mirrored (this is also what makes the unilateral contempt AUs appear on either side).
   ``ASYMMETRY_SCALE`` is calibrated so that the raw mean |L - R| over the 20 mirror pairs is
   about 0.14, the model card's figure for its real training data.

Deterministic: the same ``n`` and ``seed`` give bit-identical arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import (
    ARKIT_INDEX,
    ARKIT_NAMES,
    LEFT_INDICES,
    NUM_BLENDSHAPES,
    RIGHT_INDICES,
    mirror,
)
from vadbridge.training.dataset import Dataset
from vadbridge.training.prototypes import prototype_matrix

DEFAULT_PAIRS = 40_000
UNIFORM_FRACTION = 0.6
RAY_MAX_INTENSITY = 1.15
RAY_JITTER = 0.04
DIRECTION_SHARPNESS = 30.0
MAX_INTENSITY = 1.2
GAIN_NOISE = 0.15  # log-normal sigma of each shape's gain, per side
ASYMMETRY_SCALE = 0.7  # sigma of the per-sample left/right gain bias
LANDMARK_NOISE = 0.15  # sigma of one-sided extraction noise per mirror pair (calibrated, see doc)
GAZE_SIGMA = 0.12
BLINK_PROBABILITY = 0.03
SIDE_SHIFT_SIGMA = 0.05
SENSOR_FLOOR = 0.015

_I = ARKIT_INDEX
_NAMES = ARKIT_NAMES


def _sample_points(rng: np.random.Generator, n: int, emotion_vad: np.ndarray) -> np.ndarray:
    n_uniform = round(n * UNIFORM_FRACTION)
    uniform = rng.uniform(-1.0, 1.0, size=(n_uniform, 3))
    n_ray = n - n_uniform
    which = rng.integers(0, len(emotion_vad), size=n_ray)
    intensity = rng.uniform(0.0, RAY_MAX_INTENSITY, size=(n_ray, 1))
    ray = intensity * emotion_vad[which] + rng.normal(0.0, RAY_JITTER, size=(n_ray, 3))
    points = np.concatenate([uniform, ray])
    points = points[rng.permutation(n)]
    clipped: np.ndarray = np.clip(points, -1.0, 1.0)
    return clipped


def blend_faces(points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The noiseless symmetric-prototype face (N, 52) of each VAD point (N, 3): steps 2-3."""
    emotion_vad, faces = prototype_matrix()
    vad = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    v = emotion_vad.astype(np.float64)
    norm_p = np.linalg.norm(vad, axis=1, keepdims=True)
    cosine = (vad @ v.T) / (np.maximum(norm_p, 1e-9) * np.linalg.norm(v, axis=1))
    logits = DIRECTION_SHARPNESS * cosine
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    intensity = np.clip((vad @ v.T) / np.sum(v * v, axis=1), 0.0, MAX_INTENSITY)
    face: npt.NDArray[np.float64] = np.clip((weights * intensity) @ faces.astype(np.float64), 0, 1)
    return face


def _add_capture_noise(
    rng: np.random.Generator, face: np.ndarray, points: np.ndarray
) -> np.ndarray:
    n = face.shape[0]
    face = face * np.exp(rng.normal(0.0, GAIN_NOISE, size=face.shape))
    bias = np.clip(rng.normal(0.0, ASYMMETRY_SCALE, size=(n, 1)), -1.0, 1.0)
    face[:, LEFT_INDICES] *= 1.0 + bias
    face[:, RIGHT_INDICES] *= 1.0 - bias

    # Gaze: looking toward the subject's left turns the left eye out and the right eye in.
    gaze_h = rng.normal(0.0, GAZE_SIGMA, size=n)
    gaze_v = rng.normal(0.0, GAZE_SIGMA * 0.6, size=n)
    face[:, _I["eyeLookOutLeft"]] += np.maximum(gaze_h, 0.0)
    face[:, _I["eyeLookInRight"]] += np.maximum(gaze_h, 0.0)
    face[:, _I["eyeLookInLeft"]] += np.maximum(-gaze_h, 0.0)
    face[:, _I["eyeLookOutRight"]] += np.maximum(-gaze_h, 0.0)
    for side in ("Left", "Right"):
        face[:, _I["eyeLookUp" + side]] += np.maximum(gaze_v, 0.0)
        face[:, _I["eyeLookDown" + side]] += np.maximum(-gaze_v, 0.0)

    # Lids: a resting level plus the occasional blink caught mid-way.
    blinking = rng.random(n) < BLINK_PROBABILITY
    lid = np.abs(rng.normal(0.0, 0.03, size=n)) + blinking * rng.uniform(0.4, 1.0, size=n)
    for side in ("Left", "Right"):
        face[:, _I["eyeBlink" + side]] += lid * np.exp(rng.normal(0.0, GAIN_NOISE, size=n))

    # Jaw and mouth side shifts: only one side of each pair is ever active.
    for stem in ("jaw", "mouth"):
        shift = rng.normal(0.0, SIDE_SHIFT_SIGMA, size=n)
        face[:, _I[stem + "Left"]] += np.maximum(shift, 0.0)
        face[:, _I[stem + "Right"]] += np.maximum(-shift, 0.0)

    # Landmark extraction error rarely hits both sides alike (docs/references.md, "Emo3D
    # dataset"): one-sided noise on each mirror pair except gaze, which already differs between
    # the eyes. It grows with the distance from neutral (a deformed face is harder to fit),
    # which keeps neutral clean.
    pairs = np.array([k for k, left in enumerate(LEFT_INDICES) if "eyeLook" not in _NAMES[left]])
    sigma = LANDMARK_NOISE * (0.25 + np.linalg.norm(points, axis=1, keepdims=True))
    noise = np.abs(rng.normal(0.0, 1.0, size=(n, len(pairs)))) * sigma
    on_left = rng.random((n, len(pairs))) < 0.5
    face[:, LEFT_INDICES[pairs]] += noise * on_left
    face[:, RIGHT_INDICES[pairs]] += noise * ~on_left
    face += np.abs(rng.normal(0.0, SENSOR_FLOOR, size=face.shape))
    face[:, _I["tongueOut"]] = 0.0
    clipped: np.ndarray = np.clip(face, 0.0, 1.0)
    return clipped


def generate_dataset(n: int = DEFAULT_PAIRS, seed: int = 0) -> Dataset:
    """``n`` prior-derived (VAD, face) pairs; deterministic for a given ``seed``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    emotion_vad, _ = prototype_matrix()
    points = _sample_points(rng, n, emotion_vad.astype(np.float64))
    face = _add_capture_noise(rng, blend_faces(points), points)
    flip = rng.random(n) < 0.5
    face[flip] = mirror(face[flip])
    assert face.shape == (n, NUM_BLENDSHAPES)
    return Dataset(vad=points.astype(np.float32), blendshapes=face.astype(np.float32))


def mean_abs_left_right(blendshapes: npt.ArrayLike) -> float:
    """Mean |left - right| over the 20 mirror pairs and all samples (the card's 0.14 figure)."""
    array = np.asarray(blendshapes, dtype=np.float64)
    return float(np.mean(np.abs(array[:, LEFT_INDICES] - array[:, RIGHT_INDICES])))
