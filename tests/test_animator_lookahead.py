"""Lookahead (core/animator.py): a small table's next frames are smoothed ahead and inferred in
the same model call; the faces are the frame-by-frame path's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from models import FLOAT32_PATH_ATOL

from vadbridge.core.animator import LOOKAHEAD_FRAMES, LOOKAHEAD_MAX_ROWS, Animator
from vadbridge.core.avatars import AvatarTable
from vadbridge.model.api import load_model

PERIOD_S = 1 / 60


class CountingEngine:
    """The bundled model, counting its forward calls (a call costs the same for 1 or 4 rows
    when one avatar runs: what lookahead saves is calls)."""

    def __init__(self) -> None:
        self.model = load_model()[0]
        self.calls = 0

    def forward(self, vad: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.model.forward(vad)

    def forward_into(self, vad: np.ndarray, out: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.model.forward_into(vad, out)


def _pair(avatars: int, **kwargs: float) -> tuple[Animator, Animator, CountingEngine]:
    engine = CountingEngine()
    ids = [f"a{i}" for i in range(avatars)]
    ahead = Animator(AvatarTable(avatars, initial_ids=ids), engine, tau_s=0.12)
    # The reference infers every moving row every frame (no skipping: the lookahead infers
    # every frame it predicts, so its faces are exact where skipping lags by up to L x epsilon).
    plain = Animator(AvatarTable(avatars, initial_ids=ids), CountingEngine(), tau_s=0.12,
                     lookahead_frames=0, skip_epsilon=0.0)
    return ahead, plain, engine


def _drive(animators: tuple[Animator, ...], frames: int, every: int, seed: int,
           check: bool = True) -> None:
    """A new target for every avatar every ``every`` frames (inputs at 60/every Hz), then the
    same step on each animator; after each step the two agree."""
    rng = np.random.default_rng(seed)
    count = len(animators[0].table)
    for frame in range(frames):
        if frame % every == 0:
            targets = rng.uniform(-1, 1, (count, 3))
            for animator in animators:
                for row in range(count):
                    animator.table.set_target(row, tuple(targets[row]), now_s=0.0)
        for animator in animators:
            animator.step(PERIOD_S)
        if check:
            _assert_same_faces(*animators)


def _assert_same_faces(ahead: Animator, plain: Animator) -> None:
    """States bit for bit (the same smoothing arithmetic on the same float32 values); faces
    within FLOAT32_PATH_ATOL (the lookahead's batch of up to 4 rows per avatar may round apart
    from the plain path's batch at float32's last bits); the same rows reported changed."""
    count = len(ahead.table)
    np.testing.assert_array_equal(ahead.table.state_vad[:count], plain.table.state_vad[:count])
    np.testing.assert_allclose(ahead.table.weights[:count], plain.table.weights[:count],
                               rtol=0, atol=FLOAT32_PATH_ATOL)
    assert ahead.changed.tolist() == plain.changed.tolist()


@pytest.mark.parametrize("avatars", [1, LOOKAHEAD_MAX_ROWS])
@pytest.mark.parametrize("every", [2, 7, 45])
def test_lookahead_faces_are_the_frame_by_frame_faces(avatars: int, every: int) -> None:
    ahead, plain, _ = _pair(avatars)
    _drive((ahead, plain), 180, every, seed=every)
    for _ in range(120):  # then held until at rest: the predictions run out and converge
        ahead.step(PERIOD_S)
        plain.step(PERIOD_S)
        _assert_same_faces(ahead, plain)


def test_one_avatar_with_inputs_at_30_hz_calls_the_model_every_other_frame() -> None:
    ahead, plain, engine = _pair(1)
    _drive((ahead, plain), 120, every=2, seed=1, check=False)
    assert engine.calls == 60  # the frame with the new input; the next one was predicted
    engine.calls = 0
    _drive((ahead,), 120, every=30, seed=2, check=False)  # inputs at 2 Hz, 4 glides
    # Each glide of 30 frames (0.5 s, ~4 time constants: still moving) needs one call per
    # LOOKAHEAD_FRAMES + 1 frames.
    assert engine.calls == 4 * math.ceil(30 / (LOOKAHEAD_FRAMES + 1))


def test_new_time_constants_or_a_longer_step_drop_the_predictions() -> None:
    ahead, plain, engine = _pair(1)
    _drive((ahead, plain), 2, every=100, seed=3)  # one model call, 3 frames predicted, 1 used
    assert engine.calls == 1
    for animator in (ahead, plain):
        animator.tau_s = 0.3
    ahead.step(PERIOD_S)
    plain.step(PERIOD_S)
    _assert_same_faces(ahead, plain)  # smoothed with the new time constant, not predicted
    assert engine.calls == 2
    for animator in (ahead, plain):
        animator.step(2 * PERIOD_S)  # a skipped frame: a step twice as long
    _assert_same_faces(ahead, plain)
    assert engine.calls == 3


def test_a_large_table_does_not_look_ahead() -> None:
    ahead, _, engine = _pair(LOOKAHEAD_MAX_ROWS + 1)
    _drive((ahead,), 20, every=2, seed=4, check=False)
    assert engine.calls == 20
