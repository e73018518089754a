import asyncio
import time

import pytest

from vadbridge.core.frame_loop import PACING_MODES, FramePacer


async def _run_for(pacer: FramePacer, seconds: float, stall_at: int | None = None) -> list[int]:
    frames: list[int] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        frame = await pacer.next_frame()
        frames.append(frame)
        if frame == stall_at:
            time.sleep(0.05)
    return frames


def test_three_seconds_at_60_fps_sends_180_frames() -> None:
    pacer = FramePacer(1 / 60)
    frames = asyncio.run(_run_for(pacer, 3.0))
    assert 177 <= len(frames) <= 183
    assert frames == sorted(set(frames))  # strictly increasing frame numbers, no repeats


def test_each_frame_starts_no_earlier_than_its_deadline() -> None:
    pacer = FramePacer(1 / 120)

    async def check() -> None:
        for _ in range(60):
            frame = await pacer.next_frame()
            assert time.perf_counter() >= pacer.deadline(frame)

    asyncio.run(check())


@pytest.mark.parametrize("mode", sorted(PACING_MODES))
def test_every_pacing_mode_hands_out_consecutive_frames_never_before_their_deadline(
    mode: str,
) -> None:
    # How late each mode is belongs to the benchmark (vadbridge bench --only pacing); that none
    # is early, and none skips or repeats on an unloaded loop, is the pacer's contract.
    pacer = FramePacer(1 / 200, mode=mode)
    assert pacer.mode == mode  # this machine (Linux) has the timer: no fallback

    async def check() -> list[int]:
        frames = []
        for _ in range(20):
            frame = await pacer.next_frame()
            assert time.perf_counter() >= pacer.deadline(frame)
            frames.append(frame)
        return frames

    frames = asyncio.run(check())
    assert frames == sorted(set(frames))
    assert frames[-1] == 19 + pacer.stats.skipped  # skipped only if the machine stalled us


def test_a_stall_skips_frames_instead_of_bursting() -> None:
    pacer = FramePacer(1 / 60)
    frames = asyncio.run(_run_for(pacer, 0.5, stall_at=5))
    after = frames[frames.index(5) + 1]
    # 50 ms at 60 fps covers 3 deadlines: frames 6 and 7 are skipped and 8 goes out at once.
    assert after >= 8
    # Frames 6 and 7 were never sent (no catch-up burst) and are counted as skipped.
    assert 6 not in frames and 7 not in frames
    assert pacer.stats.skipped >= after - 6


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="period_s"):
        FramePacer(0.0)


def test_the_timer_mode_falls_back_to_spinning_with_a_clock_of_its_own() -> None:
    """The kernel timer keeps perf_counter's clock (CLOCK_MONOTONIC): an injected clock (a
    test's, a simulation's) cannot be waited for on it, so the pacer spins instead."""
    assert FramePacer(1 / 60).mode == "timer"  # the default, where it can run
    pacer = FramePacer(1 / 60, clock=time.monotonic)
    assert pacer.mode == "spin"
    assert (pacer.spin_s, pacer.spin_only_s) == (PACING_MODES["spin"].tail_s,
                                                 PACING_MODES["spin"].spin_only_s)
    with pytest.raises(ValueError, match="pacing mode"):
        FramePacer(1 / 60, mode="busy")


def test_the_timer_wakes_for_inputs_until_the_deadline() -> None:
    """With the timer the loop stays free until the deadline: a callback scheduled 5 ms before
    it runs before the frame is handed out (the spin modes poll the loop for the same end)."""

    async def check() -> tuple[float, float]:
        pacer = FramePacer(1 / 20)  # 50 ms frames
        await pacer.next_frame()
        loop = asyncio.get_running_loop()
        ran_at: list[float] = []
        loop.call_at(loop.time() + 0.045, lambda: ran_at.append(time.perf_counter()))
        frame = await pacer.next_frame()
        return ran_at[0], pacer.deadline(frame)

    ran_at, deadline = asyncio.run(check())
    assert ran_at < deadline


@pytest.mark.parametrize("mode", sorted(PACING_MODES))
def test_an_overrunning_frame_loop_still_lets_the_event_loop_run(mode: str) -> None:
    """Frame work longer than the period: every next_frame is already late, and must still
    yield, or inputs, signals and timeouts would never run (the loop would hang)."""

    async def check() -> int:
        pacer = FramePacer(1 / 240, mode=mode)
        ticks = 0

        async def other() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        for _ in range(20):
            await pacer.next_frame()
            time.sleep(0.006)  # 6 ms of work in a 4.2 ms period
        task.cancel()
        return ticks

    assert asyncio.run(check()) >= 15


def test_rested_frames_count_as_frames_but_not_in_the_mean_lateness() -> None:
    async def check() -> tuple[int, int]:
        pacer = FramePacer(1 / 100)
        await pacer.next_frame()
        await pacer.next_frame()
        await pacer.rest(20)  # frames 2..19 rested
        await pacer.next_frame()
        return pacer.stats.frames, pacer.stats.handed_out

    frames, handed_out = asyncio.run(check())
    assert frames == 21 and handed_out == 3
    snapshot = FramePacer(1 / 100).stats
    snapshot.frames, snapshot.handed_out, snapshot.lateness_sum_s = frames, handed_out, 0.003
    assert snapshot.snapshot()["mean_lateness_ms"] == 1.0  # 3 ms over the 3 handed out


def test_closing_the_timer_ends_a_wait_on_it() -> None:
    """A pacer switched away from the timer (or a bridge stopping) while its frame loop waits:
    the wait ends instead of hanging on an unregistered fd."""

    async def check() -> float:
        pacer = FramePacer(1 / 2)  # a deadline 0.5 s away
        await pacer.next_frame()
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, pacer.close)
        started = time.perf_counter()
        await asyncio.wait_for(pacer.next_frame(), 5)
        return time.perf_counter() - started

    assert asyncio.run(check()) < 5


def test_the_config_offers_exactly_the_pacers_modes() -> None:
    from bridge_harness import config_from_yaml

    from vadbridge.config import PACING_MODE_NAMES
    from vadbridge.wiring import build_bridge

    assert sorted(PACING_MODE_NAMES) == sorted(PACING_MODES)
    bridge = build_bridge(config_from_yaml("pacing: spin\ninputs: []\noutputs: []\n"))
    assert bridge.pacer.mode == "spin" and bridge.pacer.spin_only_s > 0
    assert build_bridge(config_from_yaml("inputs: []\noutputs: []\n")).pacer.mode == "timer"
