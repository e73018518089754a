import math

import numpy as np
import pytest

from vadbridge.core.smoothing import SNAP_DISTANCE, smooth_toward, smoothing_alpha


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
