"""The built-in prior-derived dataset: prototypes, blending, coverage, noise, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from vadbridge.model.arkit import ARKIT_INDEX, ARKIT_NAMES, LEFT_INDICES, RIGHT_INDICES
from vadbridge.training.generator import (
    DEFAULT_PAIRS,
    blend_faces,
    generate_dataset,
    mean_abs_left_right_moving,
)
from vadbridge.training.prototypes import (
    ANCHORS,
    CALM_STATE_VAD,
    CARD_EMOTION_VAD,
    action_unit_shapes,
    prototype_face,
)


@pytest.fixture(scope="module")
def full() -> tuple[np.ndarray, np.ndarray]:
    dataset = generate_dataset(DEFAULT_PAIRS, seed=0)
    return dataset.vad, dataset.blendshapes


def nonzero(face: np.ndarray) -> dict[str, float]:
    return {ARKIT_NAMES[i]: round(float(face[i]), 6) for i in np.flatnonzero(face)}


def test_happiness_prototype_is_au6_plus_au12() -> None:
    assert nonzero(prototype_face("happiness")) == {
        "cheekSquintLeft": 0.8, "cheekSquintRight": 0.8,
        "mouthSmileLeft": 0.8, "mouthSmileRight": 0.8,
    }  # fmt: skip


def test_contempt_prototype_is_a_symmetric_smirk() -> None:
    """Bilateral AU14 at C and AU12 at A: a one-sided R12A+R14A would fade to a trace."""
    assert nonzero(prototype_face("contempt")) == {
        "mouthDimpleLeft": 0.6, "mouthDimpleRight": 0.6,
        "mouthSmileLeft": 0.2, "mouthSmileRight": 0.2,
    }  # fmt: skip


def test_calm_states_have_heavy_lids_or_soft_smiles_and_no_sad_brow() -> None:
    blink, smile = ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["mouthSmileLeft"]
    assert 0.4 <= prototype_face("boredom")[blink] <= 0.6
    assert prototype_face("sleepiness")[blink] > prototype_face("boredom")[blink]
    for calm in ("relaxation", "contentment"):
        assert 0.3 <= prototype_face(calm)[smile] < prototype_face("happiness")[smile]
    sad_brow = ARKIT_INDEX["browInnerUp"]
    assert prototype_face("boredom")[sad_brow] <= 0.5 * prototype_face("sadness")[sad_brow]


def test_action_unit_shapes_name_both_sides_of_a_bilateral_unit() -> None:
    assert action_unit_shapes("happiness") == {
        "cheekSquintLeft", "cheekSquintRight", "mouthSmileLeft", "mouthSmileRight",
    }  # fmt: skip


def test_no_anchor_face_looks_or_shifts_sideways() -> None:
    """Gaze and lateral jaw/mouth shapes have no place in a symmetric emotion face."""
    sideways = [i for name, i in ARKIT_INDEX.items()
                if name.startswith("eyeLook") or name in ("jawLeft", "jawRight", "mouthLeft",
                                                          "mouthRight", "tongueOut")]
    for anchor in ANCHORS:
        assert not prototype_face(anchor)[sideways].any(), anchor


def test_neutral_prototype_is_empty() -> None:
    assert not prototype_face("neutral").any()


def test_unknown_emotion_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="'joyous'"):
        prototype_face("joyous")


def test_card_coordinates_are_kept_exactly() -> None:
    assert CARD_EMOTION_VAD["anger"] == (-0.7, 0.8, 0.7)
    assert CARD_EMOTION_VAD["fear"] == (-0.7, 0.8, -0.3)
    assert CARD_EMOTION_VAD["contempt"] == (-0.4, 0.3, 0.8)


def test_neutral_vad_blends_to_a_zero_face() -> None:
    assert not blend_faces(np.zeros(3)).any()


@pytest.mark.parametrize("anchor", ANCHORS)
def test_each_anchor_is_its_own_face_at_its_own_coordinates(anchor: str) -> None:
    """Inverse-angle weights give an anchor all the weight on its own ray; float64 arithmetic
    of the weights leaves at most ~1e-12."""
    vad = CARD_EMOTION_VAD.get(anchor) or CALM_STATE_VAD[anchor]
    blended = blend_faces(np.asarray(vad))[0]
    np.testing.assert_allclose(blended, prototype_face(anchor), atol=1e-9)


def test_anger_and_fear_are_separated_by_dominance() -> None:
    anger, fear = blend_faces(np.array([CARD_EMOTION_VAD["anger"], CARD_EMOTION_VAD["fear"]]))
    assert anger[ARKIT_INDEX["browDownLeft"]] > 0.7 > fear[ARKIT_INDEX["browDownLeft"]]
    assert fear[ARKIT_INDEX["eyeWideLeft"]] > 0.7 > anger[ARKIT_INDEX["eyeWideLeft"]]


def test_disgust_is_separated_from_nearby_anger() -> None:
    disgust, anger = blend_faces(np.array([CARD_EMOTION_VAD["disgust"], CARD_EMOTION_VAD["anger"]]))
    assert disgust[ARKIT_INDEX["noseSneerLeft"]] > 2 * anger[ARKIT_INDEX["noseSneerLeft"]]
    assert anger[ARKIT_INDEX["browDownLeft"]] >= 2 * disgust[ARKIT_INDEX["browDownLeft"]]


@pytest.mark.parametrize(
    ("emotion", "shape"), [("happiness", "mouthSmileLeft"), ("anger", "browDownLeft")]
)
def test_blend_grows_monotonically_with_intensity(emotion: str, shape: str) -> None:
    intensities = np.linspace(0.0, 1.0, 21)[:, None]
    values = blend_faces(intensities * np.asarray(CARD_EMOTION_VAD[emotion]))[:, ARKIT_INDEX[shape]]
    assert values[0] == 0.0
    assert np.all(np.diff(values) > 0)


def test_blend_is_continuous_across_the_cube() -> None:
    points = np.random.default_rng(1).uniform(-1, 1, size=(2000, 3))
    step = 1e-3
    change = np.abs(blend_faces(points + step) - blend_faces(points)).max()
    assert change < 0.1  # a jump would be ~0.5 (a prototype switching on)


def test_same_seed_gives_identical_data() -> None:
    a, b = generate_dataset(500, seed=7), generate_dataset(500, seed=7)
    assert np.array_equal(a.vad, b.vad)
    assert np.array_equal(a.blendshapes, b.blendshapes)


def test_different_seeds_give_different_data() -> None:
    assert not np.array_equal(generate_dataset(500, 1).vad, generate_dataset(500, 2).vad)


def test_default_size_meets_the_card(full: tuple[np.ndarray, np.ndarray]) -> None:
    vad, blendshapes = full
    assert vad.shape == (40_000, 3) and blendshapes.shape == (40_000, 52)
    assert vad.dtype == blendshapes.dtype == np.float32


def test_values_stay_in_range(full: tuple[np.ndarray, np.ndarray]) -> None:
    vad, blendshapes = full
    assert vad.min() >= -1 and vad.max() <= 1
    assert blendshapes.min() >= 0 and blendshapes.max() <= 1
    assert not blendshapes[:, ARKIT_INDEX["tongueOut"]].any()


def test_points_cover_every_cell_of_the_cube(full: tuple[np.ndarray, np.ndarray]) -> None:
    cells = np.clip(((full[0] + 1) / 2 * 5).astype(int), 0, 4)  # a 5x5x5 grid
    counts = np.bincount(cells[:, 0] * 25 + cells[:, 1] * 5 + cells[:, 2], minlength=125)
    assert counts.min() >= 50


def test_raw_asymmetry_of_moving_pairs_matches_the_card(
    full: tuple[np.ndarray, np.ndarray],
) -> None:
    assert 0.12 <= mean_abs_left_right_moving(full[1]) <= 0.16


def test_noise_teaches_no_offset_where_a_face_rests(full: tuple[np.ndarray, np.ndarray]) -> None:
    """A shape no anchor uses is exactly 0 in every sample: mean-one gains, nothing added."""
    unused = ~np.stack([prototype_face(anchor) for anchor in ANCHORS]).any(axis=0)
    assert unused.sum() >= 20  # gaze, lateral jaw and mouth, tongue, cheekPuff, ...
    assert not full[1][:, unused].any()


def test_noise_keeps_the_mean_face(full: tuple[np.ndarray, np.ndarray]) -> None:
    """Mean-one gains: the data's mean face is the noiseless blend's, to sampling error (40k
    samples, gains with sigma ~0.4: the standard error of a mean is below 0.003)."""
    vad, blendshapes = full
    assert abs(float(blendshapes.mean() - blend_faces(vad).mean())) < 0.003


def test_asymmetry_has_no_side_bias(full: tuple[np.ndarray, np.ndarray]) -> None:
    blendshapes = full[1]
    left, right = blendshapes[:, LEFT_INDICES].mean(), blendshapes[:, RIGHT_INDICES].mean()
    assert abs(left - right) < 0.005


def test_faces_near_neutral_are_nearly_zero_on_average(full: tuple[np.ndarray, np.ndarray]) -> None:
    vad, blendshapes = full
    near = np.linalg.norm(vad, axis=1) < 0.1
    assert near.sum() >= 100
    assert blendshapes[near].mean(axis=0).max() <= 0.05


def test_noise_varies_faces_at_the_same_emotion() -> None:
    dataset = generate_dataset(8000, seed=3)
    happy = np.linalg.norm(dataset.vad - np.asarray(CARD_EMOTION_VAD["happiness"]), axis=1) < 0.1
    smile = dataset.blendshapes[happy][:, ARKIT_INDEX["mouthSmileLeft"]]
    assert happy.sum() >= 20
    assert 0.05 < smile.std() < 0.4
    assert 0.5 < smile.mean() < 1.0


def test_zero_pairs_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_dataset(0)
