"""Onset and release (issue 13, item 4): expressions rise faster than they fade, at any frame rate,
and a SIGHUP reload changes the time constants of a running bridge."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from models import seeded_checkpoint

from vadbridge.config import load_config, parse_config
from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.smoothing import AttackRelease, TimeConstants
from vadbridge.model.api import load_model
from vadbridge.model.arkit import ARKIT_INDEX
from vadbridge.reload import Reloader
from vadbridge.tools.step_plot import step_response
from vadbridge.wiring import build_bridge, time_constants

FRAME_RATES = (30, 60, 120)


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    return load_model()[0]


# ---------------------------------------------------------------- the default config's smile


@pytest.mark.parametrize("space", ["vad", "blendshapes"])
def test_a_smile_reaches_63_percent_sooner_than_it_falls_to_37_at_every_frame_rate(
    engine, space: str  # type: ignore[no-untyped-def]
) -> None:
    smoothing = load_config(None).smoothing  # the default config, but for the space
    rises, falls = {}, {}
    for fps in FRAME_RATES:
        response = step_response(engine, time_constants(smoothing), space, fps)  # type: ignore[arg-type]
        assert response.full - response.neutral > 0.3  # happiness smiles: a real step
        rises[fps], falls[fps] = response.rise_s(), response.fall_s()
    print(f"\n{space}: rise to 63% {rises}, fall to 37% {falls} (s)")
    for fps in FRAME_RATES:
        assert rises[fps] < falls[fps], fps
    slowest_frame_s = 1 / min(FRAME_RATES)
    for crossings in (rises, falls):
        assert max(crossings.values()) - min(crossings.values()) <= slowest_frame_s


def test_in_blendshape_space_the_smile_crosses_at_one_attack_and_one_release_tau(engine) -> None:  # type: ignore[no-untyped-def]
    times = TimeConstants(AttackRelease(0.12, 0.3))
    for fps in FRAME_RATES:
        response = step_response(engine, times, "blendshapes", fps)
        # The first frame at or past the crossing: within one frame after the exact tau.
        assert 0.12 <= response.rise_s() < 0.12 + 1 / fps + 1e-9
        assert 0.3 <= response.fall_s() < 0.3 + 1 / fps + 1e-9


def test_a_config_with_only_tau_ms_smooths_exactly_as_one_time_constant(engine) -> None:  # type: ignore[no-untyped-def]
    smoothing = parse_config("smoothing: {tau_ms: 150}\n").smoothing
    assert time_constants(smoothing) == TimeConstants.single(0.15)
    for space in ("vad", "blendshapes"):
        legacy = step_response(engine, 0.15, space, 60)  # type: ignore[arg-type]
        now = step_response(engine, time_constants(smoothing), space, 60)  # type: ignore[arg-type]
        assert np.array_equal(legacy.weight, now.weight), space


# ---------------------------------------------------------------- the animator's alpha cache


class _VadEngine:
    """52 copies of the valence, so a shape's weight is the smoothed valence (vad space)."""

    def forward(self, vad: np.ndarray) -> np.ndarray:
        return np.repeat(np.clip(vad[:, :1], 0.0, 1.0), 52, axis=1).astype(np.float32)


def _rise_after_one_step(animator: Animator, dt_s: float) -> float:
    table = animator.table
    table.state_vad[0] = 0.0
    table.set_target(0, (1.0, 0.0, 0.0), now_s=0.0)
    animator.step(dt_s)
    return float(table.state_vad[0, 0])


def test_new_time_constants_apply_from_the_next_step() -> None:
    animator = Animator(AvatarTable(2, initial_ids=["a"]), _VadEngine(), tau_s=0.1)
    assert _rise_after_one_step(animator, 1 / 60) == pytest.approx(1 - math.exp(-1 / 6), rel=1e-6)
    animator.tau_s = TimeConstants(AttackRelease(0.02, 0.5))
    assert _rise_after_one_step(animator, 1 / 60) == pytest.approx(1 - math.exp(-5 / 6), rel=1e-6)
    assert animator.tau_s == TimeConstants(AttackRelease(0.02, 0.5))


def test_each_step_length_gets_its_own_alphas() -> None:
    animator = Animator(AvatarTable(2, initial_ids=["a"]), _VadEngine(),
                        tau_s=TimeConstants(AttackRelease(0.1, 0.4)))
    for dt_s in (1 / 60, 2 / 60, 1 / 60, 1 / 30, 0.5):  # a skipped frame doubles a step
        rise = _rise_after_one_step(animator, dt_s)
        assert rise == pytest.approx(1 - math.exp(-dt_s / 0.1), rel=1e-6), dt_s


def test_regions_move_the_brows_at_their_own_pace_in_blendshape_space() -> None:
    table = AvatarTable(2, initial_ids=["a"])
    times = TimeConstants(AttackRelease(0.1, 0.3), upper=AttackRelease(0.4, 0.3))
    animator = Animator(table, _VadEngine(), tau_s=times, space="blendshapes")
    animator.step(1 / 60)
    table.set_target(0, (1.0, 0.0, 0.0), now_s=0.0)
    for _ in range(6):  # 0.1 s
        animator.step(1 / 60)
    brow, smile = ARKIT_INDEX["browInnerUp"], ARKIT_INDEX["mouthSmileLeft"]
    assert table.weights[0, smile] == pytest.approx(1 - math.exp(-1.0), rel=1e-5)
    assert table.weights[0, brow] == pytest.approx(1 - math.exp(-0.25), rel=1e-5)


# ---------------------------------------------------------------- a SIGHUP reload


def _config_text(checkpoint: Path, smoothing: str) -> str:
    return (f"stats_interval_s: 0\nmodel: {{checkpoint: {checkpoint}}}\nsmoothing: {smoothing}\n"
            "inputs: []\noutputs: []\n")


def test_sighup_applies_new_attack_and_release_to_the_running_bridge(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = seeded_checkpoint(tmp_path / "model.npz", seed=13)
    path = tmp_path / "bridge.yaml"
    path.write_text(_config_text(checkpoint, "{tau_ms: 150}"))
    config = load_config(path)
    bridge = build_bridge(config)
    reloader = Reloader(bridge, path, config)
    new_times = TimeConstants(AttackRelease(0.02, 0.8), upper=AttackRelease(0.05, 0.8))

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        run = asyncio.create_task(bridge.run())
        loop.add_signal_handler(signal.SIGHUP, reloader.request)
        try:
            await asyncio.sleep(0.1)
            path.write_text(_config_text(
                checkpoint, "{attack_ms: 20, release_ms: 800, space: blendshapes, "
                "upper: {attack_ms: 50}}"))
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(500):
                await asyncio.sleep(0.01)
                if reloader.reloads:
                    break
            assert bridge.animator.tau_s == new_times
            # The face starts from neutral and rises at the new attack pace.
            bridge.table.set_target(0, (0.8, 0.6, 0.5), now_s=0.0)
            await asyncio.sleep(0.1)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)

    with caplog.at_level(logging.INFO, logger="vadbridge.reload"):
        asyncio.run(scenario())
    assert reloader.reloads == 1
    assert bridge.animator.space == "blendshapes"
    assert "smoothing attack_ms=20 release_ms=800 space=blendshapes" in caplog.text
    # With a 20 ms attack the VAD has all but arrived after 0.1 s (with 150 ms it would be at 49%).
    assert bridge.table.state_vad[0, 0] == pytest.approx(0.8, abs=0.05)
    # The same animator, stepped by hand: one frame of rise takes the new attack alpha exactly.
    bridge.table.state_vad[0] = 0.0
    bridge.animator.step(1 / 60)
    attack_alpha = np.float32(1 - math.exp(-(1 / 60) / 0.02))
    assert bridge.table.state_vad[0, 0] == np.float32(0.8) * attack_alpha
