"""The animator with the bundled model: smoothing spaces, skipped inference, exact symmetry.

``model_face`` runs the engine's ``forward`` on a fresh one-row batch. Where the animator computed
the row another way (``forward_into`` into a slice of the table, or in a larger batch) the two
are compared within ``FLOAT32_PATH_ATOL`` (see tests/models.py), not bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from models import FLOAT32_PATH_ATOL

from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.smoothing import smoothing_alpha
from vadbridge.model.api import load_model
from vadbridge.model.arkit import LEFT_INDICES, RIGHT_INDICES, enforce_symmetry
from vadbridge.model.emotions import emotion_to_vad

PERIOD_S = 1 / 60


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    return load_model()[0]


def model_face(engine, vad) -> np.ndarray:  # type: ignore[no-untyped-def]
    return enforce_symmetry(engine.forward(np.asarray([vad], dtype=np.float32)))[0]


def test_a_new_avatar_starts_on_the_models_neutral_face(engine) -> None:  # type: ignore[no-untyped-def]
    table = AvatarTable(4, initial_ids=["default"])
    Animator(table, engine, tau_s=0.15).step(PERIOD_S)
    # The animator ran forward_into on the table's rows: another path than model_face's forward.
    np.testing.assert_allclose(
        table.weights[0], model_face(engine, (0, 0, 0)), rtol=0, atol=FLOAT32_PATH_ATOL
    )


def test_vad_space_runs_the_model_on_the_gliding_state(engine) -> None:  # type: ignore[no-untyped-def]
    table = AvatarTable(2, initial_ids=["a"])
    animator = Animator(table, engine, tau_s=0.15, space="vad")
    animator.step(PERIOD_S)
    happy = emotion_to_vad("happiness")
    table.set_target(0, tuple(float(x) for x in happy), now_s=0.0)  # type: ignore[arg-type]
    for _ in range(5):
        animator.step(PERIOD_S)
    remaining = (1 - smoothing_alpha(PERIOD_S, 0.15)) ** 5
    np.testing.assert_allclose(table.state_vad[0], happy * (1 - remaining), rtol=1e-5)
    face = model_face(engine, table.state_vad[0])  # forward; the animator used forward_into
    np.testing.assert_allclose(table.weights[0], face, rtol=0, atol=FLOAT32_PATH_ATOL)


def test_converged_avatars_skip_inference(engine) -> None:  # type: ignore[no-untyped-def]
    table = AvatarTable(3, initial_ids=["a", "b", "c"])
    animator = Animator(table, engine, tau_s=0.05)
    table.set_target(1, (0.8, 0.6, 0.5), now_s=0.0)
    for _ in range(240):  # 4 s = 80 tau: converged and snapped
        animator.step(PERIOD_S)
    before = animator.inferred_rows
    for _ in range(30):
        animator.step(PERIOD_S)
    assert animator.inferred_rows == before
    # The model's face for the target: its last inference was of the snapped state, in a batch
    # with the table's other rows and the lookahead's (core/animator.py), so it may round apart
    # from model_face's one-row batch at float32's last bits (FLOAT32_PATH_ATOL).
    np.testing.assert_allclose(table.weights[1], model_face(engine, (0.8, 0.6, 0.5)), rtol=0,
                               atol=FLOAT32_PATH_ATOL)


def test_blendshape_space_glides_the_weights_linearly(engine) -> None:  # type: ignore[no-untyped-def]
    table = AvatarTable(2, initial_ids=["a"])
    animator = Animator(table, engine, tau_s=0.15, space="blendshapes")
    for _ in range(300):
        animator.step(PERIOD_S)
    start = table.weights[0].copy()
    # The glide snapped onto target_weights, which forward_into wrote: another path than forward.
    np.testing.assert_allclose(
        start, model_face(engine, (0, 0, 0)), rtol=0, atol=FLOAT32_PATH_ATOL
    )
    table.set_target(0, (-0.8, -0.4, -0.3), now_s=0.0)
    animator.step(PERIOD_S)
    alpha = smoothing_alpha(PERIOD_S, 0.15)
    target = model_face(engine, (-0.8, -0.4, -0.3))
    np.testing.assert_allclose(
        table.weights[0], start + alpha * (target - start), rtol=0, atol=FLOAT32_PATH_ATOL
    )
    # The VAD glides alongside (no inference on it): it is what outputs such as VRM presets show.
    expected_vad = alpha * np.array([-0.8, -0.4, -0.3], dtype=np.float32)
    np.testing.assert_allclose(table.state_vad[0], expected_vad, rtol=0, atol=1e-7)


def test_symmetry_is_exact_on_every_frame_in_both_spaces(engine) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    for space in ("vad", "blendshapes"):
        table = AvatarTable(8, initial_ids=[f"a{i}" for i in range(8)])
        animator = Animator(table, engine, tau_s=0.1, space=space)  # type: ignore[arg-type]
        for frame in range(60):
            if frame % 10 == 0:
                for row in range(8):
                    vad = tuple(float(x) for x in rng.uniform(-1, 1, 3))
                    table.set_target(row, vad, now_s=0.0)  # type: ignore[arg-type]
            animator.step(PERIOD_S)
            weights = table.weights[:8]
            assert np.array_equal(weights[:, LEFT_INDICES], weights[:, RIGHT_INDICES])
            assert np.all((weights >= 0) & (weights <= 1))


class _ForwardOnly:
    """The engine behind only ``forward`` (as ``LutEngine`` offers): the gather/scatter path."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self._engine = engine
        self.batches: list[int] = []

    def forward(self, vad: np.ndarray) -> np.ndarray:
        self.batches.append(len(vad))
        result: np.ndarray = self._engine.forward(vad)
        return result


class _RecordingInto(_ForwardOnly):
    """The engine with ``forward_into``; records where each call wrote."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        super().__init__(engine)
        self.into: list[np.ndarray] = []

    def forward_into(self, vad: np.ndarray, out: np.ndarray) -> np.ndarray:
        self.into.append(out)
        result: np.ndarray = self._engine.forward_into(vad, out)
        return result


def _run_moving_avatars(engine, space: str) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Six avatars: all move for 6 frames, settle for 250 (83 tau), then only rows 1 and 4 move."""
    rng = np.random.default_rng(21)
    table = AvatarTable(8, initial_ids=[f"a{i}" for i in range(6)])
    animator = Animator(table, engine, tau_s=0.05, space=space)  # type: ignore[arg-type]
    frames = []
    for frame in range(262):
        moving = range(6) if frame < 6 else (1, 4) if frame >= 256 else ()
        for row in moving:
            vad = tuple(float(x) for x in rng.uniform(-1, 1, 3))
            table.set_target(row, vad, now_s=0.0)  # type: ignore[arg-type]
        animator.step(PERIOD_S)
        frames.append(table.weights[:6].copy())
    return np.stack(frames), table.target_weights[:6].copy()


def test_when_every_avatar_moves_the_engine_writes_into_the_table_rows(engine) -> None:  # type: ignore[no-untyped-def]
    recording = _RecordingInto(engine)
    table = AvatarTable(8, initial_ids=[f"a{i}" for i in range(6)])
    animator = Animator(table, recording, tau_s=0.1, space="vad")
    for row in range(6):
        table.set_target(row, (0.1 * row, -0.5, 0.3), now_s=0.0)
    animator.step(PERIOD_S)
    assert recording.batches == []  # no forward with its gathered copy and fresh output
    assert len(recording.into) == 1 and recording.into[0].shape == (6, 52)
    assert np.shares_memory(recording.into[0], table.weights)
    for row in range(6):
        face = model_face(engine, table.state_vad[row])  # a batch of 1: BLAS may round apart
        np.testing.assert_allclose(table.weights[row], face, rtol=0, atol=FLOAT32_PATH_ATOL)


@pytest.mark.parametrize("space", ["vad", "blendshapes"])
def test_engines_with_and_without_forward_into_animate_identically(engine, space: str) -> None:  # type: ignore[no-untyped-def]
    """Same faces, frame by frame, whichever engine interface the animator uses.

    When every avatar moves, one run has forward_into write the table's rows in place and the
    other copies forward's fresh batch in: two float32 paths, so the frames agree within
    FLOAT32_PATH_ATOL rather than bit for bit. Frames are convex blends of engine outputs, so a
    path difference in a target is not amplified by the glide. It could flip a snap decision only
    if a row's distance to its target came within that difference of SNAP_DISTANCE; in this run
    the closest approach (blendshapes space) is 2.4e-6, above the bundled model's 1.0e-6 spread.
    A row mix-up or a stale or unwritten output would differ by far more.
    """
    forward_only = _ForwardOnly(engine)
    frames_into, targets_into = _run_moving_avatars(_RecordingInto(engine), space)
    frames_plain, targets_plain = _run_moving_avatars(forward_only, space)
    assert 6 in forward_only.batches and 2 in forward_only.batches  # both paths were exercised
    np.testing.assert_allclose(frames_into, frames_plain, rtol=0, atol=FLOAT32_PATH_ATOL)
    np.testing.assert_allclose(targets_into, targets_plain, rtol=0, atol=FLOAT32_PATH_ATOL)
    assert np.ptp(frames_plain[:, :, :], axis=0).max() > 0.05  # the faces really moved
