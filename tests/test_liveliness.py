"""Idle liveliness: blink curve, blink timing and suppression, breathing layer, config checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vadbridge.config import ConfigError, LivelinessConfig, parse_config
from vadbridge.core.liveliness import (
    BLINK_CLOSE_S,
    BLINK_DURATION_S,
    BLINK_HOLD_S,
    WIDE_EYES_THRESHOLD,
    Liveliness,
    blink_curve,
)
from vadbridge.model.arkit import ARKIT_INDEX, NUM_BLENDSHAPES

FPS = 60
BLINK_L, BLINK_R = ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]
WIDE_L, WIDE_R = ARKIT_INDEX["eyeWideLeft"], ARKIT_INDEX["eyeWideRight"]
BREATHING_SHAPES = (ARKIT_INDEX["jawOpen"], ARKIT_INDEX["mouthClose"], ARKIT_INDEX["browInnerUp"])
BLINK_ONLY = LivelinessConfig(blink=True, blink_interval_s=(1.0, 2.0))
BREATHING_ONLY = LivelinessConfig(breathing=True)


def run(lively: Liveliness, base: np.ndarray, seconds: float, start_s: float = 0.0) -> np.ndarray:
    """Frames (T, N, 52) of ``base`` (N, 52) with liveliness applied at 60 fps."""
    frames = []
    for k in range(round(seconds * FPS)):
        out = base.copy()
        lively.apply(out, start_s + k / FPS)
        frames.append(out)
    return np.array(frames)


def blink_starts(blink: np.ndarray) -> list[int]:
    """Frame indices where the lid closure crosses 0.5 upward."""
    above = blink > 0.5
    return [int(k) for k in np.flatnonzero(above[1:] & ~above[:-1]) + 1]


# ---------------------------------------------------------------- the blink curve


def test_blink_curve_closes_fast_holds_closed_and_opens_slower() -> None:
    assert blink_curve([-0.5, -0.001]).tolist() == [0.0, 0.0]
    assert blink_curve(BLINK_CLOSE_S) == pytest.approx(1.0)
    assert blink_curve(BLINK_CLOSE_S + BLINK_HOLD_S / 2) == 1.0
    assert blink_curve([BLINK_DURATION_S, BLINK_DURATION_S + 1.0]).tolist() == [0.0, 0.0]
    times = np.linspace(0.0, BLINK_DURATION_S, 3001)
    curve = blink_curve(times)
    closed = times[curve >= 0.5]
    time_to_half_closed, time_from_half_open = closed[0], BLINK_DURATION_S - closed[-1]
    assert time_to_half_closed == pytest.approx(BLINK_CLOSE_S / 2, abs=1e-3)
    assert time_from_half_open > 2 * time_to_half_closed  # opening is the slow part


def test_blink_curve_rises_then_falls_monotonically_within_0_and_1() -> None:
    curve = blink_curve(np.linspace(0.0, BLINK_DURATION_S, 1001))
    peak = int(np.argmax(curve))
    assert np.all(np.diff(curve[: peak + 1]) >= 0) and np.all(np.diff(curve[peak:]) <= 0)
    assert curve.min() == 0.0 and curve.max() == 1.0


# ---------------------------------------------------------------- blinking


def test_both_eyes_blink_together_and_close_fully() -> None:
    base = np.zeros((1, NUM_BLENDSHAPES), dtype=np.float32)
    base[0, [BLINK_L, BLINK_R]] = 0.3  # the model's own lid weight
    frames = run(Liveliness(BLINK_ONLY, 1, seed=1), base, 5.0)
    assert np.array_equal(frames[:, 0, BLINK_L], frames[:, 0, BLINK_R])
    assert frames[:, 0, BLINK_L].max() == pytest.approx(1.0)
    assert frames[:, 0, BLINK_L].min() == pytest.approx(0.3)


def test_blink_intervals_stay_within_the_configured_range() -> None:
    config = LivelinessConfig(blink=True, blink_interval_s=(1.5, 3.0))
    frames = run(Liveliness(config, 1, seed=2), np.zeros((1, 52), np.float32), 60.0)
    starts = blink_starts(frames[:, 0, BLINK_L])
    gaps_s = np.diff(starts) / FPS
    assert len(starts) >= 60 / (3.0 + BLINK_DURATION_S) - 1
    assert gaps_s.min() >= 1.5 + BLINK_DURATION_S - 1 / FPS
    assert gaps_s.max() <= 3.0 + BLINK_DURATION_S + 1 / FPS
    assert gaps_s.std() > 0.1  # randomised, not a metronome


def test_a_crowd_does_not_blink_in_unison() -> None:
    frames = run(Liveliness(BLINK_ONLY, 20, seed=3), np.zeros((20, 52), np.float32), 2.5)
    first_blinks = [blink_starts(frames[:, row, BLINK_L])[0] for row in range(20)]
    assert len(set(first_blinks)) >= 15


def test_the_same_seed_gives_the_same_blinks_and_another_seed_does_not() -> None:
    base = np.zeros((3, 52), np.float32)
    config = LivelinessConfig(blink=True, breathing=True, blink_interval_s=(1.0, 2.0), seed=11)
    first = run(Liveliness(config, 3), base, 6.0)
    assert np.array_equal(first, run(Liveliness(config, 3), base, 6.0))
    assert not np.array_equal(first, run(Liveliness(config, 3, seed=12), base, 6.0))


def test_an_avatar_arriving_later_gets_its_own_first_blink_time() -> None:
    lively = Liveliness(BLINK_ONLY, 2, seed=4)
    run(lively, np.zeros((1, 52), np.float32), 30.0)
    frames = run(lively, np.zeros((2, 52), np.float32), 3.0, start_s=30.0)
    late_starts = blink_starts(frames[:, 1, BLINK_L])
    assert late_starts and late_starts[0] > 0  # not on its very first frame
    assert late_starts[0] <= 2.0 * FPS + 1  # within the interval's max after it appeared


def test_no_blink_starts_while_the_eyes_are_wide_and_one_follows_when_they_relax() -> None:
    lively = Liveliness(BLINK_ONLY, 1, seed=5)
    wide = np.zeros((1, 52), np.float32)
    wide[0, [WIDE_L, WIDE_R]] = WIDE_EYES_THRESHOLD + 0.1
    held = run(lively, wide, 10.0)
    assert np.array_equal(held, np.broadcast_to(wide, held.shape))  # surprise: eyes stay open
    relaxed = run(lively, np.zeros((1, 52), np.float32), 0.5, start_s=10.0)
    assert relaxed[:, 0, BLINK_L].max() == pytest.approx(1.0)  # the overdue blink comes now


def test_a_blink_lowers_eye_wide_so_the_lids_can_close() -> None:
    base = np.zeros((1, 52), np.float32)
    base[0, [WIDE_L, WIDE_R]] = 0.2
    frames = run(Liveliness(BLINK_ONLY, 1, seed=6), base, 5.0)
    at_peak = int(np.argmax(frames[:, 0, BLINK_L]))
    assert frames[at_peak, 0, WIDE_L] == pytest.approx(0.0, abs=1e-6)
    assert frames[:, 0, WIDE_L].max() == pytest.approx(0.2)


# ---------------------------------------------------------------- breathing


def test_breathing_moves_jaw_lips_and_brows_by_at_most_three_hundredths() -> None:
    base = np.full((4, 52), 0.25, np.float32)
    frames = run(Liveliness(BREATHING_ONLY, 4, seed=7), base, 12.0)
    offsets = frames - base
    for index in BREATHING_SHAPES:
        assert offsets[:, :, index].min() >= 0.0
        assert offsets[:, :, index].max() <= 0.03
        assert np.ptp(offsets[:, :, index], axis=0).min() > 0.005  # every avatar moves
    others = [i for i in range(52) if i not in BREATHING_SHAPES]
    assert np.array_equal(frames[:, :, others], np.broadcast_to(base[:, others],
                                                                  (len(frames), 4, len(others))))


def test_breathing_runs_at_a_calm_breathing_rate() -> None:
    frames = run(Liveliness(BREATHING_ONLY, 1, seed=8), np.zeros((1, 52), np.float32), 40.0)
    jaw = frames[:, 0, ARKIT_INDEX["jawOpen"]]
    centred = jaw - (jaw.max() + jaw.min()) / 2
    crossings = np.count_nonzero(np.diff(np.sign(centred)) != 0)
    breaths_per_s = crossings / 2 / 40.0
    assert 0.2 - 0.03 <= breaths_per_s <= 0.3 + 0.03


def test_breathing_never_pushes_a_weight_above_one() -> None:
    frames = run(Liveliness(BREATHING_ONLY, 1, seed=9), np.ones((1, 52), np.float32), 5.0)
    assert frames.max() == 1.0


def test_all_off_changes_nothing() -> None:
    base = np.random.default_rng(0).random((5, 52), dtype=np.float32)
    frames = run(Liveliness(LivelinessConfig(), 5, seed=0), base, 3.0)
    assert np.array_equal(frames, np.broadcast_to(base, frames.shape))


# ---------------------------------------------------------------- errors and config


def test_wrong_shapes_and_too_many_rows_are_rejected() -> None:
    lively = Liveliness(BLINK_ONLY, 2, seed=0)
    with pytest.raises(ValueError, match=r"\(N, 52\)"):
        lively.apply(np.zeros(52, np.float32), 0.0)
    with pytest.raises(ValueError, match="made for 2"):
        lively.apply(np.zeros((3, 52), np.float32), 0.0)
    with pytest.raises(ValueError, match="n_avatars"):
        Liveliness(BLINK_ONLY, 0)


def test_liveliness_is_off_by_default_and_read_from_yaml() -> None:
    assert not parse_config("").liveliness.enabled
    config = parse_config("liveliness: {blink: true, blink_interval_s: [1, 3], seed: 5}\n")
    assert config.liveliness == LivelinessConfig(blink=True, blink_interval_s=(1.0, 3.0), seed=5)
    assert config.liveliness.enabled


def test_vseeface_example_turns_liveliness_on() -> None:
    config_dir = Path(__file__).resolve().parents[1] / "config"
    text = (config_dir / "vseeface.yaml").read_text(encoding="utf-8")
    lively = parse_config(text, str(config_dir / "vseeface.yaml")).liveliness
    assert lively.blink and lively.breathing


@pytest.mark.parametrize(("text", "got"), [
    ("liveliness: {blink_interval_s: [4, 2]}\n", "[4, 2]"),
    ("liveliness: {blink_interval_s: [3]}\n", "[3]"),
    ("liveliness: {blink_interval_s: [1, 2, 3]}\n", "[1, 2, 3]"),
])
def test_a_bad_blink_interval_names_the_key(text: str, got: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "x.yaml")
    assert caught.value.key_path == "liveliness.blink_interval_s"
    assert caught.value.got == got
    assert "min <= max" in caught.value.expected


def test_a_too_short_blink_interval_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("liveliness: {blink_interval_s: [0.1, 2]}\n", "x.yaml")
    assert caught.value.key_path == "liveliness.blink_interval_s[0]"
