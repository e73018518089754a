import math

import numpy as np
import pytest

from vadbridge.core.smoothing import (
    SNAP_DISTANCE,
    UPPER_FACE,
    AttackRelease,
    SmoothingBuffers,
    StepAlphas,
    TimeConstants,
    column_time_constants,
    smooth_toward,
    smoothing_alpha,
    step_alphas,
)
from vadbridge.model.arkit import ARKIT_NAMES


def test_alpha_covers_63_percent_after_one_tau_at_any_frame_rate() -> None:
    tau_s = 0.15
    for fps in (30, 60, 144, 240):
        frames = round(tau_s * fps)
        remaining = (1.0 - smoothing_alpha(1.0 / fps, tau_s)) ** frames
        assert remaining == pytest.approx(math.exp(-frames / fps / tau_s), rel=1e-12)
        assert remaining == pytest.approx(math.exp(-1.0), abs=0.05)


def test_alpha_is_one_when_smoothing_is_off() -> None:
    assert smoothing_alpha(1 / 60, 0.0) == 1.0


def test_alpha_is_zero_for_zero_elapsed_time() -> None:
    assert smoothing_alpha(0.0, 0.15) == 0.0


def test_smooth_toward_moves_rows_and_reports_which_changed() -> None:
    state = np.zeros((3, 3), dtype=np.float32)
    target = np.array([[1, 0, 0], [0, 0, 0], [0, -1, 0.5]], dtype=np.float32)
    changed = np.zeros(3, dtype=bool)
    smooth_toward(state, target, 0.25, changed)
    assert changed.tolist() == [True, False, True]
    np.testing.assert_allclose(state, target * 0.25)


def test_held_target_converges_exactly_and_then_reports_no_change() -> None:
    state = np.zeros((1, 3), dtype=np.float32)
    target = np.array([[0.8, 0.6, 0.5]], dtype=np.float32)
    changed = np.zeros(1, dtype=bool)
    alpha = smoothing_alpha(1 / 60, 0.15)
    for _ in range(600):
        smooth_toward(state, target, alpha, changed)
    assert np.array_equal(state, target)
    smooth_toward(state, target, alpha, changed)
    assert not changed.any()


def test_snap_happens_only_within_snap_distance() -> None:
    state = np.array([[0.0, 0.0, 0.0]], dtype=np.float32)
    target = np.array([[10 * SNAP_DISTANCE, 0.0, 0.0]], dtype=np.float32)
    changed = np.zeros(1, dtype=bool)
    smooth_toward(state, target, 0.5, changed)
    assert state[0, 0] == pytest.approx(5 * SNAP_DISTANCE)


# ---------------------------------------------------------------- attack and release


def _alpha32(dt_s: float, tau_s: float) -> np.float32:
    """The fraction one step covers, as the float32 the state is multiplied by."""
    return np.float32(1.0 - math.exp(-dt_s / tau_s))


def _asymmetric(attack_s: float, release_s: float, dt_s: float = 1 / 60) -> StepAlphas:
    return step_alphas(dt_s, TimeConstants(AttackRelease(attack_s, release_s)), "vad")


def test_a_rising_value_moves_by_the_attack_alpha_and_a_falling_one_by_the_release_alpha() -> None:
    dt_s, attack_s, release_s = 1 / 60, 0.1, 0.4
    state = np.array([[0.0, 0.2, 0.5], [0.9, 0.7, 0.1]], dtype=np.float32)
    target = np.array([[0.8, 0.9, 0.0], [0.3, 0.7, 0.6]], dtype=np.float32)
    changed = np.zeros(2, dtype=bool)
    smooth_toward(state.copy(), target, _asymmetric(attack_s, release_s, dt_s), changed)
    moved = state.copy()
    smooth_toward(moved, target, _asymmetric(attack_s, release_s, dt_s), changed)
    attack, release = _alpha32(dt_s, attack_s), _alpha32(dt_s, release_s)
    rising = target > state
    expected = state + np.where(rising, attack, release) * (target - state)
    assert np.array_equal(moved, expected)  # exactly: the same float32 arithmetic
    assert changed.tolist() == [True, True]
    assert moved[1, 1] == state[1, 1]  # on its target: untouched


def test_asymmetric_alphas_are_the_exact_exp_values_per_direction() -> None:
    alphas = _asymmetric(0.12, 0.3, 1 / 30)
    assert isinstance(alphas.attack, np.ndarray) and isinstance(alphas.release, np.ndarray)
    assert alphas.attack.dtype == alphas.release.dtype == np.float32
    assert alphas.attack.tolist() == [_alpha32(1 / 30, 0.12)] * 3
    assert alphas.release.tolist() == [_alpha32(1 / 30, 0.3)] * 3


def test_a_vad_axis_releases_toward_neutral_and_attacks_away_from_it() -> None:
    dt_s, attack_s, release_s = 1 / 60, 0.1, 0.4
    attack, release = _alpha32(dt_s, attack_s), _alpha32(dt_s, release_s)
    # Valence from happy to sad: toward 0 first (release); arousal from 0 (attack); dominance
    # from negative to more negative (away from 0: attack).
    state = np.array([[0.8, 0.0, -0.2]], dtype=np.float32)
    target = np.array([[-0.8, 0.5, -0.9]], dtype=np.float32)
    moved = state.copy()
    smooth_toward(moved, target, _asymmetric(attack_s, release_s, dt_s), np.zeros(1, bool))
    delta = target - state
    assert np.array_equal(moved[0], state[0] + np.array([release, attack, attack]) * delta[0])
    # Once valence has crossed 0 the rest of its way leads away from neutral: attack.
    crossed = np.array([[-0.1, 0.0, 0.0]], dtype=np.float32)
    before = crossed.copy()
    smooth_toward(crossed, target, _asymmetric(attack_s, release_s, dt_s), np.zeros(1, bool))
    assert crossed[0, 0] == before[0, 0] + attack * (target[0, 0] - before[0, 0])


def test_a_rise_and_a_fall_follow_their_own_tau_at_any_frame_rate() -> None:
    attack_s, release_s, duration_s = 0.12, 0.3, 0.5
    for fps in (30, 60, 120, 240):
        alphas = _asymmetric(attack_s, release_s, 1 / fps)
        changed = np.zeros(1, dtype=bool)
        frames = round(duration_s * fps)
        state = np.zeros((1, 3), dtype=np.float32)
        target = np.ones((1, 3), dtype=np.float32)
        for _ in range(frames):
            smooth_toward(state, target, alphas, changed)
        assert state[0, 0] == pytest.approx(1 - math.exp(-duration_s / attack_s), rel=1e-5), fps
        state[:] = 1.0
        target[:] = 0.0
        for _ in range(frames):
            smooth_toward(state, target, alphas, changed)
        assert state[0, 0] == pytest.approx(math.exp(-duration_s / release_s), rel=1e-5), fps


def test_one_time_constant_gives_the_plain_scalar_alpha_bit_for_bit() -> None:
    alphas = step_alphas(1 / 60, TimeConstants.single(0.15), "blendshapes")
    assert alphas == StepAlphas(smoothing_alpha(1 / 60, 0.15), None)
    rng = np.random.default_rng(3)
    state = rng.uniform(0, 1, (8, 52)).astype(np.float32)
    target = rng.uniform(0, 1, (8, 52)).astype(np.float32)
    moved = state.copy()
    smooth_toward(moved, target, alphas, np.zeros(8, bool))
    assert np.array_equal(moved, state + smoothing_alpha(1 / 60, 0.15) * (target - state))


def test_regions_give_the_brows_and_eyes_and_the_rest_their_own_time_constants() -> None:
    times = TimeConstants(AttackRelease(0.1, 0.3), upper=AttackRelease(0.05, 0.2))
    attack_s, release_s = column_time_constants(times, "blendshapes")
    brow, eye, smile = (ARKIT_NAMES.index(n) for n in ("browInnerUp", "eyeWideLeft",
                                                        "mouthSmileLeft"))
    assert (attack_s[brow], release_s[brow]) == (attack_s[eye], release_s[eye]) == (0.05, 0.2)
    assert (attack_s[smile], release_s[smile]) == (0.1, 0.3)
    assert int(UPPER_FACE.sum()) == 19  # 5 brow + 14 eye shapes
    # In VAD space one state drives the whole face: the face pair.
    assert column_time_constants(times, "vad")[0].tolist() == [0.1] * 3


def test_asymmetric_smoothing_still_snaps_and_then_reports_no_change() -> None:
    alphas = _asymmetric(0.1, 0.4)
    state = np.array([[0.9, 0.0, 0.3]], dtype=np.float32)
    target = np.array([[0.0, 0.7, 0.3]], dtype=np.float32)
    changed = np.zeros(1, dtype=bool)
    for _ in range(600):  # 10 s = 25 release taus
        smooth_toward(state, target, alphas, changed)
    assert np.array_equal(state, target)
    smooth_toward(state, target, alphas, changed)
    assert not changed.any()


def test_buffers_change_nothing_but_where_the_scratch_lives() -> None:
    rng = np.random.default_rng(4)
    state = rng.uniform(0, 1, (5, 52)).astype(np.float32)
    target = rng.uniform(0, 1, (5, 52)).astype(np.float32)
    alphas = step_alphas(1 / 60, TimeConstants(AttackRelease(0.1, 0.4)), "blendshapes")
    with_buffers, without = state.copy(), state.copy()
    smooth_toward(with_buffers, target, alphas, np.zeros(5, bool), SmoothingBuffers(16, 52))
    smooth_toward(without, target, alphas, np.zeros(5, bool))
    assert np.array_equal(with_buffers, without)


def test_single_time_constant_is_recognised_only_when_every_pair_is_equal() -> None:
    assert TimeConstants.single(0.2).single_s == 0.2
    assert TimeConstants(AttackRelease(0.2, 0.2), upper=AttackRelease(0.2, 0.2)).single_s == 0.2
    assert TimeConstants(AttackRelease(0.1, 0.3)).single_s is None
    assert TimeConstants(AttackRelease(0.2, 0.2), lower=AttackRelease(0.1, 0.2)).single_s is None
