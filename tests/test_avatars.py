import numpy as np
import pytest

from vadbridge.config import Shard
from vadbridge.core.avatars import AvatarLimitError, AvatarTable


def test_rows_are_created_on_first_use_and_stable() -> None:
    table = AvatarTable(4, initial_ids=["default"])
    assert table.row("default") == 0
    assert table.row("npc-1") == 1
    assert table.row("default") == 0
    assert table.ids == ["default", "npc-1"]


def test_full_table_rejects_new_ids_with_reason() -> None:
    table = AvatarTable(1, initial_ids=["a"])
    with pytest.raises(AvatarLimitError, match="full"):
        table.row("b")


def test_partial_update_keeps_other_axes() -> None:
    table = AvatarTable(2)
    row = table.row("a")
    table.set_target(row, (0.5, 0.25, -0.5), now_s=1.0)
    table.set_target(row, (None, 0.75, None), now_s=2.0)
    assert table.target_vad[row].tolist() == [0.5, 0.75, -0.5]
    assert table.last_input_s[row] == 2.0
    assert table.target_dirty[row]


def test_idle_targets_return_to_neutral_after_timeout() -> None:
    table = AvatarTable(2)
    busy, idle = table.row("busy"), table.row("idle")
    table.set_target(busy, (0.5, 0.5, 0.5), now_s=9.0)
    table.set_target(idle, (0.5, 0.5, 0.5), now_s=1.0)
    table.target_dirty[:] = False
    table.release_idle(now_s=10.0, idle_timeout_s=5.0)
    assert table.target_vad[idle].tolist() == [0.0, 0.0, 0.0]
    assert table.target_vad[busy].tolist() == [0.5, 0.5, 0.5]
    assert table.target_dirty.tolist() == [False, True]


def test_the_next_release_is_the_earliest_held_avatars_last_input_plus_the_timeout() -> None:
    table = AvatarTable(4)
    assert table.next_release_s(idle_timeout_s=5.0) is None  # no avatars
    neutral, late, early = table.row("neutral"), table.row("late"), table.row("early")
    table.set_target(neutral, (0.0, 0.0, 0.0), now_s=0.5)  # neutral: nothing to release
    assert table.next_release_s(idle_timeout_s=5.0) is None
    table.set_target(late, (0.0, 0.25, 0.0), now_s=3.0)
    table.set_target(early, (-0.5, 0.0, 0.0), now_s=1.5)
    assert table.next_release_s(idle_timeout_s=5.0) == 6.5
    table.release_idle(now_s=7.0, idle_timeout_s=5.0)  # "early" eases back to neutral
    assert table.next_release_s(idle_timeout_s=5.0) == 8.0
    table.release_idle(now_s=8.0, idle_timeout_s=5.0)  # not yet: released only after 8.0
    assert table.next_release_s(idle_timeout_s=5.0) == 8.0


def test_sharded_table_accepts_only_its_own_ids() -> None:
    mine = AvatarTable(300, owns=Shard(1, 2).owns)
    other = AvatarTable(300, owns=Shard(2, 2).owns)
    for i in range(100):
        avatar_id = f"avatar-{i}"
        owners = []
        for table in (mine, other):
            try:
                table.row(avatar_id)
                owners.append(table)
            except AvatarLimitError:
                pass
        assert len(owners) == 1
    assert len(mine) + len(other) == 100
    assert 25 < len(mine) < 75  # the stable hash spreads ids over both shards
    assert np.all(mine.target_dirty[: len(mine)])


def test_a_closed_table_refuses_new_ids_but_keeps_its_own() -> None:
    table = AvatarTable(8, initial_ids=["default", "npc"])
    table.accept_new = False
    assert table.row("npc") == 1
    with pytest.raises(AvatarLimitError, match="accept_new is false"):
        table.row("sprayed-1")
    assert table.ids == ["default", "npc"]
