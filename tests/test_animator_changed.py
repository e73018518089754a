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
