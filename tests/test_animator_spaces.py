"""The smoothed VAD exists in both smoothing spaces, and switching spaces keeps the face."""

from __future__ import annotations

import math

import numpy as np
import pytest
from models import FLOAT32_PATH_ATOL

from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarTable
from vadbridge.model.api import load_model
from vadbridge.model.arkit import enforce_symmetry
from vadbridge.model.emotions import emotion_to_vad


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    return load_model()[0]


def sad_table() -> AvatarTable:
    table = AvatarTable(2, initial_ids=["default"])
    table.set_target(0, tuple(float(v) for v in emotion_to_vad("sadness")), 0.0)
    return table


@pytest.mark.parametrize("fps", [30, 60, 120])
def test_blendshapes_space_glides_the_vad_frame_rate_independently(engine, fps: int) -> None:  # type: ignore[no-untyped-def]
    """After tau seconds the VAD covered 1 - 1/e of the way, whatever the frame rate."""
    table = sad_table()
    animator = Animator(table, engine, tau_s=0.1, space="blendshapes")
    for _ in range(round(0.1 * fps)):
        animator.step(1 / fps)
    share = 1.0 - math.exp(-1.0)
    np.testing.assert_allclose(table.state_vad[0], share * emotion_to_vad("sadness"), atol=1e-6)
    assert animator.changed[0]  # a gliding VAD counts as a moving face


def test_switching_spaces_keeps_the_smoothed_vad_and_reinfers(engine) -> None:  # type: ignore[no-untyped-def]
    table = sad_table()
    animator = Animator(table, engine, tau_s=0.1, space="vad")
    animator.step(0.1)
    halfway = table.state_vad[0].copy()
    animator.set_space("blendshapes")
    assert table.target_dirty[0]  # the targets' faces are inferred on the next step
    animator.step(0.1)
    # The VAD glides on from where it was, not from zero and not from the target.
    expected = halfway + (emotion_to_vad("sadness") - halfway) * (1.0 - math.exp(-1.0))
    np.testing.assert_allclose(table.state_vad[0], expected, atol=1e-6)
    animator.set_space("vad")
    assert animator.space == "vad" and table.target_dirty[0]
    before = table.state_vad[0].copy()
    animator.step(0.0)  # no time passes: the face is the model's for the same smoothed VAD
    np.testing.assert_array_equal(table.state_vad[0], before)
    # Two inference paths (the animator's in-place batch vs a fresh 1-row forward) may differ
    # in the last float32 bits on other BLAS kernels: FLOAT32_PATH_ATOL (tests/models.py).
    expected_face = enforce_symmetry(engine.forward(before[None]))[0]
    np.testing.assert_allclose(table.weights[0], expected_face, rtol=0, atol=FLOAT32_PATH_ATOL)
