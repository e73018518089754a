"""Animator.changed: the rows whose output may have moved in the last step."""

from __future__ import annotations

import numpy as np

from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarTable


class _SumEngine:
    """A stand-in model whose output depends on the input (52 copies of the VAD sum, clipped)."""

    def forward(self, vad: np.ndarray) -> np.ndarray:
        total = np.clip(vad.sum(axis=1, keepdims=True), 0.0, 1.0)
        return np.repeat(total, 52, axis=1).astype(np.float32)


def _animator(space: str) -> Animator:
    table = AvatarTable(4, initial_ids=["a", "b", "c"])
    return Animator(table, _SumEngine(), tau_s=0.05, space=space)  # type: ignore[arg-type]


def test_only_the_avatar_with_new_input_changes_once_the_others_converged() -> None:
    for space in ("vad", "blendshapes"):
        animator = _animator(space)
        for _ in range(400):
            animator.step(1 / 60)
        assert not animator.changed.any(), space
        animator.table.set_target(1, (0.5, None, None), now_s=0.0)
        animator.step(1 / 60)
        assert animator.changed.tolist() == [False, True, False], space


def test_changed_covers_exactly_the_rows_in_the_table() -> None:
    animator = _animator("vad")
    animator.step(1 / 60)
    assert animator.changed.shape == (3,)
    assert animator.changed.all()  # new avatars get their first inference


def test_a_table_at_rest_is_not_stepped_until_a_target_or_an_avatar_arrives() -> None:
    """Once a step changed nothing, later steps without new targets do nothing (the idle
    crowd's per-frame cost); a new target, a new avatar, or a change of space wakes it."""
    for space in ("vad", "blendshapes"):
        animator = _animator(space)
        table = animator.table
        for _ in range(400):
            animator.step(1 / 60)
        assert not animator.changed.any(), space
        inferred, state = animator.inferred_rows, table.state_vad.copy()
        for _ in range(5):
            animator.step(1 / 60)
        assert animator.inferred_rows == inferred and not animator.changed.any()
        np.testing.assert_array_equal(table.state_vad, state)
        table.set_target(table.row("d"), (0.25, 0.0, 0.0), now_s=0.0)  # a fourth avatar
        animator.step(1 / 60)
        assert animator.changed.tolist() == [False, False, False, True], space
        for _ in range(400):
            animator.step(1 / 60)
        assert table.state_vad[3, 0] == np.float32(0.25)
        assert table.weights[3, 0] == np.float32(0.25)  # the sum engine: V + A + D
    animator = _animator("vad")
    for _ in range(400):
        animator.step(1 / 60)
    animator.set_space("blendshapes")
    inferred = animator.inferred_rows
    animator.step(1 / 60)
    assert animator.inferred_rows == inferred + 3  # every row re-inferred in the new space


def test_an_empty_table_is_at_rest() -> None:
    """No avatars (a shard that owns none yet): nothing to animate, so the frame loop may rest."""
    animator = Animator(AvatarTable(4, initial_ids=[]), _SumEngine(), tau_s=0.05)  # type: ignore[arg-type]
    animator.step(1 / 60)
    assert animator.at_rest
    animator.table.set_target(animator.table.row("a"), (0.5, None, None), now_s=0.0)
    assert not animator.at_rest
    animator.step(1 / 60)
    assert animator.changed.tolist() == [True]
