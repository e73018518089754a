"""The ARKit vocabulary: 52 names, 20 mirror pairs derived from names, mirror and symmetry."""

from __future__ import annotations

import numpy as np
import pytest

from vadbridge.model.arkit import (
    ARKIT_INDEX,
    ARKIT_NAMES,
    CENTER_INDICES,
    LEFT_INDICES,
    MIRROR_PAIRS,
    RIGHT_INDICES,
    enforce_symmetry,
    mirror,
    symmetrize_inplace,
    upper_camel,
)

# docs/references.md, "ARKit blendshapes": the pairs as the reference lists them.
REFERENCE_PAIRS = [
    (0, 1), (3, 4), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19), (20, 21),
    (23, 25), (27, 28), (29, 30), (32, 38), (33, 34), (35, 36), (43, 44), (45, 46), (47, 48),
    (49, 50),
]  # fmt: skip
REFERENCE_CENTRES = {
    "browInnerUp", "cheekPuff", "jawForward", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "tongueOut",
}  # fmt: skip


def test_there_are_52_unique_names_in_alphabetical_order() -> None:
    assert len(ARKIT_NAMES) == 52
    assert len(set(ARKIT_NAMES)) == 52
    assert list(ARKIT_NAMES) == sorted(ARKIT_NAMES)
    assert ARKIT_NAMES[0] == "browDownLeft" and ARKIT_NAMES[51] == "tongueOut"
    assert all(ARKIT_NAMES[ARKIT_INDEX[name]] == name for name in ARKIT_NAMES)


def test_mirror_pairs_match_the_reference_and_cover_all_names() -> None:
    assert list(MIRROR_PAIRS) == REFERENCE_PAIRS
    assert {ARKIT_NAMES[i] for i in CENTER_INDICES} == REFERENCE_CENTRES
    covered = sorted([*LEFT_INDICES.tolist(), *RIGHT_INDICES.tolist(), *CENTER_INDICES.tolist()])
    assert covered == list(range(52))


@pytest.mark.parametrize("left_name", [n for n in ARKIT_NAMES if n.endswith("Left")])
def test_mirror_moves_each_left_weight_to_its_right_name(left_name: str) -> None:
    right_name = left_name.removesuffix("Left") + "Right"
    face = np.zeros(52, dtype=np.float32)
    face[ARKIT_INDEX[left_name]] = 0.75
    mirrored = mirror(face)
    assert mirrored[ARKIT_INDEX[right_name]] == np.float32(0.75)
    assert np.count_nonzero(mirrored) == 1


def test_mirror_keeps_centre_shapes_in_place() -> None:
    face = np.arange(52, dtype=np.float32)
    mirrored = mirror(face)
    np.testing.assert_array_equal(mirrored[CENTER_INDICES], face[CENTER_INDICES])
    np.testing.assert_array_equal(mirrored[LEFT_INDICES], face[RIGHT_INDICES])


def test_mirror_is_an_involution_for_single_and_batch() -> None:
    rng = np.random.default_rng(1)
    single = rng.random(52, dtype=np.float32)
    batch = rng.random((7, 52), dtype=np.float32)
    np.testing.assert_array_equal(mirror(mirror(single)), single)
    np.testing.assert_array_equal(mirror(mirror(batch)), batch)
    assert not np.array_equal(mirror(single), single)


def test_mirror_returns_a_new_array() -> None:
    face = np.random.default_rng(2).random(52, dtype=np.float32)
    mirrored = mirror(face)
    mirrored[:] = 0.0
    assert face.any()


def test_enforce_symmetry_makes_pairs_exactly_equal_to_their_mean() -> None:
    rng = np.random.default_rng(3)
    batch = rng.random((16, 52), dtype=np.float32)
    symmetric = enforce_symmetry(batch)
    np.testing.assert_array_equal(symmetric[:, LEFT_INDICES], symmetric[:, RIGHT_INDICES])
    expected_mean = (batch[:, LEFT_INDICES] + batch[:, RIGHT_INDICES]) * np.float32(0.5)
    np.testing.assert_array_equal(symmetric[:, LEFT_INDICES], expected_mean)
    np.testing.assert_array_equal(symmetric[:, CENTER_INDICES], batch[:, CENTER_INDICES])
    assert symmetric.dtype == np.float32


def test_enforce_symmetry_result_is_mirror_invariant_and_input_untouched() -> None:
    face = np.random.default_rng(4).random(52, dtype=np.float32)
    before = face.copy()
    symmetric = enforce_symmetry(face)
    np.testing.assert_array_equal(mirror(symmetric), symmetric)
    np.testing.assert_array_equal(face, before)


def test_symmetrize_inplace_equals_enforce_symmetry() -> None:
    batch = np.random.default_rng(5).random((3, 52), dtype=np.float32)
    expected = enforce_symmetry(batch)
    symmetrize_inplace(batch)
    np.testing.assert_array_equal(batch, expected)


def test_symmetrize_inplace_into_scratch_gives_the_same_bits() -> None:
    batch = np.random.default_rng(6).random((3, 52), dtype=np.float32)
    expected = batch.copy()
    symmetrize_inplace(expected)
    left = np.empty((3, LEFT_INDICES.size), dtype=np.float32)
    right = np.empty((3, RIGHT_INDICES.size), dtype=np.float32)
    symmetrize_inplace(batch, left=left, right=right)
    assert batch.tobytes() == expected.tobytes()


def test_symmetrize_inplace_wants_both_scratch_arrays_or_none() -> None:
    batch = np.zeros((1, 52), dtype=np.float32)
    with pytest.raises(ValueError, match="both"):
        symmetrize_inplace(batch, left=np.zeros((1, LEFT_INDICES.size), dtype=np.float32))


@pytest.mark.parametrize("shape", [(51,), (52, 2), (2, 3, 52), ()])
def test_wrong_shapes_are_rejected_with_the_shape_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(52,\) or \(N, 52\)"):
        mirror(np.zeros(shape))
    with pytest.raises(ValueError, match="got"):
        enforce_symmetry(np.zeros(shape))


def test_upper_camel_capitalises_only_the_first_letter() -> None:
    assert upper_camel("browInnerUp") == "BrowInnerUp"
    assert upper_camel("jawOpen") == "JawOpen"
